// See websocket_client.h. As the HTTP client: each step runs asynchronously on a private
// io_context under the TCP stream's deadline.
#include "tests/support/websocket_client.h"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/websocket/stream.hpp>
#include <chrono>

#include "absl/strings/str_cat.h"

namespace spillway::test {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;

absl::string_view View(beast::string_view s) { return absl::string_view(s.data(), s.size()); }

}  // namespace

struct WebSocketClient::Impl {
  asio::io_context io;
  websocket::stream<beast::tcp_stream, false> ws{io};
  beast::flat_buffer buffer;

  template <class Start>
  beast::error_code Run(absl::Duration timeout, Start&& start) {
    beast::get_lowest_layer(ws).expires_after(absl::ToChronoNanoseconds(timeout));
    beast::error_code result = asio::error::would_block;
    start([&result](beast::error_code ec, auto&&...) { result = ec; });
    io.restart();
    io.run();
    return result;
  }
};

WebSocketClient::WebSocketClient() : impl_(std::make_unique<Impl>()) {}

WebSocketClient::~WebSocketClient() {
  beast::error_code ignored;
  beast::get_lowest_layer(impl_->ws).socket().close(ignored);
  impl_->io.restart();
  impl_->io.poll();
}

absl::StatusOr<std::unique_ptr<WebSocketClient>> WebSocketClient::Connect(
    int port, absl::string_view target, const HttpHeaders& headers, HttpResponse* refusal,
    absl::Duration timeout) {
  std::unique_ptr<WebSocketClient> client(new WebSocketClient());
  Impl& impl = *client->impl_;
  const tcp::endpoint endpoint(asio::ip::make_address("127.0.0.1"), static_cast<uint16_t>(port));
  beast::error_code ec = impl.Run(timeout, [&](auto handler) {
    beast::get_lowest_layer(impl.ws).async_connect(endpoint, std::move(handler));
  });
  if (ec) {
    return absl::UnavailableError(absl::StrCat("connect to port ", port, ": ", ec.message()));
  }
  impl.ws.read_message_max(64 * 1024 * 1024);
  impl.ws.set_option(websocket::stream_base::decorator([&headers](websocket::request_type& req) {
    req.set(beast::http::field::user_agent, "spillway-test-client");
    for (const auto& [name, value] : headers) {
      req.set(name, value);
    }
  }));
  websocket::response_type response;
  const std::string host = absl::StrCat("127.0.0.1:", port);
  ec = impl.Run(timeout, [&](auto handler) {
    impl.ws.async_handshake(response, host, std::string(target), std::move(handler));
  });
  HttpResponse answer;
  answer.status = response.result_int();
  for (const auto& field : response) {
    answer.headers.emplace_back(View(field.name_string()), View(field.value()));
  }
  answer.body = response.body();
  if (ec == websocket::error::upgrade_declined) {
    if (refusal != nullptr) {
      *refusal = answer;
    }
    return absl::FailedPreconditionError(
        absl::StrCat("upgrade refused: ", answer.status, " ", answer.body));
  }
  if (ec) {
    return absl::UnavailableError(absl::StrCat("WebSocket handshake: ", ec.message()));
  }
  client->handshake_ = std::move(answer);
  return client;
}

absl::Status WebSocketClient::Send(absl::string_view data, bool binary, absl::Duration timeout) {
  impl_->ws.binary(binary);
  const beast::error_code ec = impl_->Run(timeout, [&](auto handler) {
    impl_->ws.async_write(asio::buffer(data.data(), data.size()), std::move(handler));
  });
  if (ec) {
    return absl::UnavailableError(absl::StrCat("WebSocket write: ", ec.message()));
  }
  return absl::OkStatus();
}

absl::StatusOr<WebSocketMessage> WebSocketClient::Read(absl::Duration timeout) {
  impl_->buffer.clear();
  const beast::error_code ec = impl_->Run(
      timeout, [&](auto handler) { impl_->ws.async_read(impl_->buffer, std::move(handler)); });
  if (ec == websocket::error::closed) {
    closed_ = WebSocketClose{impl_->ws.reason().code, impl_->ws.reason().reason.c_str()};
    return absl::FailedPreconditionError(
        absl::StrCat("closed by the peer: ", closed_->code, " ", closed_->reason));
  }
  if (ec) {
    return absl::UnavailableError(absl::StrCat("WebSocket read: ", ec.message()));
  }
  return WebSocketMessage{beast::buffers_to_string(impl_->buffer.data()), impl_->ws.got_binary()};
}

absl::Status WebSocketClient::Close(int code, absl::string_view reason, absl::Duration timeout) {
  const websocket::close_reason close(static_cast<websocket::close_code>(code),
                                      beast::string_view(reason.data(), reason.size()));
  beast::error_code ec =
      impl_->Run(timeout, [&](auto handler) { impl_->ws.async_close(close, std::move(handler)); });
  if (ec) {
    return absl::UnavailableError(absl::StrCat("WebSocket close: ", ec.message()));
  }
  // Beast's close reads (and drops) messages until the peer's close frame arrives.
  closed_ = WebSocketClose{impl_->ws.reason().code, impl_->ws.reason().reason.c_str()};
  return absl::OkStatus();
}

}  // namespace spillway::test
