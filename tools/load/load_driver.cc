// See load_driver.h.
#include "tools/load/load_driver.h"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <csignal>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "absl/strings/str_format.h"
#include "dataplane/http/no_throw.h"
#include "dataplane/http/socket_deadline.h"
#include "tools/load/load_client.h"
#include "tools/load/request_plan.h"

namespace spillway::load {

namespace asio = boost::asio;
using std::chrono::duration_cast;

namespace {

class Driver {
 public:
  Driver(asio::io_context& io, LoadClient& client, const LoadOptions& options, LoadStats& stats,
         LoadTimeline* timeline, std::ostream* progress)
      : io_(io),
        client_(client),
        options_(options),
        stats_(stats),
        timeline_(timeline),
        progress_(progress),
        planner_(options),
        count_(options.schedule.count()),
        due_timer_(io),
        slot_freed_(io),
        ticker_(io),
        sweeper_(io),
        signals_(io) {
    deadlines_.BindToThisThread();
  }

  asio::awaitable<void> Run();

 private:
  asio::awaitable<void> WaitForSlot();
  asio::awaitable<void> SendOne(PlannedRequest planned, int64_t minute,
                                std::chrono::nanoseconds offset);
  asio::awaitable<void> Tick();
  asio::awaitable<void> Sweep();
  void PrintProgress(bool last);

  asio::io_context& io_;
  LoadClient& client_;
  const LoadOptions& options_;
  LoadStats& stats_;
  LoadTimeline* timeline_;
  std::ostream* progress_;
  RequestPlanner planner_;
  const int64_t count_;
  asio::steady_timer due_timer_;
  // Never expires: cancelled to wake the scheduler when a request ends.
  asio::steady_timer slot_freed_;
  asio::steady_timer ticker_;
  // The requests' deadlines (load_client.cc), swept as the agent sweeps its own.
  SocketDeadlines deadlines_;
  asio::steady_timer sweeper_;
  asio::signal_set signals_;
  Clock::time_point run_start_;
  int64_t in_flight_ = 0;
  bool stopping_ = false;
  bool done_ = false;
};

asio::awaitable<void> Driver::WaitForSlot() {
  while (in_flight_ >= options_.concurrency && !stopping_) {
    slot_freed_.expires_at(Clock::time_point::max());
    co_await slot_freed_.async_wait(kNoThrow);
  }
}

asio::awaitable<void> Driver::SendOne(PlannedRequest planned, int64_t minute,
                                      std::chrono::nanoseconds offset) {
  std::string request = BuildHttpRequest(options_, planned);
  LoadStats* stats = &stats_;
  SseTiming::GapSink on_gap = [stats, minute](Micros gap) { stats->RecordTokenGap(minute, gap); };
  const Clock::time_point start = Clock::now();
  RequestResult result =
      co_await client_.Send(std::move(request), planned.stream, start, std::move(on_gap));
  stats_.RecordResult(minute, result, planned.key, planned.route);
  if (timeline_ != nullptr) {
    timeline_->RecordResult(offset, result);
  }
  --in_flight_;
  slot_freed_.cancel();
}

asio::awaitable<void> Driver::Run() {
  run_start_ = Clock::now();
  boost::system::error_code ignored;
  signals_.add(SIGINT, ignored);
  signals_.add(SIGTERM, ignored);
  signals_.async_wait([this](const boost::system::error_code& ec, int) {
    if (!ec) {
      stopping_ = true;  // send nothing more; what is in flight ends (within --timeout)
      due_timer_.cancel();
      slot_freed_.cancel();
      boost::system::error_code cleared;
      signals_.clear(cleared);  // a second ^C ends the process at once
    }
  });
  asio::co_spawn(io_, Sweep(), asio::detached);
  if (progress_ != nullptr) {
    asio::co_spawn(io_, Tick(), asio::detached);
  }
  for (int64_t i = 0; i < count_ && !stopping_; ++i) {
    const std::chrono::nanoseconds offset = options_.schedule.DueOffset(i);
    const Clock::time_point due = run_start_ + offset;
    due_timer_.expires_at(due);
    co_await due_timer_.async_wait(kNoThrow);
    const bool capped = in_flight_ >= options_.concurrency;
    co_await WaitForSlot();
    if (stopping_) break;
    std::optional<Micros> late;
    if (capped) {
      late = duration_cast<Micros>(Clock::now() - due);
    }
    PlannedRequest planned = planner_.Next();
    const int64_t minute =
        stats_.RecordSent(offset, planned.stream, late, planned.key, planned.route);
    if (timeline_ != nullptr) {
      timeline_->RecordSent(offset);
    }
    ++in_flight_;
    asio::co_spawn(io_, SendOne(planned, minute, offset), asio::detached);
  }
  while (in_flight_ > 0) {
    slot_freed_.expires_at(Clock::time_point::max());
    co_await slot_freed_.async_wait(kNoThrow);
  }
  stats_.Finish(Clock::now() - run_start_);
  done_ = true;
  ticker_.cancel();
  sweeper_.cancel();
  signals_.cancel(ignored);  // the pending wait ends, so io.run() can return
  signals_.clear(ignored);   // SIGINT and SIGTERM act as before the run
  if (progress_ != nullptr) {
    PrintProgress(true);
  }
}

asio::awaitable<void> Driver::Tick() {
  while (!done_) {
    ticker_.expires_after(std::chrono::seconds(1));
    co_await ticker_.async_wait(kNoThrow);
    if (!done_) PrintProgress(false);
  }
}

asio::awaitable<void> Driver::Sweep() {
  while (!done_) {
    sweeper_.expires_after(SocketDeadlines::kTick);
    co_await sweeper_.async_wait(kNoThrow);
    deadlines_.Sweep(SocketDeadlines::Clock::now());
  }
}

void Driver::PrintProgress(bool last) {
  if (last) {
    *progress_ << "\r\033[K" << std::flush;  // the report follows on a clean line
    return;
  }
  const LoadCounters& t = stats_.total();
  const double elapsed = std::chrono::duration<double>(Clock::now() - run_start_).count();
  *progress_ << absl::StrFormat(
                    "\r\033[K%.0fs/%.0fs  sent %d/%d  ok %d  429 %d  other %d  in flight %d%s",
                    elapsed, std::chrono::duration<double>(options_.duration).count(), t.sent,
                    count_, t.ok, t.throttled, t.errors, in_flight_,
                    stopping_ ? "  (stopping)" : "")
             << std::flush;
}

asio::awaitable<void> ProbeThenRun(asio::io_context* io, LoadClient* client, Driver* driver,
                                   absl::Status* probe) {
  *probe = co_await client->Probe();
  if (probe->ok()) {
    co_await driver->Run();
  }
  // Every request ended. HTTP/2 sessions' read loops would keep io.run() going; they end with
  // the io_context, which closes their connections.
  io->stop();
}

}  // namespace

absl::Status RunLoad(const LoadOptions& options, LoadStats& stats, LoadTimeline* timeline,
                     std::ostream* progress) {
  absl::StatusOr<std::unique_ptr<asio::ssl::context>> tls = MakeTlsContext(options.tls_ca_file);
  if (!tls.ok()) {
    return tls.status();
  }
  asio::io_context io(1);
  LoadClient client(io.get_executor(), **tls, options);
  Driver driver(io, client, options, stats, timeline, progress);
  absl::Status probe;
  asio::co_spawn(io, ProbeThenRun(&io, &client, &driver, &probe), asio::detached);
  io.run();
  stats.SetProtocol(std::string(client.protocol()));
  return probe;
}

}  // namespace spillway::load
