// Bearer-token authentication of calls: "authorization: Bearer <token>" metadata, compared in
// constant time.
#pragma once

#include <string>

#include <grpcpp/grpcpp.h>

#include "absl/status/status.h"

namespace vqd::server {

// OK when `expected_token` is empty (authentication off) or the call carries it.
absl::Status CheckBearerToken(const grpc::ServerContextBase& context, const std::string& expected_token);

// Reads a token file (one line; surrounding whitespace ignored). Empty files are an error.
absl::StatusOr<std::string> ReadTokenFile(const std::string& path);

}  // namespace vqd::server
