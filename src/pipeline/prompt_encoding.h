// What a request is conditioned on, prepared once and reused at every step of the request.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include <torch/torch.h>

#include "model/transformer_2d.h"

namespace vqd::pipeline {

// Text models: the prompt's ids, embeddings and cross-attention keys and values. Class-conditional
// models: the class label alone (the text fields stay empty).
struct PromptEncoding {
  std::vector<int64_t> input_ids;  // max_prompt_tokens ids as the text encoder saw them
  int64_t untruncated_length = 0;  // ids before the pipeline's cut to max_prompt_tokens
  torch::Tensor embeddings;        // [1, 77, C], L2-normalised per token, pipeline dtype
  model::TextContext context;      // the transformer's cross-attention keys and values of it
  std::optional<int64_t> class_label;  // class-conditional models

  bool truncated() const { return untruncated_length > static_cast<int64_t>(input_ids.size()); }
};

}  // namespace vqd::pipeline
