#include "engine/thread_pool.h"

#include <spdlog/spdlog.h>

namespace vqd::engine {

ThreadPool::ThreadPool(int threads) {
  for (int i = 0; i < threads; ++i) threads_.emplace_back([this] { Run(); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  for (auto& t : threads_) t.join();
}

void ThreadPool::Submit(std::function<void()> task) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    tasks_.push_back(std::move(task));
  }
  cv_.notify_one();
}

void ThreadPool::Run() {
  for (;;) {
    std::function<void()> task;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [this] { return stopping_ || !tasks_.empty(); });
      if (tasks_.empty()) return;  // stopping and drained
      task = std::move(tasks_.front());
      tasks_.pop_front();
    }
    // A task's own error boundary answers its request; this one only keeps the thread (and the
    // process: an exception leaving a thread is std::terminate) alive if a task lacks one.
    try {
      task();
    } catch (const std::exception& e) {
      spdlog::error("output thread: a task threw: {}", e.what());
    } catch (...) {
      spdlog::error("output thread: a task threw a non-standard exception");
    }
  }
}

}  // namespace vqd::engine
