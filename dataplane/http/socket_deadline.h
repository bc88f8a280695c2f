// Deadlines for the request path's socket operations, kept the way nginx keeps its timers:
// each I/O thread links its waiting sockets into a list that the thread's own ticker sweeps
// every 100 ms, closing those past their deadline. Beast's tcp_stream timeouts instead arm an
// Asio timer around every operation (a heap insert, a cancel and a posted completion: ~1.4k
// instructions and ~9 cache misses per request at 256 connections, README "Performance").
// A deadline fires up to one tick late.
#pragma once

#include <boost/beast/core/error.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <chrono>

namespace spillway {

namespace beast = boost::beast;

class SocketDeadline;

// One per I/O thread; not thread-safe (only its own thread touches it).
class SocketDeadlines {
 public:
  using Clock = std::chrono::steady_clock;
  static constexpr std::chrono::milliseconds kTick{100};

  SocketDeadlines() = default;
  SocketDeadlines(const SocketDeadlines&) = delete;
  SocketDeadlines& operator=(const SocketDeadlines&) = delete;
  ~SocketDeadlines();

  // The calling thread's, or null where none was bound (there Beast's own timeouts serve).
  static SocketDeadlines* ForThisThread();
  void BindToThisThread();

  // Closes every armed socket whose deadline is at or before `now`: its operation ends, and
  // SocketDeadline::Disarm reports beast::error::timeout.
  void Sweep(Clock::time_point now);
  bool empty() const { return head_ == nullptr; }

 private:
  friend class SocketDeadline;
  void Link(SocketDeadline& deadline);
  void Unlink(SocketDeadline& deadline);

  SocketDeadline* head_ = nullptr;
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
  // Whether the deadline passed and closed the socket (still armed or not).
  bool expired() const { return expired_; }

 private:
  friend class SocketDeadlines;

  beast::tcp_stream& stream_;
  SocketDeadlines* const owner_;  // null: Beast's timer
  SocketDeadlines::Clock::time_point deadline_;
  SocketDeadline* prev_ = nullptr;
  SocketDeadline* next_ = nullptr;
  bool linked_ = false;
  bool expired_ = false;
};

}  // namespace spillway
