// See session.h. One coroutine per connection; its buffers are reused across the requests of a
// keep-alive connection. Every read and write has a deadline, except the deliberate hang.
#include "tests/mock_aoai/session.h"

#include <algorithm>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <boost/beast/websocket/rfc6455.hpp>
#include <cstring>
#include <memory>
#include <optional>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "tests/mock_aoai/files_routes.h"
#include "tests/mock_aoai/h2_session.h"
#include "tests/mock_aoai/http_reply.h"
#include "tests/mock_aoai/multipart.h"
#include "tests/mock_aoai/realtime_session.h"
#include "tests/mock_aoai/upload.h"

namespace spillway::mock {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

constexpr auto kNoThrow = asio::as_tuple(asio::use_awaitable);
constexpr uint32_t kHeaderLimit = 64 * 1024;
constexpr size_t kDripPiece = 64;           // bytes per piece when dripping a non-streamed body
constexpr size_t kUploadPiece = 64 * 1024;  // bytes per read of a streamed upload
constexpr auto kWriteTimeout = std::chrono::seconds(30);
constexpr auto kLingerTimeout = std::chrono::seconds(2);

absl::string_view View(std::string_view s) { return absl::string_view(s.data(), s.size()); }

template <class Stream>
class Session {
 public:
  // `buffer` holds what was read before (the bytes that told HTTP/1 from HTTP/2).
  Session(Stream& stream, SessionContext& context, beast::flat_buffer buffer)
      : stream_(stream),
        context_(context),
        timer_(stream.get_executor()),
        buffer_(std::move(buffer)) {
    out_.reserve(4096);
    scratch_.reserve(4096);
  }

  asio::awaitable<void> Run() {
    std::optional<http::request_parser<http::string_body>> parser;
    // A multipart upload (files_routes.h) is read into a sink instead of a string.
    std::optional<http::request_parser<http::buffer_body>> upload_parser;
    std::optional<UploadSink> upload;
    for (;;) {
      parser.emplace();
      upload_parser.reset();
      upload.reset();
      parser->header_limit(kHeaderLimit);
      uint64_t limit = context_.config.body_limit;
      std::optional<std::string> boundary;
      beast::error_code ec = co_await ReadRequest(*parser, limit, boundary);
      if (!ec && !parser->is_done()) {
        if (boundary.has_value()) {
          UploadLimits limits;
          limits.keep_bytes = context_.config.files_keep_bytes;
          upload.emplace(*boundary, limits);
          upload_parser.emplace(std::move(*parser));
          upload_parser->body_limit(limit);
          ec = co_await ReadUpload(*upload_parser, *upload);
        } else {
          parser->body_limit(limit);
          ec = co_await ReadBody(*parser);
        }
      }
      if (ec) {
        if (ec == http::error::body_limit) {
          co_await RejectAndClose(
              413, absl::StrCat("The request body exceeds the limit of ", limit, " bytes."));
        } else if (IsMalformed(ec)) {
          co_await RejectAndClose(400, absl::StrCat("Malformed HTTP request: ", ec.message()));
        }
        co_return;  // the client left or went idle (garbage got its 400 above)
      }
      const http::request_header<>& request =
          upload_parser.has_value() ? upload_parser->get().base() : parser->get().base();
      RequestView view;
      view.method = View(request.method_string());
      view.target = View(request.target());
      view.api_key = View(request["api-key"]);
      view.authorization = View(request[http::field::authorization]);
      view.metadata = View(request["Metadata"]);
      view.identity_header = View(request["X-IDENTITY-HEADER"]);
      view.content_type = View(request[http::field::content_type]);
      view.body = upload_parser.has_value() ? absl::string_view() : parser->get().body();
      view.upload = upload.has_value() ? &*upload : nullptr;
      view.keep_alive = upload_parser.has_value() ? upload_parser->get().keep_alive()
                                                  : parser->get().keep_alive();
      view.http10 = request.version() == 10;
      view.websocket_upgrade = !upload_parser.has_value() && beast::websocket::is_upgrade(request);
      context_.handler.Handle(view, out_, scratch_, reply_);
      if (reply_.kind == Reply::Kind::kWebSocket) {
        // The connection is the session's until it ends.
        co_await ServeRealtime(stream_, parser->get(), context_.config, context_.stats,
                               reply_.deployment, reply_.realtime_model);
        co_return;
      }
      const bool ok = co_await Execute(reply_);
      if (!ok) {
        co_return;
      }
      if (reply_.close_after) {
        // The close fault: no Connection: close was said, so the client's next request on
        // this connection meets a closed socket (the keep-alive race a pool must survive).
        Close();
        co_return;
      }
      if (!reply_.keep_alive) {
        co_await Shutdown();
        co_return;
      }
    }
  }

