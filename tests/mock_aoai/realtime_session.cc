// See realtime_session.h. One coroutine: read a message, write its answers, read the next; a
// slow reader slows the session down. The idle timeout is the mock's (--idle-timeout).
#include "tests/mock_aoai/realtime_session.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <boost/beast/websocket/ssl.hpp>
#include <boost/beast/websocket/stream.hpp>
#include <string>

#include "absl/time/time.h"
#include "tests/mock_aoai/http_reply.h"
#include "tests/mock_aoai/realtime_conversation.h"

namespace spillway::mock {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;

constexpr auto kNoThrow = asio::as_tuple(asio::use_awaitable);
constexpr std::size_t kMaxMessage = 16 * 1024 * 1024;  // Azure's own limit is not published

template <class Stream>
class RealtimeSession {
 public:
  RealtimeSession(Stream& stream, const MockConfig& config, Stats& stats,
                  absl::string_view deployment, absl::string_view model)
      : ws_(stream),
        config_(config),
        stats_(stats),
        deployment_(deployment),
        timer_(stream.get_executor()),
        conversation_(model, config.completion_tokens) {}

  asio::awaitable<void> Run(const beast::http::request<beast::http::string_body>& request) {
    beast::get_lowest_layer(ws_).expires_never();  // the WebSocket keeps its own timeouts
    ws_.set_option(websocket::stream_base::timeout{
        std::chrono::seconds(10), absl::ToChronoNanoseconds(config_.idle_timeout), false});
    ws_.read_message_max(kMaxMessage);
    ws_.set_option(websocket::stream_base::decorator([this](websocket::response_type& head) {
      std::string id;
      AppendUuid(id);
      head.set("x-request-id", id);
      head.set("apim-request-id", id);
      head.set("x-ms-region", config_.region);
    }));
    auto [accept_ec] = co_await ws_.async_accept(request, kNoThrow);
    if (accept_ec) {
      co_return;
    }
    stats_.RealtimeOpened();
    if (!co_await Send(conversation_.SessionCreated())) {
      co_return;
    }
    beast::flat_buffer buffer;
    for (;;) {
      auto [read_ec, size] = co_await ws_.async_read(buffer, kNoThrow);
      if (read_ec == websocket::error::closed) {
        stats_.RealtimeEnded(deployment_, "client", ws_.reason().code, ws_.reason().reason.c_str());
        co_return;
      }
      if (read_ec) {
        stats_.RealtimeEnded(deployment_, "cut", 0, read_ec.message());
        co_return;
      }
      const std::string message = beast::buffers_to_string(buffer.data());
      buffer.consume(buffer.size());
      if (ws_.got_binary()) {
        if (!co_await Send(message, /*binary=*/true)) {
          co_return;
        }
        continue;
      }
      const RealtimeReply reply = conversation_.OnClientEvent(message);
      if (reply.echo && !co_await Send(message)) {
        co_return;
      }
      bool first_token = true;
      for (const RealtimeEvent& event : reply.events) {
        if (event.token) {
          const absl::Duration wait = first_token ? config_.ttft : config_.per_token;
          first_token = false;
          if (wait > absl::ZeroDuration() && !co_await Sleep(wait)) {
            co_return;
          }
        }
        if (!co_await Send(event.text)) {
          co_return;
        }
      }
      if (reply.usage.has_value()) {
        stats_.AddUsage(deployment_, *reply.usage);  // response.done went out with it
      }
      if (reply.close) {
        co_await CloseWith(reply.close_code, reply.close_reason);
        co_return;
      }
    }
  }

 private:
  asio::awaitable<bool> Send(absl::string_view text, bool binary = false) {
    ws_.binary(binary);
    auto [ec, n] = co_await ws_.async_write(asio::buffer(text.data(), text.size()), kNoThrow);
    if (ec) {
      stats_.RealtimeEnded(deployment_, "cut", 0, ec.message());
    }
    co_return !ec;
  }

  asio::awaitable<bool> Sleep(absl::Duration duration) {
    timer_.expires_after(absl::ToChronoNanoseconds(duration));
    auto [ec] = co_await timer_.async_wait(kNoThrow);
    co_return !ec;
  }

  // mock.close: the mock ends the session; the client's close answer is read (Beast's
  // timeout bounds the wait).
  asio::awaitable<void> CloseWith(uint16_t code, const std::string& reason) {
    const websocket::close_reason close(static_cast<websocket::close_code>(code), reason);
    auto [close_ec] = co_await ws_.async_close(close, kNoThrow);
    beast::flat_buffer sink;
    while (!close_ec) {
      auto [read_ec, n] = co_await ws_.async_read(sink, kNoThrow);
      sink.consume(sink.size());
      if (read_ec) {
        break;
      }
    }
    stats_.RealtimeEnded(deployment_, "mock", code, reason);
  }

  websocket::stream<Stream&, false> ws_;
  const MockConfig& config_;
  Stats& stats_;
  const std::string deployment_;
  asio::steady_timer timer_;
  RealtimeConversation conversation_;
};

}  // namespace

template <class Stream>
asio::awaitable<void> ServeRealtime(Stream& stream,
                                    const beast::http::request<beast::http::string_body>& request,
                                    const MockConfig& config, Stats& stats,
                                    absl::string_view deployment, absl::string_view model) {
  RealtimeSession<Stream> session(stream, config, stats, deployment, model);
  co_await session.Run(request);
}

template asio::awaitable<void> ServeRealtime<beast::tcp_stream>(
    beast::tcp_stream&, const beast::http::request<beast::http::string_body>&, const MockConfig&,
    Stats&, absl::string_view, absl::string_view);
template asio::awaitable<void> ServeRealtime<beast::ssl_stream<beast::tcp_stream>>(
    beast::ssl_stream<beast::tcp_stream>&, const beast::http::request<beast::http::string_body>&,
    const MockConfig&, Stats&, absl::string_view, absl::string_view);

}  // namespace spillway::mock
