// Deadlines for the request path's socket operations, kept the way nginx keeps its timers:
// each I/O thread keeps its waiting sockets in a table that the thread's own ticker sweeps
// every 100 ms, closing those past their deadline. Beast's tcp_stream timeouts instead arm an
// Asio timer around every operation (a heap insert, a cancel and a posted completion: ~1.4k
// instructions and ~9 cache misses per request at 256 connections, README "Performance").
// A deadline fires up to one tick late.
//
// The same sweep watches clients whose request waits for a backend's first byte (a reasoning
// model may think for minutes): about once a second it peeks at each watched client socket,
// and when the client has closed it, tells the waiting attempt so the backend stops working.
#pragma once

#include <boost/beast/core/error.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <chrono>
#include <cstdint>

#include "dataplane/http/slot_table.h"

namespace spillway {

namespace beast = boost::beast;

class ClientWatch;
class SocketDeadline;

// One per I/O thread; not thread-safe (only its own thread touches it).
class SocketDeadlines {
 public:
  using Clock = std::chrono::steady_clock;
  static constexpr std::chrono::milliseconds kTick{100};
  // How often watched clients are peeked at: one recv per watch and check, never per request.
  static constexpr std::chrono::milliseconds kClientCheck{1000};

  SocketDeadlines() = default;
  SocketDeadlines(const SocketDeadlines&) = delete;
  SocketDeadlines& operator=(const SocketDeadlines&) = delete;
  ~SocketDeadlines();

  // The calling thread's, or null where none was bound (there Beast's own timeouts serve).
  static SocketDeadlines* ForThisThread();
  void BindToThisThread();

  // Closes every armed socket whose deadline is at or before `now`: its operation ends, and
  // SocketDeadline::Disarm reports beast::error::timeout. Every kClientCheck, also tells each
  // ClientWatch whose client closed.
  void Sweep(Clock::time_point now);
  bool empty() const { return deadlines_.empty() && watches_.empty(); }

 private:
  friend class ClientWatch;
  friend class SocketDeadline;
  void Link(SocketDeadline& deadline);
  void Unlink(SocketDeadline& deadline);
  void Link(ClientWatch& watch);
  void Unlink(ClientWatch& watch);
  void CheckClients();

  SlotTable<SocketDeadline> deadlines_;
  SlotTable<ClientWatch> watches_;
  Clock::time_point next_client_check_{};
};

// Watches one client connection while its request waits upstream, owned by the coroutine
// waiting. When the sweep finds the client closed (or reset), it calls `on_gone(arg)` once,
// on the thread's own loop: the caller cuts its upstream operation there. Linking costs a few
// stores, no syscall: only the once-a-second sweep looks at the socket. A client that only
// shut down its sending side counts as gone, as nginx does without proxy_ignore_client_abort.
class ClientWatch {
 public:
  using OnGone = void (*)(void* arg);

  ClientWatch(beast::tcp_stream& client, OnGone on_gone, void* arg);
  ClientWatch(const ClientWatch&) = delete;
  ClientWatch& operator=(const ClientWatch&) = delete;
  ~ClientWatch() { Stop(); }

  // Ends the watch; whether the client had gone.
  bool Stop();
  bool gone() const { return gone_; }

 private:
  friend class SocketDeadlines;
  friend class SlotTable<ClientWatch>;

  SocketDeadlines* const owner_;  // null: nothing sweeps on this thread, nothing is watched
  const int fd_;
  const OnGone on_gone_;
  void* const arg_;
  std::uint32_t slot_ = 0;
  bool linked_ = false;
  bool gone_ = false;
};

// The deadline of one operation at a time on one stream, owned by the coroutine doing it.
class SocketDeadline {
 public:
  explicit SocketDeadline(beast::tcp_stream& stream)
      : stream_(stream), owner_(SocketDeadlines::ForThisThread()) {}
  SocketDeadline(const SocketDeadline&) = delete;
  SocketDeadline& operator=(const SocketDeadline&) = delete;
  ~SocketDeadline();

  void Arm(SocketDeadlines::Clock::duration timeout) {
    ArmAt(SocketDeadlines::Clock::now() + timeout);
  }
  void ArmAt(SocketDeadlines::Clock::time_point deadline);
  // After the operation: its error, or beast::error::timeout when the deadline cut it.
  [[nodiscard]] beast::error_code Disarm(beast::error_code ec);
  // After an operation that leaves the deadline armed for the next (a relay's reads, re-armed
  // each time): as Disarm, without taking it off the thread's table.
  [[nodiscard]] beast::error_code Cut(beast::error_code ec) const {
    return expired_ ? beast::error_code(beast::error::timeout) : ec;
  }
  // Whether the deadline passed and closed the socket (still armed or not).
  bool expired() const { return expired_; }

 private:
  friend class SocketDeadlines;
  friend class SlotTable<SocketDeadline>;

  beast::tcp_stream& stream_;
  SocketDeadlines* const owner_;  // null: Beast's timer
  SocketDeadlines::Clock::time_point deadline_;
  std::uint32_t slot_ = 0;
  bool linked_ = false;
  bool expired_ = false;
};

}  // namespace spillway
