// See realtime_relay.h. Three coroutines share one session's state on the connection's thread
// (so no locks): a pump per direction and an idle watch. Whoever first sees the session end
// (a close, a failure, idleness) sets `closing_` and closes the other side(s); the rest only
// wind down.
#include "dataplane/proxy/realtime_relay.h"

#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <boost/beast/websocket/ssl.hpp>

#include "absl/strings/str_cat.h"
#include "dataplane/http/no_throw.h"
#include "dataplane/http/socket_deadline.h"

namespace spillway {
namespace {

using namespace asio::experimental::awaitable_operators;  // NOLINT(build/namespaces)
using Clock = std::chrono::steady_clock;

// A direction's buffer grows to its largest message; past this it is given back after use, so
// one large message does not hold memory for the rest of a long session.
constexpr std::size_t kKeptBuffer = 64 * 1024;

std::string Describe(const beast::error_code& ec) {
  if (ec == beast::error::timeout) {
    return "timed out";
  }
  return ec.message();
}

template <class Upstream>
class Relay {
 public:
  Relay(ClientWebSocket& client, beast::tcp_stream& client_tcp, WebSocketOver<Upstream>& backend,
        beast::tcp_stream& backend_tcp, const RealtimeRelayOptions& options,
        absl::FunctionRef<void(absl::string_view)> on_backend_text)
      : client_(client),
        client_tcp_(client_tcp),
        backend_(backend),
        backend_tcp_(backend_tcp),
        options_(options),
        on_backend_text_(on_backend_text),
        idle_(client_tcp.get_executor()),
        last_message_(Clock::now()) {}

  asio::awaitable<RealtimeRelayResult> Run() {
    co_await (Pump(client_, backend_, backend_tcp_, /*from_client=*/true) &&
              Pump(backend_, client_, client_tcp_, /*from_client=*/false) && WatchIdle());
    co_return std::move(result_);
  }

 private:
  template <class From, class To>
  asio::awaitable<void> Pump(From& from, To& to, beast::tcp_stream& to_tcp, bool from_client) {
    beast::flat_buffer buffer;
    for (;;) {
      auto [read_ec, size] = co_await from.async_read(buffer, kNoThrow);
      if (read_ec) {
        co_await OnReadEnded(from, to, from_client, read_ec);
        break;
      }
      last_message_ = Clock::now();
      const bool text = from.got_text();
      if (!from_client && text) {
        on_backend_text_(
            absl::string_view(static_cast<const char*>(buffer.data().data()), buffer.size()));
      }
      if (closing_) {
        break;  // the other side is being closed: nothing more goes out to it
      }
      to.text(text);
      SocketDeadline deadline(to_tcp);
      deadline.Arm(options_.write_timeout);
      auto [write_ec, written] = co_await to.async_write(buffer.data(), kNoThrow);
      const beast::error_code ec = deadline.Disarm(write_ec);
      buffer.consume(buffer.size());
      if (buffer.capacity() > kKeptBuffer) {
        buffer.shrink_to_fit();
      }
      if (ec) {
        co_await OnWriteFailed(from, from_client, ec);
        break;
      }
      ++(from_client ? result_.client_messages : result_.backend_messages);
    }
    if (--pumps_ == 0) {
      idle_.cancel();  // the session is over: the watch ends too
    }
  }

  // `from` closed, failed or was cut. A close is passed on with its code and reason; a failure
  // closes the other side with 1001 (the client went away) or 1014 (the backend failed).
  template <class From, class To>
  asio::awaitable<void> OnReadEnded(From& from, To& to, bool from_client, beast::error_code ec) {
    if (closing_) {
      co_return;  // the end of a close already under way
    }
    closing_ = true;
    if (ec == websocket::error::closed) {
      co_await Close(to, from.reason());
      co_return;
    }
    result_.error =
        absl::StrCat(from_client ? "client" : "backend", " connection failed: ", Describe(ec));
    co_await Close(
        to, from_client ? websocket::close_reason(websocket::close_code::going_away)
                        : websocket::close_reason(kCloseBadGateway, "backend connection failed"));
  }

  // Writing to the other side failed (it is gone or too slow): `from` is told as above.
  template <class From>
  asio::awaitable<void> OnWriteFailed(From& from, bool from_client, beast::error_code ec) {
    if (closing_) {
      co_return;
    }
    closing_ = true;
    result_.error = absl::StrCat("writing to the ", from_client ? "backend" : "client",
                                 " failed: ", Describe(ec));
    co_await Close(
        from, from_client ? websocket::close_reason(kCloseBadGateway, "backend connection failed")
                          : websocket::close_reason(websocket::close_code::going_away));
  }

  // Sends the close frame; the side's pump reads the answer (Beast's timeout bounds the wait).
  template <class Stream>
  asio::awaitable<void> Close(Stream& stream, websocket::close_reason reason) {
    if (!stream.is_open()) {
      co_return;
    }
    auto [ec] = co_await stream.async_close(reason, kNoThrow);
    (void)ec;  // a side already gone needs no close
  }

  // Both sides are closed after idle_timeout without a message either way. The timer is armed
  // for the oldest possible deadline and re-armed when it fires early, not per message.
  asio::awaitable<void> WatchIdle() {
    for (;;) {
      idle_.expires_at(last_message_ + options_.idle_timeout);
      // Woken early (cancelled) only when the session is over, which the next lines see.
      auto [ignored] = co_await idle_.async_wait(kNoThrow);
      (void)ignored;
      if (pumps_ == 0 || closing_) {
        co_return;
      }
      if (Clock::now() < last_message_ + options_.idle_timeout) {
        continue;
      }
      closing_ = true;
      result_.error = absl::StrCat("idle for ", options_.idle_timeout.count(), " ms");
      const websocket::close_reason idle(websocket::close_code::going_away, "idle timeout");
      co_await Close(client_, idle);
      co_await Close(backend_, idle);
      co_return;
    }
  }

  ClientWebSocket& client_;
  beast::tcp_stream& client_tcp_;
  WebSocketOver<Upstream>& backend_;
  beast::tcp_stream& backend_tcp_;
  const RealtimeRelayOptions& options_;
  absl::FunctionRef<void(absl::string_view)> on_backend_text_;
  asio::steady_timer idle_;
  Clock::time_point last_message_;
  int pumps_ = 2;
  bool closing_ = false;
  RealtimeRelayResult result_;
};

}  // namespace

template <class Upstream>
asio::awaitable<RealtimeRelayResult> RelayRealtime(
    ClientWebSocket& client, beast::tcp_stream& client_tcp, WebSocketOver<Upstream>& backend,
    beast::tcp_stream& backend_tcp, const RealtimeRelayOptions& options,
    absl::FunctionRef<void(absl::string_view)> on_backend_text) {
  Relay<Upstream> relay(client, client_tcp, backend, backend_tcp, options, on_backend_text);
  co_return co_await relay.Run();
}

template asio::awaitable<RealtimeRelayResult> RelayRealtime<beast::tcp_stream>(
    ClientWebSocket&, beast::tcp_stream&, WebSocketOver<beast::tcp_stream>&, beast::tcp_stream&,
    const RealtimeRelayOptions&, absl::FunctionRef<void(absl::string_view)>);
template asio::awaitable<RealtimeRelayResult> RelayRealtime<beast::ssl_stream<beast::tcp_stream>>(
    ClientWebSocket&, beast::tcp_stream&, WebSocketOver<beast::ssl_stream<beast::tcp_stream>>&,
    beast::tcp_stream&, const RealtimeRelayOptions&, absl::FunctionRef<void(absl::string_view)>);

}  // namespace spillway
