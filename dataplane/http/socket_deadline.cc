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
  while (head_ != nullptr) {
    Unlink(*head_);
  }
  while (watches_ != nullptr) {
    Unlink(*watches_);
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
  if (watches_ != nullptr && now >= next_client_check_) {
    next_client_check_ = now + kClientCheck;
    CheckClients();
  }
}

void SocketDeadlines::CheckClients() {
  ClientWatch* next = nullptr;
  for (ClientWatch* w = watches_; w != nullptr; w = next) {
    next = w->next_;
    if (PeerClosed(w->fd_)) {
      Unlink(*w);
      w->gone_ = true;
      w->on_gone_(w->arg_);
    }
  }
}

template <class Node>
void SocketDeadlines::LinkFront(Node*& head, Node& node) {
  node.prev_ = nullptr;
  node.next_ = head;
  if (head != nullptr) {
    head->prev_ = &node;
  }
  head = &node;
  node.linked_ = true;
}

template <class Node>
void SocketDeadlines::UnlinkFrom(Node*& head, Node& node) {
  if (node.prev_ != nullptr) {
    node.prev_->next_ = node.next_;
  } else {
    head = node.next_;
  }
  if (node.next_ != nullptr) {
    node.next_->prev_ = node.prev_;
  }
  node.prev_ = node.next_ = nullptr;
  node.linked_ = false;
}

void SocketDeadlines::Link(SocketDeadline& deadline) { LinkFront(head_, deadline); }

void SocketDeadlines::Unlink(SocketDeadline& deadline) { UnlinkFrom(head_, deadline); }

void SocketDeadlines::Link(ClientWatch& watch) { LinkFront(watches_, watch); }

void SocketDeadlines::Unlink(ClientWatch& watch) { UnlinkFrom(watches_, watch); }

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
