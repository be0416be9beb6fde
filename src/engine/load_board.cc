#include "engine/load_board.h"

namespace vqd::engine {

LoadBoard::LoadBoard(size_t workers) : size_(workers), slots_(new Slot[workers]) {}

bool LoadBoard::Publish(size_t index, int64_t rows, int64_t free_rows) {
  const bool changed = slots_[index].rows.exchange(rows) != rows;
  return slots_[index].free_rows.exchange(free_rows) != free_rows || changed;
}

void LoadBoard::Retire(size_t index) { slots_[index].running.store(false); }

bool LoadBoard::IsLeastLoaded(size_t index, int64_t request_rows) const {
  const int64_t mine = slots_[index].rows.load();
  for (size_t j = 0; j < size_; ++j) {
    if (j == index || !slots_[j].running.load()) continue;
    const int64_t rows = slots_[j].rows.load();
    const bool could_take = rows == 0 || slots_[j].free_rows.load() >= request_rows;
    if (!could_take) continue;
    if (rows < mine || (rows == mine && j < index)) return false;
  }
  return true;
}

}  // namespace vqd::engine
