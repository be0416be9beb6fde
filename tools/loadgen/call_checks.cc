#include "call_checks.h"

#include <algorithm>
#include <optional>

#include "absl/strings/str_cat.h"
#include "metrics_rule.h"

namespace vqd::loadgen {
namespace {

std::string Classify(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::OK:
      return "ok";
    case grpc::StatusCode::INVALID_ARGUMENT:
      return "invalid";
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
      return "rejected";
    case grpc::StatusCode::CANCELLED:
      return "cancelled";
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return "deadline";
    default:
      return "error";
  }
}

uint32_t BigEndian32(const std::string& s, size_t at) {
  return (static_cast<uint32_t>(static_cast<unsigned char>(s[at])) << 24) |
         (static_cast<uint32_t>(static_cast<unsigned char>(s[at + 1])) << 16) |
         (static_cast<uint32_t>(static_cast<unsigned char>(s[at + 2])) << 8) |
         static_cast<uint32_t>(static_cast<unsigned char>(s[at + 3]));
}

// Checks the event sequence. `complete`: the stream ended OK, so it must be whole (Done last, all
// images); otherwise it must be a well-formed prefix.
void CheckEvents(const Plan& plan, const ServerLimits& limits, const std::vector<pb::GenerateEvent>& events,
                 bool complete, std::vector<std::string>* problems) {
  auto problem = [&](const std::string& what) {
    if (problems->size() < 8) problems->push_back(what);
  };
  const pb::GenerateRequest& req = plan.request;
  const std::string& id = req.request_id();
  const uint32_t interval = req.progress_interval();
  enum Phase { kStart, kQueued, kStarted, kImages, kDone } phase = kStart;
  uint32_t last_step = 0;
  uint32_t next_image = 0;
  std::optional<uint64_t> started_seed;
  for (size_t i = 0; i < events.size(); ++i) {
    const pb::GenerateEvent& e = events[i];
    const std::string at = absl::StrCat("event ", i, ": ");
    if (phase == kDone) {
      problem(at + "an event after Done");
      break;
    }
    switch (e.event_case()) {
      case pb::GenerateEvent::kQueued:
        if (phase != kStart) problem(at + "Queued again or out of order");
        if (e.queued().request_id() != id) problem(at + "Queued has request_id " + e.queued().request_id());
        phase = kQueued;
        break;
      case pb::GenerateEvent::kStarted:
        if (phase != kQueued) problem(at + "Started not right after Queued");
        if (e.started().request_id() != id) problem(at + "Started has request_id " + e.started().request_id());
        if (!limits.devices.empty() && !limits.devices.count(e.started().device())) {
          problem(at + "Started on unknown device " + e.started().device());
        }
        if (req.has_seed() && e.started().seed() != req.seed()) {
          problem(at + absl::StrCat("Started seed ", e.started().seed(), " != requested ", req.seed()));
        }
        started_seed = e.started().seed();
        phase = kStarted;
        break;
      case pb::GenerateEvent::kProgress: {
        const pb::Progress& p = e.progress();
        if (phase != kStarted) problem(at + "Progress outside the denoising phase");
        if (interval == 0) problem(at + "Progress although progress_interval is 0");
        if (p.step() <= last_step) problem(at + absl::StrCat("Progress step ", p.step(), " after ", last_step));
        if (p.step() < 1 || p.step() > plan.steps)
          problem(at + absl::StrCat("Progress step ", p.step(), " of ", plan.steps));
        if (interval > 0 && p.step() % interval != 0 && p.step() != plan.steps) {
          problem(at + absl::StrCat("Progress step ", p.step(), " not a multiple of ", interval));
        }
        if (p.total_steps() != plan.steps) problem(at + absl::StrCat("Progress total_steps ", p.total_steps()));
        if (p.step() <= plan.steps && p.timestep() != plan.steps - p.step()) {
          problem(at + absl::StrCat("Progress step ", p.step(), " has timestep ", p.timestep(), ", expected ",
                                    plan.steps - p.step()));
        }
        if (!(p.masked_fraction() >= 0.0f && p.masked_fraction() <= 1.0f)) {
          problem(at + absl::StrCat("masked_fraction ", p.masked_fraction()));
        }
        if (static_cast<uint32_t>(p.grids_size()) != plan.num_images) {
          problem(at + absl::StrCat("Progress has ", p.grids_size(), " grids for ", plan.num_images, " images"));
        }
        for (const auto& g : p.grids()) {
          if (g.height() != limits.grid_h || g.width() != limits.grid_w ||
              static_cast<uint32_t>(g.tokens_size()) != limits.grid_h * limits.grid_w) {
            problem(at +
                    absl::StrCat("Progress grid ", g.height(), "x", g.width(), " with ", g.tokens_size(), " tokens"));
            break;
          }
          if (std::any_of(g.tokens().begin(), g.tokens().end(), [&](uint32_t t) { return t > limits.mask_token; })) {
            problem(at + "Progress token out of range");
            break;
          }
        }
        last_step = p.step();
        break;
      }
      case pb::GenerateEvent::kImage: {
        const pb::Image& img = e.image();
        if (phase != kStarted && phase != kImages) problem(at + "Image before Started");
        if (phase == kStarted && interval > 0 && last_step != plan.steps) {
          problem(at + absl::StrCat("images began after progress step ", last_step, " of ", plan.steps,
                                    " (the last step's progress is missing)"));
        }
        phase = kImages;
        if (img.index() != next_image)
          problem(at + absl::StrCat("Image index ", img.index(), ", expected ", next_image));
        ++next_image;
        if (img.width() != limits.image_w || img.height() != limits.image_h) {
          problem(at + absl::StrCat("Image size ", img.width(), "x", img.height()));
        }
        if (started_seed && img.seed() != *started_seed) problem(at + absl::StrCat("Image seed ", img.seed()));
        const std::string& png = img.png();
        static const char kSig[] = "\x89PNG\r\n\x1a\n";
        static const char kIend[] = "\0\0\0\0IEND\xae\x42\x60\x82";
        if (png.size() < 8 + 25 + 12 || png.compare(0, 8, kSig, 8) != 0) {
          problem(at + absl::StrCat("Image ", img.index(), " is not a PNG (", png.size(), " bytes)"));
        } else {
          if (png.compare(12, 4, "IHDR") != 0 || BigEndian32(png, 16) != limits.image_w ||
              BigEndian32(png, 20) != limits.image_h) {
            problem(at + absl::StrCat("Image ", img.index(), " PNG header says ", BigEndian32(png, 16), "x",
                                      BigEndian32(png, 20)));
          }
          if (png.compare(png.size() - 12, 12, kIend, 12) != 0) problem(at + "PNG does not end with IEND");
        }
        const auto& g = img.grid();
        if (g.height() != limits.grid_h || g.width() != limits.grid_w ||
            static_cast<uint32_t>(g.tokens_size()) != limits.grid_h * limits.grid_w) {
          problem(at + absl::StrCat("Image grid ", g.height(), "x", g.width(), " with ", g.tokens_size(), " tokens"));
        } else if (std::any_of(g.tokens().begin(), g.tokens().end(),
                               [&](uint32_t t) { return t >= limits.codebook; })) {
          problem(at + "Image grid holds a mask or out-of-range token");
        }
        break;
      }
      case pb::GenerateEvent::kDone: {
        if (phase != kImages && phase != kStarted) problem(at + "Done before Started");
        if (next_image != plan.num_images) {
          problem(at + absl::StrCat("Done after ", next_image, " of ", plan.num_images, " images"));
        }
        if (e.done().request_id() != id) problem(at + "Done has request_id " + e.done().request_id());
        if (e.done().steps() != plan.steps) problem(at + absl::StrCat("Done steps ", e.done().steps()));
        if (!(e.done().total_seconds() >= 0)) problem(at + "Done total_seconds negative");
        phase = kDone;
        break;
      }
      default:
        problem(at + "an empty event");
    }
  }
  if (complete && phase != kDone) problem("stream ended OK without Done");
  if (!complete && phase == kDone) problem(absl::StrCat("stream ended with a failure status after Done"));
  if (next_image > plan.num_images) problem(absl::StrCat(next_image, " images for ", plan.num_images));
}

}  // namespace

