// The engine's queue, batcher and request bookkeeping without a model.
#include <gtest/gtest.h>

#include <thread>

#include "engine/load_board.h"
#include "engine/request_queue.h"
#include "engine/step_batcher.h"

namespace vqd::engine {
namespace {

class RecordingSink : public EventSink {
 public:
  void Deliver(RequestEvent event) override { events.push_back(std::move(event)); }
  void Fail(const absl::Status& status, Outcome outcome) override {
    failures.push_back(status);
    outcomes.push_back(outcome);
  }
  std::vector<RequestEvent> events;
  std::vector<absl::Status> failures;
  std::vector<Outcome> outcomes;
};

std::shared_ptr<GenerationRequest> MakeRequest(const std::string& id, int priority, int64_t images, float guidance,
                                               int64_t steps = 10, int64_t progress_interval = 0) {
  RequestParams p;
  p.request_id = id;
  p.priority = priority;
  p.num_images = images;
  p.guidance_scale = guidance;
  p.steps = steps;
  p.progress_interval = progress_interval;
  return std::make_shared<GenerationRequest>(p, std::make_shared<RecordingSink>());
}

std::vector<std::string> Ids(const std::vector<std::shared_ptr<GenerationRequest>>& requests) {
  std::vector<std::string> ids;
  for (const auto& r : requests) ids.push_back(r->id());
  return ids;
}

// Pops heads while their rows fit in `free_rows` in total (what a worker's admission does).
std::vector<std::shared_ptr<GenerationRequest>> PopFitting(RequestQueue& queue, int64_t free_rows,
                                                           std::vector<std::shared_ptr<GenerationRequest>>* dropped) {
  std::vector<std::shared_ptr<GenerationRequest>> out;
  while (auto r = queue.PopHeadIf([&](const GenerationRequest& head) { return head.rows() <= free_rows; }, dropped)) {
    free_rows -= r->rows();
    out.push_back(std::move(r));
  }
  return out;
}

TEST(RequestQueueTest, OrdersByPriorityThenArrival) {
  RequestQueue queue(10);
  EXPECT_EQ(*queue.Push(MakeRequest("a", 0, 1, 1)), 0u);
  EXPECT_EQ(*queue.Push(MakeRequest("b", 0, 1, 1)), 1u);
  EXPECT_EQ(*queue.Push(MakeRequest("c", 5, 1, 1)), 0u);  // jumps ahead
  EXPECT_EQ(*queue.Push(MakeRequest("d", -1, 1, 1)), 3u);
  EXPECT_EQ(Ids(PopFitting(queue, 100, nullptr)), (std::vector<std::string>{"c", "a", "b", "d"}));
}

TEST(RequestQueueTest, AgingLetsLongWaitersOvertakeHigherPriorities) {
  RequestQueue queue(10, absl::Seconds(10));  // ten seconds of waiting is worth one level
  const Clock::time_point t0 = Clock::now();
  auto at = [&](std::string id, int32_t priority, double seconds) {
    auto r = MakeRequest(std::move(id), priority, 1, 1);
    r->accepted_at = t0 + std::chrono::milliseconds(static_cast<int64_t>(seconds * 1000));
    return r;
  };
  ASSERT_TRUE(queue.Push(at("old-low", 0, 0)).ok());
  EXPECT_EQ(*queue.Push(at("high-soon", 1, 5)), 0u);       // 5 s later, one level up: ahead
  EXPECT_EQ(*queue.Push(at("high-late", 1, 15)), 2u);      // 15 s later: behind old-low
  EXPECT_EQ(*queue.Push(at("very-high-late", 3, 20)), 0u); // two levels of waiting do not make up three
  EXPECT_EQ(*queue.Push(at("low-soon", 0, 3)), 3u);        // behind old-low (same priority, later),
                                                            // ahead of high-late (12 s more waiting)
  EXPECT_EQ(Ids(PopFitting(queue, 100, nullptr)),
            (std::vector<std::string>{"very-high-late", "high-soon", "old-low", "low-soon", "high-late"}));
}

TEST(RequestQueueTest, WithoutAgingPrioritiesAreStrict) {
  RequestQueue queue(10);
  auto old_low = MakeRequest("old-low", 0, 1, 1);
  old_low->accepted_at = Clock::now() - std::chrono::hours(1);
  ASSERT_TRUE(queue.Push(old_low).ok());
  EXPECT_EQ(*queue.Push(MakeRequest("new-high", 1, 1, 1)), 0u);
  EXPECT_EQ(Ids(PopFitting(queue, 100, nullptr)), (std::vector<std::string>{"new-high", "old-low"}));
}

TEST(RequestQueueTest, FullQueueIsResourceExhaustedAndClosedIsUnavailable) {
  RequestQueue queue(2);
  ASSERT_TRUE(queue.Push(MakeRequest("a", 0, 1, 1)).ok());
  ASSERT_TRUE(queue.Push(MakeRequest("b", 0, 1, 1)).ok());
  EXPECT_EQ(queue.Push(MakeRequest("c", 0, 1, 1)).status().code(), absl::StatusCode::kResourceExhausted);
  queue.Close();
  PopFitting(queue, 100, nullptr);
  EXPECT_EQ(queue.Push(MakeRequest("d", 0, 1, 1)).status().code(), absl::StatusCode::kUnavailable);
}

TEST(RequestQueueTest, PopsOnlyWhatFitsWithoutOvertaking) {
  RequestQueue queue(10);
  ASSERT_TRUE(queue.Push(MakeRequest("two-rows", 0, 1, 5)).ok());    // guided: 2 rows
  ASSERT_TRUE(queue.Push(MakeRequest("four-rows", 0, 2, 5)).ok());   // 4 rows
  ASSERT_TRUE(queue.Push(MakeRequest("one-row", 0, 1, 1)).ok());     // 1 row
  EXPECT_EQ(Ids(PopFitting(queue, 5, nullptr)), (std::vector<std::string>{"two-rows"}));  // four-rows blocks one-row
  EXPECT_EQ(Ids(PopFitting(queue, 5, nullptr)), (std::vector<std::string>{"four-rows", "one-row"}));
}

TEST(RequestQueueTest, CancelledRequestsAreDroppedAndRemovable) {
  RequestQueue queue(10);
  auto a = MakeRequest("a", 0, 1, 1), b = MakeRequest("b", 0, 1, 1), c = MakeRequest("c", 0, 1, 1);
  ASSERT_TRUE(queue.Push(a).ok());
  ASSERT_TRUE(queue.Push(b).ok());
  ASSERT_TRUE(queue.Push(c).ok());
  EXPECT_TRUE(queue.Remove(b.get()));
  EXPECT_FALSE(queue.Remove(b.get()));
  a->Cancel();
  std::vector<std::shared_ptr<GenerationRequest>> dropped;
  EXPECT_EQ(Ids(PopFitting(queue, 10, &dropped)), (std::vector<std::string>{"c"}));
  EXPECT_EQ(Ids(dropped), (std::vector<std::string>{"a"}));
  EXPECT_EQ(queue.size(), 0u);
}

TEST(StepBatcherTest, CountsRowsPlansTimestepsAndFinishes) {
  StepBatcher batcher(8);
  auto a = MakeRequest("a", 0, 2, 5, /*steps=*/3, /*progress_interval=*/2);  // 4 rows
  auto b = MakeRequest("b", 0, 1, 1, /*steps=*/1);                            // 1 row
  batcher.Add(a);
  batcher.Add(b);
  EXPECT_EQ(batcher.active_rows(), 5);
  EXPECT_EQ(batcher.free_rows(), 3);
  auto planned = batcher.Plan(8);
  ASSERT_EQ(planned.size(), 2u);
  EXPECT_EQ(planned[0]->group.timestep, 2);  // steps 3: t = 2, 1, 0
  EXPECT_EQ(planned[1]->group.timestep, 0);
  auto first = batcher.Commit();
  EXPECT_TRUE(first.progress_due.empty());  // a: step 1 of 3, interval 2
  EXPECT_EQ(Ids(first.finished), (std::vector<std::string>{"b"}));
  EXPECT_EQ(batcher.active_rows(), 4);
  batcher.Plan(8);
  EXPECT_EQ(a->group.timestep, 1);
  auto second = batcher.Commit();
  ASSERT_EQ(second.progress_due.size(), 1u);  // step 2
  batcher.Plan(8);
  auto third = batcher.Commit();
  EXPECT_EQ(third.progress_due.size(), 1u);  // the last step always reports
  EXPECT_EQ(Ids(third.finished), (std::vector<std::string>{"a"}));
  EXPECT_TRUE(batcher.empty());
  EXPECT_EQ(batcher.active_rows(), 0);
}

TEST(StepBatcherTest, RemovesCancelledAndExpired) {
  StepBatcher batcher(8);
  auto a = MakeRequest("a", 0, 1, 1);
  RequestParams p;
  p.request_id = "late";
  auto late = std::make_shared<GenerationRequest>(p, std::make_shared<RecordingSink>(), Clock::now());
  batcher.Add(a);
  batcher.Add(late);
  a->Cancel();
  auto stopped = batcher.RemoveStopped(Clock::now() + std::chrono::milliseconds(1));
  EXPECT_EQ(stopped.size(), 2u);
  EXPECT_EQ(stopped[0]->CancellationOutcome(Clock::now()), Outcome::kCancelled);
  EXPECT_EQ(stopped[1]->CancellationOutcome(Clock::now()), Outcome::kDeadline);
  EXPECT_EQ(batcher.active_rows(), 0);
}

TEST(RequestQueueTest, WaitingForAChangeSleepsUntilAPushOrTheTimeout) {
  RequestQueue queue(10);
  ASSERT_TRUE(queue.Push(MakeRequest("blocked", 0, 4, 5)).ok());
  // The head does not fit: a worker that leaves it waiting must sleep, not return at once
  // because the queue is not empty (the old busy loop).
  const uint64_t seen = queue.version();
  EXPECT_EQ(queue.PopHeadIf([](const GenerationRequest&) { return false; }, nullptr), nullptr);
  const auto start = Clock::now();
  queue.WaitForChange(seen, absl::Milliseconds(200));
  EXPECT_GE(Clock::now() - start, std::chrono::milliseconds(150));
  // A push after the worker read the version ends the wait at once, even if it came before the wait.
  const uint64_t before = queue.version();
  std::thread pusher([&] { ASSERT_TRUE(queue.Push(MakeRequest("new", 0, 1, 1)).ok()); });
  pusher.join();
  const auto wait_start = Clock::now();
  queue.WaitForChange(before, absl::Seconds(10));
  EXPECT_LT(Clock::now() - wait_start, std::chrono::seconds(5));
}

TEST(StepBatcherTest, ALoweredBudgetRunsTheOldestThatFitAndTheRestWaitWithTheirState) {
  StepBatcher batcher(8);
  auto a = MakeRequest("a", 0, 2, 5, /*steps=*/3);  // 4 rows
  auto b = MakeRequest("b", 0, 2, 5, /*steps=*/3);  // 4 rows
  auto c = MakeRequest("c", 0, 1, 5, /*steps=*/3);  // 2 rows
  batcher.Add(a);
  batcher.Add(b);
  batcher.Add(c);
  // Budget 6 after out-of-memory: a (4) runs, b (4) would exceed it and waits, c (2) still fits.
  EXPECT_EQ(Ids(batcher.Plan(6)), (std::vector<std::string>{"a", "c"}));
  EXPECT_EQ(batcher.planned_rows(), 6);
  batcher.Commit();
  EXPECT_EQ(a->steps_done, 1);
  EXPECT_EQ(b->steps_done, 0);  // waited, state kept
  EXPECT_EQ(c->steps_done, 1);
  // Below the oldest request's own rows, the oldest still runs alone.
  EXPECT_EQ(Ids(batcher.Plan(1)), (std::vector<std::string>{"a"}));
  batcher.Commit();
  EXPECT_EQ(Ids(batcher.Plan(8)), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(b->group.timestep, 2);  // b resumes at its own first timestep
  auto outcome = batcher.Commit();
  EXPECT_EQ(Ids(outcome.finished), (std::vector<std::string>{"a"}));
  EXPECT_EQ(batcher.active_rows(), 6);
}

TEST(StepBatcherTest, ARequestStoppedDuringTheStepIsNotAdvanced) {
  StepBatcher batcher(8);
  auto a = MakeRequest("a", 0, 1, 1, /*steps=*/2);
  auto b = MakeRequest("b", 0, 1, 1, /*steps=*/2);
  batcher.Add(a);
  batcher.Add(b);
  batcher.Plan(8);
  a->Cancel();
  EXPECT_EQ(Ids(batcher.RemoveStopped(Clock::now())), (std::vector<std::string>{"a"}));
  batcher.Commit();
  EXPECT_EQ(a->steps_done, 0);
  EXPECT_EQ(b->steps_done, 1);
}

TEST(LoadBoardTest, TheLeastLoadedWorkerThatCanTakeTheRequestTakesIt) {
  LoadBoard board(3);
  board.Publish(0, 8, 8);
  board.Publish(1, 4, 12);
  board.Publish(2, 4, 12);
  EXPECT_FALSE(board.IsLeastLoaded(0, 2));
  EXPECT_TRUE(board.IsLeastLoaded(1, 2));   // ties go to the lower index
  EXPECT_FALSE(board.IsLeastLoaded(2, 2));
  // A worker whose lowered budget cannot take the request does not hold it back from the others.
  board.Publish(1, 4, 1);
  EXPECT_TRUE(board.IsLeastLoaded(2, 2));
  // A stopped worker takes nothing: worker 0 is the only one left that can take two rows.
  EXPECT_FALSE(board.IsLeastLoaded(0, 2));
  board.Retire(2);
  EXPECT_TRUE(board.IsLeastLoaded(0, 2));
  // An idle worker can always take the head (it runs it alone).
  board.Publish(1, 0, 1);
  EXPECT_TRUE(board.IsLeastLoaded(1, 100));
  EXPECT_FALSE(board.IsLeastLoaded(0, 100));
  EXPECT_TRUE(board.Publish(1, 2, 1));
  EXPECT_FALSE(board.Publish(1, 2, 1));  // no change
}

TEST(GenerationRequestTest, TheFinishHookRunsOnceAfterTheLastEvent) {
  auto sink = std::make_shared<RecordingSink>();
  RequestParams p;
  GenerationRequest r(p, sink);
  int finished = 0;
  size_t events_seen = 0;
  r.SetFinishHook([&] {
    ++finished;
    events_seen = sink->events.size();
  });
  r.Deliver(QueuedEvent{0});
  EXPECT_EQ(finished, 0);
  EXPECT_TRUE(r.Complete(DoneEvent{}));
  EXPECT_FALSE(r.Fail(absl::InternalError("late"), Outcome::kError));
  EXPECT_EQ(finished, 1);
  EXPECT_EQ(events_seen, 2u);  // Queued and Done were delivered before the hook ran
}

TEST(GenerationRequestTest, AnswersExactlyOnce) {
  auto sink = std::make_shared<RecordingSink>();
  RequestParams p;
  GenerationRequest r(p, sink);
  r.Deliver(QueuedEvent{3});
  EXPECT_TRUE(r.Fail(absl::CancelledError("x"), Outcome::kCancelled));
  EXPECT_FALSE(r.Complete(DoneEvent{}));
  EXPECT_FALSE(r.Fail(absl::InternalError("y"), Outcome::kError));
  r.Deliver(QueuedEvent{4});  // ignored after the end
  EXPECT_EQ(sink->events.size(), 1u);
  EXPECT_EQ(sink->failures.size(), 1u);
}

}  // namespace
}  // namespace vqd::engine