 private:
  // Header first, so a client waiting on "Expect: 100-continue" (curl, for bodies over 1 KiB)
  // is told to go on instead of stalling for a second. The body is read by ReadBody or, for a
  // multipart upload (`boundary` set), ReadUpload; `limit` is the one that applies to it.
  asio::awaitable<beast::error_code> ReadRequest(http::request_parser<http::string_body>& parser,
                                                 uint64_t& limit,
                                                 std::optional<std::string>& boundary) {
    // Beast checks Content-Length against the limit with the header, before the route is
    // known: the larger limit there, the right one below.
    parser.body_limit(std::max(context_.config.body_limit, context_.config.upload_limit));
    Lowest().expires_after(absl::ToChronoNanoseconds(context_.config.idle_timeout));
    auto [ec, bytes] = co_await http::async_read_header(stream_, buffer_, parser, kNoThrow);
    if (ec || parser.is_done()) {
      co_return ec;
    }
    boundary = StreamedBoundary(parser.get());
    limit = boundary.has_value() ? context_.config.upload_limit : context_.config.body_limit;
    if (parser.content_length().value_or(0) > limit) {
      co_return beast::error_code(http::error::body_limit);
    }
    if (beast::iequals(parser.get()[http::field::expect], "100-continue") &&
        !co_await Write("HTTP/1.1 100 Continue\r\n\r\n")) {
      co_return beast::error_code(asio::error::connection_aborted);
    }
    co_return beast::error_code();
  }

  asio::awaitable<beast::error_code> ReadBody(http::request_parser<http::string_body>& parser) {
    Lowest().expires_after(absl::ToChronoNanoseconds(context_.config.idle_timeout));
    auto [ec, bytes] = co_await http::async_read(stream_, buffer_, parser, kNoThrow);
    co_return ec;
  }

  // The multipart boundary when the request is an upload to stream (files_routes.h).
  // The Content-Type first: it rules out a JSON body without routing it twice.
  static std::optional<std::string> StreamedBoundary(const http::request_header<>& request) {
    std::optional<std::string> boundary =
        MultipartBoundary(View(request[http::field::content_type]));
    if (!boundary.has_value() ||
        !IsStreamedUpload(View(request.method_string()), View(request.target()))) {
      return std::nullopt;
    }
    return boundary;
  }

  // Feeds the body to `sink` a piece at a time, so its size costs no memory; the idle deadline
  // applies to each piece.
  asio::awaitable<beast::error_code> ReadUpload(http::request_parser<http::buffer_body>& parser,
                                                UploadSink& sink) {
    if (upload_piece_ == nullptr) {
      upload_piece_ = std::make_unique<char[]>(kUploadPiece);
    }
    while (!parser.is_done()) {
      parser.get().body().data = upload_piece_.get();
      parser.get().body().size = kUploadPiece;
      Lowest().expires_after(absl::ToChronoNanoseconds(context_.config.idle_timeout));
      auto [ec, bytes] = co_await http::async_read(stream_, buffer_, parser, kNoThrow);
      if (ec && ec != http::error::need_buffer) {
        co_return ec;
      }
      sink.Feed(absl::string_view(upload_piece_.get(), kUploadPiece - parser.get().body().size));
    }
    sink.Finish();
    co_return beast::error_code();
  }

  // A parse error, as opposed to the client closing, timing out or resetting.
  static bool IsMalformed(const beast::error_code& ec) {
    return ec.category() == http::make_error_code(http::error::bad_method).category() &&
           ec != http::error::end_of_stream && ec != http::error::partial_message;
  }

  beast::tcp_stream& Lowest() { return beast::get_lowest_layer(stream_); }

  asio::awaitable<bool> Write(absl::string_view data) {
    Lowest().expires_after(kWriteTimeout);
    auto [ec, n] =
        co_await asio::async_write(stream_, asio::buffer(data.data(), data.size()), kNoThrow);
    co_return !ec;
  }

  asio::awaitable<bool> Sleep(absl::Duration duration) {
    timer_.expires_after(absl::ToChronoNanoseconds(duration));
    auto [ec] = co_await timer_.async_wait(kNoThrow);
    co_return !ec;
  }

