// A socket read that knows when it has emptied the socket, so the next read waits for the event
// loop instead of trying the socket first. Asio (Boost 1.81) takes a socket for drained only
// after a read returns nothing: after every short read the next read is tried at once and fails
// with EAGAIN, one wasted system call per event of a paced stream. nginx reads until EAGAIN only
// when epoll said the peer closed; here the kernel says it instead: with TCP_INQ set, each
// recvmsg also returns how many bytes are left, and "1" once a FIN is queued (tcp(7)), so a
// close that arrived with the last data is never mistaken for a drained socket.
#pragma once

#include <algorithm>
#include <boost/asio/buffer.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/socket_base.hpp>
#include <boost/version.hpp>
#include <cerrno>
#include <cstddef>

// Not self-contained: needs socket_base above.
#include <boost/asio/detail/reactive_socket_recv_op.hpp>
#include <boost/asio/detail/reactor_op.hpp>
#include <boost/asio/detail/socket_ops.hpp>

namespace spillway {

// Memory a read asks for only once the socket has bytes for it. A relay waiting for a paced
// stream's next event then holds none, and each event lands in the block the thread used last,
// still in cache, where a buffer of the stream's own was cold after 33 ms among 2,000 streams
// (~6 cache misses an event, callgrind). Copied into the read's operation, so that the reactor
// calls it without touching the reader's frame but to store what it took in `slot`.
struct ReadTarget {
  // The memory for one read, `offset` bytes into a block, noted in `slot`; called as the
  // reactor reads (on the socket's thread).
  boost::asio::mutable_buffer (*take)(void* slot, std::size_t offset) = nullptr;
  // The read found nothing or failed: the block in `slot` is not needed.
  void (*drop)(void* slot) = nullptr;
  void* slot = nullptr;
  std::size_t offset = 0;
};

// One buffer to read into, read as above. Used with a stream socket's async_read_some.
struct DrainedReadBuffer : boost::asio::mutable_buffer {
  explicit DrainedReadBuffer(boost::asio::mutable_buffer buffer) : mutable_buffer(buffer) {}
  // Reads into what `target` gives when the socket has bytes; at most `max`, which Asio sees as
  // the buffer's size (a zero-sized read would complete at once).
  DrainedReadBuffer(const ReadTarget& target, std::size_t max)
      : mutable_buffer(nullptr, max), target(target) {}
  ReadTarget target;       // take == nullptr: the read is into the buffer itself
  bool defer_ack = false;  // DeferReadAcks just before the read (see there)
};

// Asks the kernel to report the bytes left after each read on `fd` (TCP_INQ). Without it (an
// older kernel), reads behave as Asio's own. Returns whether the option took.
bool EnableDrainReports(int fd);

// Lets the next read of `fd` leave its acknowledgement to TCP's delayed ACK (TCP_QUICKACK off,
// the "pingpong" mode). Otherwise a read that empties a socket holding a small pushed segment
// sends a pure ACK at once: one per event of a token stream, ~22% of the agent's CPU on paced
// streams over loopback, where the ACK's processing at the backend's end is charged to the
// sender. With it, the kernel ACKs as data arrives, about every second event. The kernel leaves
// the mode when a delayed ACK's timer fires (an event more than ~40 ms after the last), so it is
// set before each read. A backend that sends with Nagle's algorithm on would wait for the
// delayed ACK before each event: --stream-delayed-acks=false. Returns whether it took.
bool DeferReadAcks(int fd);

// recvmsg into [data, data + size): the bytes read (0 at the end of the stream), or -errno.
// `*drained` says whether the kernel reported nothing left to read and no FIN queued.
long ReceiveNotingDrain(int fd, void* data, std::size_t size, int flags, bool* drained);

}  // namespace spillway

#if BOOST_VERSION / 100 != 1081
#error "DrainedReadBuffer's read operation follows Boost 1.81's reactive_socket_recv_op: check it"
#endif

namespace boost::asio::detail {

// Boost 1.81's reactive_socket_recv_op_base, except that a read that drained the socket reports
// done_and_exhausted, which makes the reactor wait for the next event before reading again.
template <>
class reactive_socket_recv_op_base<spillway::DrainedReadBuffer> : public reactor_op {
 public:
  reactive_socket_recv_op_base(const boost::system::error_code& success_ec, socket_type socket,
                               socket_ops::state_type state,
                               const spillway::DrainedReadBuffer& buffer,
                               socket_base::message_flags flags, func_type complete_func)
      : reactor_op(success_ec, &reactive_socket_recv_op_base::do_perform, complete_func),
        socket_(socket),
        state_(state),
        buffer_(buffer),
        target_(buffer.target),
        flags_(flags),
        defer_ack_(buffer.defer_ack) {}

  static status do_perform(reactor_op* base) {
    auto* o = static_cast<reactive_socket_recv_op_base*>(base);
    if (o->target_.take == nullptr) {
      return Perform(o, o->buffer_);
    }
    const boost::asio::mutable_buffer into = o->target_.take(o->target_.slot, o->target_.offset);
    const status result =
        Perform(o, boost::asio::buffer(into, (std::min)(into.size(), o->buffer_.size())));
    if (o->bytes_transferred_ == 0) {
      o->target_.drop(o->target_.slot);
    }
    return result;
  }

 private:
  static status Perform(reactive_socket_recv_op_base* o, boost::asio::mutable_buffer into) {
    if (o->defer_ack_) {
      (void)spillway::DeferReadAcks(o->socket_);
    }
    for (;;) {
      bool drained = false;
      const long bytes =
          spillway::ReceiveNotingDrain(o->socket_, into.data(), into.size(), o->flags_, &drained);
      if (bytes > 0) {
        o->bytes_transferred_ = static_cast<std::size_t>(bytes);
        return drained ? done_and_exhausted : done;
      }
      if (bytes == 0) {
        if ((o->state_ & socket_ops::stream_oriented) != 0 && into.size() != 0) {
          o->ec_ = boost::asio::error::eof;
          return done_and_exhausted;
        }
        o->bytes_transferred_ = 0;
        return done;
      }
      if (bytes == -EINTR) {
        continue;
      }
      if (bytes == -EAGAIN || bytes == -EWOULDBLOCK) {
        return not_done;
      }
      o->ec_ = boost::system::error_code(static_cast<int>(-bytes),
                                         boost::asio::error::get_system_category());
      o->bytes_transferred_ = 0;
      return done;
    }
  }

  socket_type socket_;
  socket_ops::state_type state_;
  boost::asio::mutable_buffer buffer_;
  spillway::ReadTarget target_;
  socket_base::message_flags flags_;
  bool defer_ack_;
};

}  // namespace boost::asio::detail
