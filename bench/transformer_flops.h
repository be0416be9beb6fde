// Floating-point operations of one forward pass of the discrete transformer, to turn timings into
// TFLOP/s. Counts multiply-adds as two operations, matrix products only (norms, softmax and
// elementwise work are negligible next to them). For ITHQ this is 2.295 TFLOP per row, the figure
// of ../shared/gpu/README.md.
#pragma once

#include "model/transformer_config.h"

namespace vqd::bench {

double TransformerFlopsPerRow(const model::Transformer2DConfig& config, int64_t text_tokens = 77);

}  // namespace vqd::bench