std::string CodeName(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::OK:
      return "OK";
    case grpc::StatusCode::CANCELLED:
      return "CANCELLED";
    case grpc::StatusCode::UNKNOWN:
      return "UNKNOWN";
    case grpc::StatusCode::INVALID_ARGUMENT:
      return "INVALID_ARGUMENT";
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return "DEADLINE_EXCEEDED";
    case grpc::StatusCode::NOT_FOUND:
      return "NOT_FOUND";
    case grpc::StatusCode::ALREADY_EXISTS:
      return "ALREADY_EXISTS";
    case grpc::StatusCode::PERMISSION_DENIED:
      return "PERMISSION_DENIED";
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
      return "RESOURCE_EXHAUSTED";
    case grpc::StatusCode::FAILED_PRECONDITION:
      return "FAILED_PRECONDITION";
    case grpc::StatusCode::ABORTED:
      return "ABORTED";
    case grpc::StatusCode::OUT_OF_RANGE:
      return "OUT_OF_RANGE";
    case grpc::StatusCode::UNIMPLEMENTED:
      return "UNIMPLEMENTED";
    case grpc::StatusCode::INTERNAL:
      return "INTERNAL";
    case grpc::StatusCode::UNAVAILABLE:
      return "UNAVAILABLE";
    case grpc::StatusCode::DATA_LOSS:
      return "DATA_LOSS";
    case grpc::StatusCode::UNAUTHENTICATED:
      return "UNAUTHENTICATED";
    default:
      return absl::StrCat("code ", static_cast<int>(code));
  }
}