  asio::awaitable<bool> Execute(Reply& reply) {
    if (reply.interim_status != 0) {
      const std::string interim =
          absl::StrCat("HTTP/1.1 ", reply.interim_status, " Interim\r\n\r\n");
      if (!co_await Write(interim)) {
        co_return false;
      }
    }
    switch (reply.kind) {
      case Reply::Kind::kReset:
        Reset();
        co_return false;
      case Reply::Kind::kGoaway:
        Close();  // HTTP/1.1 has no GOAWAY: the nearest is closing with the request unanswered
        co_return false;
      case Reply::Kind::kHang:
        co_await Hang();
        context_.stats.CountHangAbandoned();
        co_return false;
      case Reply::Kind::kWebSocket:
        co_return false;  // Run serves the session before anything is executed
      case Reply::Kind::kFull: {
        const bool ok = co_await WriteFull(reply);
        context_.handler.Settle(reply, ok);
        co_return ok;
      }
      case Reply::Kind::kStream: {
        const bool ok = co_await WriteStream(reply);
        context_.handler.Settle(reply, ok);
        co_return ok;
      }
    }
    co_return false;
  }

  // Returns false when the connection is unusable afterwards (error or deliberate cut).
  asio::awaitable<bool> WriteFull(const Reply& reply) {
    if (reply.first_byte_delay > absl::ZeroDuration() && !co_await Sleep(reply.first_byte_delay)) {
      co_return false;
    }
    const absl::string_view all = out_;
    if (reply.cut_after >= 0) {
      // A non-streamed body is cut halfway: the client sees fewer bytes than Content-Length.
      const size_t body = all.size() - reply.head_size;
      co_await Write(all.substr(0, reply.head_size + body / 2));
      Close();
      co_return false;
    }
    if (reply.drip > absl::ZeroDuration()) {
      if (!co_await Write(all.substr(0, reply.head_size))) {
        co_return false;
      }
      for (size_t at = reply.head_size; at < all.size(); at += kDripPiece) {
        if (!co_await Sleep(reply.drip) || !co_await Write(all.substr(at, kDripPiece))) {
          co_return false;
        }
      }
      co_return true;
    }
    co_return co_await Write(all);
  }

  // Events due at the same moment go out in one write; a write completes before the next
  // event is produced, so a slow reader slows the stream instead of growing a queue.
  asio::awaitable<bool> WriteStream(Reply& reply) {
    EventStream& stream = *reply.events();
    if (reply.first_byte_delay > absl::ZeroDuration() && !co_await Sleep(reply.first_byte_delay)) {
      co_return false;
    }
    std::string& pending = out_;  // starts with the head
    while (!stream.Done()) {
      if (reply.cut_after >= 0 && stream.events_sent() >= reply.cut_after) {
        co_await Write(pending);
        Close();
        co_return false;
      }
      absl::Duration wait = absl::ZeroDuration();
      if (reply.drip > absl::ZeroDuration() && stream.events_sent() > 0) {
        wait = reply.drip;
      } else if (stream.NextStartsLaterToken()) {
        wait = reply.per_token;
      }
      if (wait > absl::ZeroDuration()) {
        if (!pending.empty()) {
          if (!co_await Write(pending)) {
            co_return false;
          }
          pending.clear();
        }
        if (!co_await Sleep(wait)) {
          co_return false;
        }
      }
      scratch_.clear();
      stream.AppendNext(scratch_);
      AppendChunk(pending, scratch_);
    }
    pending.append(kLastChunk.data(), kLastChunk.size());
    co_return co_await Write(pending);
  }

  // Holds the connection without answering until the client goes away; reads park the
  // coroutine, so a hung request costs no CPU.
  asio::awaitable<void> Hang() {
    Lowest().expires_never();
    char sink[512];
    for (;;) {
      auto [ec, n] = co_await stream_.async_read_some(asio::buffer(sink), kNoThrow);
      if (ec) {
        co_return;
      }
    }
  }

  // SO_LINGER 0 turns close() into a RST.
  void Reset() {
    beast::error_code ignored;
    Lowest().socket().set_option(tcp::socket::linger(true, 0), ignored);
    Lowest().socket().close(ignored);
  }

  void Close() {
    beast::error_code ignored;
    Lowest().socket().shutdown(tcp::socket::shutdown_both, ignored);
    Lowest().socket().close(ignored);
  }

  asio::awaitable<void> Shutdown() {
    beast::error_code ignored;
    if constexpr (std::is_same_v<Stream, beast::tcp_stream>) {
      stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
    } else {
      Lowest().expires_after(kLingerTimeout);
      co_await stream_.async_shutdown(kNoThrow);
    }
    co_return;
  }

