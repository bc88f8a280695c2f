// See socket_deadline.h.
#include "dataplane/http/socket_deadline.h"

namespace spillway {
namespace {

thread_local SocketDeadlines* this_thread_deadlines = nullptr;

}  // namespace

SocketDeadlines::~SocketDeadlines() {
  while (head_ != nullptr) {
    Unlink(*head_);
  }
  if (this_thread_deadlines == this) {
    this_thread_deadlines = nullptr;
  }
}

SocketDeadlines* SocketDeadlines::ForThisThread() { return this_thread_deadlines; }

void SocketDeadlines::BindToThisThread() { this_thread_deadlines = this; }

void SocketDeadlines::Sweep(Clock::time_point now) {
  SocketDeadline* next = nullptr;
  for (SocketDeadline* d = head_; d != nullptr; d = next) {
    next = d->next_;
    if (d->deadline_ <= now) {
      Unlink(*d);
      d->expired_ = true;
      // As Beast does on a timeout: the pending operation ends with operation_aborted.
      beast::error_code ignored;
      d->stream_.socket().close(ignored);
    }
  }
}

void SocketDeadlines::Link(SocketDeadline& deadline) {
  deadline.prev_ = nullptr;
  deadline.next_ = head_;
  if (head_ != nullptr) {
    head_->prev_ = &deadline;
  }
  head_ = &deadline;
  deadline.linked_ = true;
}

void SocketDeadlines::Unlink(SocketDeadline& deadline) {
  if (deadline.prev_ != nullptr) {
    deadline.prev_->next_ = deadline.next_;
  } else {
    head_ = deadline.next_;
  }
  if (deadline.next_ != nullptr) {
    deadline.next_->prev_ = deadline.prev_;
  }
  deadline.prev_ = deadline.next_ = nullptr;
  deadline.linked_ = false;
}

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
  // A Beast expiry left by an earlier operation (a timed remainder write) would arm its timer
  // again around this one.
  stream_.expires_never();
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

}  // namespace spillway