void Execute(const Plan& plan, pb::VqDiffusion::Stub& stub, const ServerLimits& limits, CallRegistry& calls,
             Result* result) {
  grpc::ClientContext context;
  if (plan.kind == Kind::kDeadline) {
    context.set_deadline(std::chrono::system_clock::now() +
                         std::chrono::microseconds(static_cast<int64_t>(plan.deadline_s * 1e6)));
  }
  if (!calls.Register(plan.index, &context)) return;
  result->sent = true;
  const auto start = SteadyClock::now();
  if (plan.kind == Kind::kCancel && !plan.cancel_after_queued) {
    calls.ScheduleCancel(plan.index,
                         start + std::chrono::microseconds(static_cast<int64_t>(plan.cancel_delay_s * 1e6)));
  }
  std::vector<pb::GenerateEvent> events;
  auto reader = stub.Generate(&context, plan.request);
  pb::GenerateEvent event;
  while (reader->Read(&event)) {
    if (events.empty()) result->first_event_s = Seconds(SteadyClock::now() - start);
    if (event.has_queued() && !result->got_queued) {
      result->got_queued = true;
      if (plan.kind == Kind::kCancel && plan.cancel_after_queued) {
        calls.ScheduleCancel(plan.index, SteadyClock::now() + std::chrono::microseconds(
                                                                  static_cast<int64_t>(plan.cancel_delay_s * 1e6)));
      }
    }
    if (event.has_image()) ++result->images_received;
    events.push_back(std::move(event));  // checked once the call has ended
    event.Clear();
  }
  const grpc::Status status = reader->Finish();
  result->latency_s = Seconds(SteadyClock::now() - start);
  result->flags = calls.Unregister(plan.index);
  result->code = status.error_code();
  result->message = status.error_message();
  result->outcome = Classify(status.error_code());
  result->events = static_cast<int>(events.size());
  auto problem = [&](const std::string& what) { result->problems.push_back(what); };

  const bool client_cancelled = result->flags.cancel_issued || result->flags.time_limit;
  const std::string& o = result->outcome;
  // Is this outcome allowed for this kind of request?
  bool allowed = false;
  switch (plan.kind) {
    case Kind::kNormal:
      allowed = o == "ok" || o == "rejected" || (o == "cancelled" && result->flags.time_limit);
      break;
    case Kind::kInvalid:
      allowed = o == "invalid" || (o == "cancelled" && result->flags.time_limit);
      break;
    case Kind::kCancel:
      allowed = o == "ok" || o == "rejected" || (o == "cancelled" && client_cancelled);
      break;
    case Kind::kDeadline:
      allowed = o == "ok" || o == "rejected" || o == "deadline" || (o == "cancelled" && result->flags.time_limit);
      break;
  }
  if (!allowed) {
    problem(absl::StrCat("unexpected ", CodeName(status.error_code()), " \"", status.error_message(), "\" for a ",
                         KindName(plan.kind), " request",
                         plan.kind == Kind::kInvalid ? absl::StrCat(" (", plan.invalid_what, ")") : std::string(),
                         client_cancelled ? " (cancel issued)" : ""));
  }
  if (o == "invalid") {
    if (plan.kind == Kind::kInvalid && status.error_message().find(plan.invalid_field) == std::string::npos) {
      problem(absl::StrCat("INVALID_ARGUMENT message \"", status.error_message(), "\" does not name ",
                           plan.invalid_field, " (", plan.invalid_what, ")"));
    }
    if (!events.empty()) problem(absl::StrCat("INVALID_ARGUMENT after ", events.size(), " events"));
  }
  if (o == "rejected" && !events.empty()) problem(absl::StrCat("RESOURCE_EXHAUSTED after ", events.size(), " events"));
  if (o == "ok" && result->images_received != plan.num_images) {
    problem(absl::StrCat("OK with ", result->images_received, " images of ", plan.num_images));
  }
  CheckEvents(plan, limits, events, o == "ok", &result->problems);

  // What the server may have counted it as (see the rule at the top of loadgen_main.cc).
  result->allowed_server = AllowedServerLabels(plan.kind, o, result->got_queued);
}

}  // namespace vqd::loadgen