  // Answers, then drains what the client still sends before closing, so the answer is not
  // destroyed by a RST for unread data.
  asio::awaitable<void> RejectAndClose(int status, absl::string_view message) {
    context_.handler.RejectMalformed(status, message, out_, scratch_);
    if (!co_await Write(out_)) {
      co_return;
    }
    if constexpr (std::is_same_v<Stream, beast::tcp_stream>) {
      beast::error_code ignored;
      stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
      Lowest().expires_after(kLingerTimeout);
      char sink[4096];
      size_t drained = 0;
      while (drained < context_.config.body_limit + (1 << 20)) {
        auto [ec, n] = co_await stream_.async_read_some(asio::buffer(sink), kNoThrow);
        if (ec) {
          break;
        }
        drained += n;
      }
    } else {
      co_await Shutdown();
    }
  }

  Stream& stream_;
  SessionContext& context_;
  asio::steady_timer timer_;
  beast::flat_buffer buffer_;
  std::string out_;
  std::string scratch_;
  Reply reply_;
  std::unique_ptr<char[]> upload_piece_;  // ReadUpload's buffer, made on the first upload
};

enum class Protocol { kNone, kHttp1, kH2 };

// Reads until the bytes either are the HTTP/2 preface or cannot become it; whatever was read
// stays in `buffer` for the session that serves the connection.
asio::awaitable<Protocol> Sniff(beast::tcp_stream& stream, beast::flat_buffer& buffer,
                                const MockConfig& config) {
  for (;;) {
    const absl::string_view seen(static_cast<const char*>(buffer.data().data()), buffer.size());
    if (!absl::StartsWith(kH2Preface, seen.substr(0, kH2Preface.size()))) {
      co_return Protocol::kHttp1;
    }
    if (seen.size() >= kH2Preface.size()) {
      co_return Protocol::kH2;
    }
    stream.expires_after(absl::ToChronoNanoseconds(config.idle_timeout));
    auto [ec, n] = co_await stream.async_read_some(buffer.prepare(4096), kNoThrow);
    if (ec) {
      // A partial preface is left to the HTTP/1 session, which ends it as it always did.
      co_return buffer.size() == 0 ? Protocol::kNone : Protocol::kHttp1;
    }
    buffer.commit(n);
  }
}

}  // namespace

asio::awaitable<void> ServePlain(tcp::socket socket, SessionContext& context) {
  beast::tcp_stream stream(std::move(socket));
  beast::flat_buffer buffer;
  Protocol protocol = Protocol::kHttp1;
  if (context.config.http2) {
    protocol = co_await Sniff(stream, buffer, context.config);
  }
  if (protocol == Protocol::kNone) {
    co_return;
  }
  context.stats.CountConnection(protocol == Protocol::kH2);
  if (protocol == Protocol::kH2) {
    const absl::string_view read(static_cast<const char*>(buffer.data().data()), buffer.size());
    co_await ServeH2(std::move(stream), context, read);
    co_return;
  }
  Session<beast::tcp_stream> session(stream, context, std::move(buffer));
  co_await session.Run();
}

asio::awaitable<void> ServeTls(tcp::socket socket, asio::ssl::context& tls,
                               SessionContext& context) {
  beast::ssl_stream<beast::tcp_stream> stream(std::move(socket), tls);
  beast::get_lowest_layer(stream).expires_after(std::chrono::seconds(10));
  auto [ec] = co_await stream.async_handshake(asio::ssl::stream_base::server, kNoThrow);
  if (ec) {
    co_return;  // not a TLS client, or one that rejected our certificate
  }
  const unsigned char* protocol = nullptr;
  unsigned int protocol_size = 0;
  SSL_get0_alpn_selected(stream.native_handle(), &protocol, &protocol_size);
  const bool h2 = protocol_size == 2 && std::memcmp(protocol, "h2", 2) == 0;
  context.stats.CountConnection(h2);
  if (h2) {
    co_await ServeH2(std::move(stream), context);
    co_return;
  }
  Session<beast::ssl_stream<beast::tcp_stream>> session(stream, context, beast::flat_buffer());
  co_await session.Run();
}

int SelectAlpn(SSL*, const unsigned char** out, unsigned char* out_size,
               const unsigned char* offered, unsigned int offered_size, void*) {
  // The offer is a list of length-prefixed names; h2 wins whatever the client's order.
  for (const absl::string_view wanted : {absl::string_view("h2"), absl::string_view("http/1.1")}) {
    for (unsigned int at = 0; at < offered_size;) {
      const unsigned int size = offered[at];
      if (at + 1 + size > offered_size) {
        break;  // malformed: OpenSSL validates the list, but be safe
      }
      if (absl::string_view(reinterpret_cast<const char*>(offered + at + 1), size) == wanted) {
        *out = offered + at + 1;
        *out_size = static_cast<unsigned char>(size);
        return SSL_TLSEXT_ERR_OK;
      }
      at += 1 + size;
    }
  }
  return SSL_TLSEXT_ERR_NOACK;
}

}  // namespace spillway::mock
