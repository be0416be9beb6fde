// The configuration the in-process server tests start from: loopback, any free ports, the
// project's tiny random model on the CPU.
#pragma once

#include "common/test_model.h"
#include "server/server_config.h"

namespace vqd::server {

inline ServerConfig LoopbackTestConfig() {
  ServerConfig c;
  c.model_dir = testing::TinyRandomModelDir();
  c.listen = "127.0.0.1:0";
  c.metrics_port = 0;
  c.metrics_address = "127.0.0.1";
  c.devices = {torch::kCPU};
  return c;
}

}  // namespace vqd::server
