// See socket_deadline.h.
#include "dataplane/http/socket_deadline.h"

#include <sys/socket.h>

#include <cerrno>

namespace spillway {
namespace {

thread_local SocketDeadlines* this_thread_deadlines = nullptr;

// Whether the peer of `fd` has closed or reset the connection. Bytes waiting (a pipelined
// request) or nothing yet both mean it is still there.
bool PeerClosed(int fd) {
  char byte;
  const ssize_t n = ::recv(fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT);
  return n == 0 || (n < 0 && (errno == ECONNRESET || errno == ENOTCONN || errno == EPIPE));
}

}  // namespace

SocketDeadlines::~SocketDeadlines() {
  deadlines_.ForEach([this](SocketDeadline& d) { deadlines_.Remove(d); });
  watches_.ForEach([this](ClientWatch& w) { watches_.Remove(w); });
  if (this_thread_deadlines == this) {
    this_thread_deadlines = nullptr;
  }
}

SocketDeadlines* SocketDeadlines::ForThisThread() { return this_thread_deadlines; }

void SocketDeadlines::BindToThisThread() { this_thread_deadlines = this; }

void SocketDeadlines::Sweep(Clock::time_point now) {
  deadlines_.ForEach([this, now](SocketDeadline& d) {
    if (d.deadline_ <= now) {
      deadlines_.Remove(d);
      d.expired_ = true;
      // As Beast does on a timeout: the pending operation ends with operation_aborted.
      beast::error_code ignored;
      d.stream_.socket().close(ignored);
    }
  });
  if (!watches_.empty() && now >= next_client_check_) {
    next_client_check_ = now + kClientCheck;
    CheckClients();
  }
}

void SocketDeadlines::CheckClients() {
  watches_.ForEach([this](ClientWatch& w) {
    if (PeerClosed(w.fd_)) {
      watches_.Remove(w);
      w.gone_ = true;
      w.on_gone_(w.arg_);
    }
  });
}

void SocketDeadlines::Link(SocketDeadline& deadline) { deadlines_.Add(deadline); }

void SocketDeadlines::Unlink(SocketDeadline& deadline) { deadlines_.Remove(deadline); }

void SocketDeadlines::Link(ClientWatch& watch) { watches_.Add(watch); }

void SocketDeadlines::Unlink(ClientWatch& watch) { watches_.Remove(watch); }

SocketDeadline::~SocketDeadline() {
  if (linked_) {
    owner_->Unlink(*this);
  }
}

void SocketDeadline::ArmAt(SocketDeadlines::Clock::time_point deadline) {
  if (owner_ == nullptr) {
    stream_.expires_at(deadline);
    return;
  }
  // No Beast expiry is left to clear here: the operations that set one clear it when they end
  // (WriteRest, WriteResponse), so arming touches only this object and the thread's table.
  deadline_ = deadline;
  expired_ = false;
  if (!linked_) {
    owner_->Link(*this);
  }
}

beast::error_code SocketDeadline::Disarm(beast::error_code ec) {
  if (linked_) {
    owner_->Unlink(*this);
  }
  return expired_ ? beast::error_code(beast::error::timeout) : ec;
}

ClientWatch::ClientWatch(beast::tcp_stream& client, OnGone on_gone, void* arg)
    : owner_(SocketDeadlines::ForThisThread()),
      fd_(client.socket().native_handle()),
      on_gone_(on_gone),
      arg_(arg) {
  if (owner_ != nullptr && fd_ >= 0) {
    owner_->Link(*this);
  }
}

bool ClientWatch::Stop() {
  if (linked_) {
    owner_->Unlink(*this);
  }
  return gone_;
}

}  // namespace spillway
