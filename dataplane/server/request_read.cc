// See request_read.h.
#include "dataplane/server/request_read.h"

#include <algorithm>
#include <boost/asio/read.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/http/read.hpp>
#include <string>
#include <string_view>

#include "dataplane/http/expect_continue.h"
#include "dataplane/http/no_throw.h"
#include "dataplane/http/plain_head.h"

namespace spillway {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

void ParseHead(RequestParser<http::string_body>& parser, beast::flat_buffer& buffer,
               beast::error_code& ec) {
  const auto bytes = static_cast<const char*>(buffer.data().data());
  std::size_t used = 0;
  auto& request = parser.get();
  const PlainHeadPut put = PutPlainHead(
      parser, std::string_view(bytes, buffer.size()), kRequestHeaderLimit, used, ec,
      [&request](http::field name, std::string_view name_string, std::string_view value) {
        request.insert(name, name_string, value);
      });
  if (put != PlainHeadPut::kTaken) {
    used = parser.put(buffer.data(), ec);
  }
  buffer.consume(used);
  if (ec == http::error::need_more) {
    ec = {};
  }
}

void ParseBuffered(RequestParser<http::string_body>& parser, beast::flat_buffer& buffer,
                   beast::error_code& ec) {
  while (!parser.is_done() && buffer.size() > 0) {
    const std::size_t used = parser.put(buffer.data(), ec);
    buffer.consume(used);
    if (ec == http::error::need_more) {
      ec = {};
      break;
    }
    if (ec || used == 0) {
      break;
    }
  }
}

asio::awaitable<beast::error_code> ReadRestOfBody(beast::tcp_stream& stream,
                                                  beast::flat_buffer& buffer,
                                                  RequestParser<http::string_body>& parser,
                                                  SocketDeadline& deadline, AgentContext& context) {
  if (beast::error_code write_ec = co_await AnswerExpectContinue(
          stream, parser.get(), buffer, context.proxy.client_write_timeout)) {
    co_return write_ec;
  }
  deadline.Arm(context.client_idle_timeout);
  auto [read_ec, bytes] = co_await http::async_read(stream, buffer, parser, kNoThrow);
  co_return deadline.Disarm(read_ec);
}

BodyFraming FramingOf(const std::optional<PlainRequest>& plain,
                      const RequestParser<http::string_body>& parser) {
  if (plain) {
    return {plain->content_length, false};
  }
  const boost::optional<uint64_t> length = parser.content_length();
  return {length ? std::optional<uint64_t>(*length) : std::nullopt, parser.chunked()};
}

asio::awaitable<beast::error_code> ReadPlainBody(beast::tcp_stream& stream,
                                                 beast::flat_buffer& buffer,
                                                 Request<http::string_body>& request,
                                                 uint64_t length, SocketDeadline& deadline,
                                                 AgentContext& context) {
  std::string& body = request.body();
  const std::size_t buffered = std::min<std::size_t>(length, buffer.size());
  body.assign(static_cast<const char*>(buffer.data().data()), buffered);
  buffer.consume(buffered);
  if (buffered == length) {
    co_return beast::error_code{};
  }
  if (beast::error_code write_ec = co_await AnswerExpectContinue(
          stream, request, buffer, context.proxy.client_write_timeout)) {
    co_return write_ec;
  }
  body.resize(length);
  deadline.Arm(context.client_idle_timeout);
  auto [read_ec, got] = co_await asio::async_read(
      stream.socket(), asio::buffer(body.data() + buffered, length - buffered), kNoThrow);
  body.resize(buffered + got);
  if (read_ec == asio::error::eof) {
    read_ec = http::error::partial_message;
  }
  co_return deadline.Disarm(read_ec);
}

}  // namespace spillway
