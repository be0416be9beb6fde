// The engine's queue, batcher and request bookkeeping without a model.
#include <gtest/gtest.h>

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

TEST(RequestQueueTest, OrdersByPriorityThenArrival) {
  RequestQueue queue(10);
  EXPECT_EQ(*queue.Push(MakeRequest("a", 0, 1, 1)), 0u);
  EXPECT_EQ(*queue.Push(MakeRequest("b", 0, 1, 1)), 1u);
  EXPECT_EQ(*queue.Push(MakeRequest("c", 5, 1, 1)), 0u);  // jumps ahead
  EXPECT_EQ(*queue.Push(MakeRequest("d", -1, 1, 1)), 3u);
  EXPECT_EQ(Ids(queue.PopFitting(100, nullptr)), (std::vector<std::string>{"c", "a", "b", "d"}));
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
  EXPECT_EQ(Ids(queue.PopFitting(100, nullptr)),
            (std::vector<std::string>{"very-high-late", "high-soon", "old-low", "low-soon", "high-late"}));
}

TEST(RequestQueueTest, WithoutAgingPrioritiesAreStrict) {
  RequestQueue queue(10);
  auto old_low = MakeRequest("old-low", 0, 1, 1);
  old_low->accepted_at = Clock::now() - std::chrono::hours(1);
  ASSERT_TRUE(queue.Push(old_low).ok());
  EXPECT_EQ(*queue.Push(MakeRequest("new-high", 1, 1, 1)), 0u);
  EXPECT_EQ(Ids(queue.PopFitting(100, nullptr)), (std::vector<std::string>{"new-high", "old-low"}));
}

TEST(RequestQueueTest, FullQueueIsResourceExhaustedAndClosedIsUnavailable) {
  RequestQueue queue(2);
  ASSERT_TRUE(queue.Push(MakeRequest("a", 0, 1, 1)).ok());
  ASSERT_TRUE(queue.Push(MakeRequest("b", 0, 1, 1)).ok());
  EXPECT_EQ(queue.Push(MakeRequest("c", 0, 1, 1)).status().code(), absl::StatusCode::kResourceExhausted);
  queue.Close();
  queue.PopFitting(100, nullptr);
  EXPECT_EQ(queue.Push(MakeRequest("d", 0, 1, 1)).status().code(), absl::StatusCode::kUnavailable);
}

TEST(RequestQueueTest, PopsOnlyWhatFitsWithoutOvertaking) {
  RequestQueue queue(10);
  ASSERT_TRUE(queue.Push(MakeRequest("two-rows", 0, 1, 5)).ok());    // guided: 2 rows
  ASSERT_TRUE(queue.Push(MakeRequest("four-rows", 0, 2, 5)).ok());   // 4 rows
  ASSERT_TRUE(queue.Push(MakeRequest("one-row", 0, 1, 1)).ok());     // 1 row
  EXPECT_EQ(Ids(queue.PopFitting(5, nullptr)), (std::vector<std::string>{"two-rows"}));  // four-rows blocks one-row
  EXPECT_EQ(Ids(queue.PopFitting(5, nullptr)), (std::vector<std::string>{"four-rows", "one-row"}));
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
  EXPECT_EQ(Ids(queue.PopFitting(10, &dropped)), (std::vector<std::string>{"c"}));
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
  auto groups = batcher.Plan();
  ASSERT_EQ(groups.size(), 2u);
  EXPECT_EQ(groups[0]->timestep, 2);  // steps 3: t = 2, 1, 0
  EXPECT_EQ(groups[1]->timestep, 0);
  auto first = batcher.Commit();
  EXPECT_TRUE(first.progress_due.empty());  // a: step 1 of 3, interval 2
  EXPECT_EQ(Ids(first.finished), (std::vector<std::string>{"b"}));
  EXPECT_EQ(batcher.active_rows(), 4);
  batcher.Plan();
  EXPECT_EQ(a->group.timestep, 1);
  auto second = batcher.Commit();
  ASSERT_EQ(second.progress_due.size(), 1u);  // step 2
  batcher.Plan();
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
