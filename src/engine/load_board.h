// What each device worker is running, published for the others, so that new work goes to the
// least loaded device rather than to whichever worker happens to wake first. Lock-free: each
// worker writes only its own slot; readers may see a slot one update old, which at worst makes
// a worker defer once more or admit one request early, never wedges the queue (a deferring
// worker only waits a bounded time before it looks again).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>

namespace vqd::engine {

class LoadBoard {
 public:
  explicit LoadBoard(size_t workers);

  size_t size() const { return size_; }
  // Worker `index` runs `rows` rows (admitted, or being admitted) and could take `free_rows` more.
  // Returns whether that changed anything.
  bool Publish(size_t index, int64_t rows, int64_t free_rows);
  // The worker has stopped and takes nothing more.
  void Retire(size_t index);

  // Whether worker `index` should take a waiting request of `request_rows` rows now: no other
  // running worker that could take it (it has the free rows, or it is idle and would run it
  // alone) is less loaded, ties going to the lower index.
  bool IsLeastLoaded(size_t index, int64_t request_rows) const;

 private:
  struct Slot {
    std::atomic<int64_t> rows{0};
    std::atomic<int64_t> free_rows{0};
    std::atomic<bool> running{true};
  };
  size_t size_;
  std::unique_ptr<Slot[]> slots_;
};

}  // namespace vqd::engine
