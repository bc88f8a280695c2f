// See http_client.h. Each step runs asynchronously under a Beast stream deadline on a private
// io_context: the simplest way to give synchronous calls a timeout.
#include "tests/support/http_client.h"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <chrono>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace spillway::test {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using SteadyTime = std::chrono::steady_clock::time_point;

absl::string_view View(std::string_view s) { return absl::string_view(s.data(), s.size()); }
std::string_view StdView(absl::string_view s) { return std::string_view(s.data(), s.size()); }

}  // namespace

std::optional<std::string> HttpResponse::Header(absl::string_view name) const {
  for (const auto& [key, value] : headers) {
    if (absl::EqualsIgnoreCase(key, name)) {
      return value;
    }
  }
  return std::nullopt;
}

struct HttpClient::Impl {
  Impl(std::string host_in, int port_in, bool tls_in, std::string ca_file_in)
      : host(std::move(host_in)),
        port(port_in),
        tls(tls_in),
        ca_file(std::move(ca_file_in)),
        tls_context(asio::ssl::context::tls_client) {}

  // Runs one asynchronous operation to completion on the private io_context.
  template <class Start>
  beast::error_code Run(Start&& start) {
    beast::error_code result = asio::error::would_block;
    start([&result](beast::error_code ec, auto&&...) { result = ec; });
    io.restart();
    io.run();
    return result;
  }

  beast::tcp_stream& Lowest() { return tls ? beast::get_lowest_layer(*tls_stream) : *tcp_stream; }

  absl::Status Failure(absl::string_view what, const beast::error_code& ec) {
    Drop();
    if (ec == beast::error::timeout) {
      return absl::DeadlineExceededError(absl::StrCat(what, ": timed out"));
    }
    // For TLS failures this is OpenSSL's reason, e.g. "certificate verify failed".
    return absl::UnavailableError(absl::StrCat(what, ": ", ec.message()));
  }

  void Drop() {
    beast::error_code ignored;
    if (tcp_stream) {
      tcp_stream->socket().close(ignored);
    }
    if (tls_stream) {
      beast::get_lowest_layer(*tls_stream).socket().close(ignored);
    }
    tcp_stream.reset();
    tls_stream.reset();
    buffer.clear();
    io.restart();
    io.poll();  // lets cancelled handlers finish while their objects still exist
  }

  absl::Status Connect(SteadyTime deadline) {
    tcp::resolver resolver(io);
    beast::error_code ec;
    const auto endpoints = resolver.resolve(host, std::to_string(port), ec);
    if (ec) {
      return absl::UnavailableError(absl::StrCat("resolve ", host, ": ", ec.message()));
    }
    if (tls) {
      if (!tls_configured) {
        tls_context.set_verify_mode(asio::ssl::verify_peer);
        if (ca_file.empty()) {
          tls_context.set_default_verify_paths(ec);
        } else {
          tls_context.load_verify_file(ca_file, ec);
        }
        if (ec) {
          return absl::InvalidArgumentError(
              absl::StrCat("cannot load CA file '", ca_file, "': ", ec.message()));
        }
        tls_configured = true;
      }
      tls_stream = std::make_unique<beast::ssl_stream<beast::tcp_stream>>(io, tls_context);
      tls_stream->set_verify_callback(asio::ssl::host_name_verification(host));
      beast::error_code ip_check;
      asio::ip::make_address(host, ip_check);
      if (ip_check) {
        // SNI carries names only, never IP literals.
        SSL_set_tlsext_host_name(tls_stream->native_handle(), host.c_str());
      }
    } else {
      tcp_stream = std::make_unique<beast::tcp_stream>(io);
    }
    Lowest().expires_at(deadline);
    ec = Run([&](auto handler) { Lowest().async_connect(endpoints, std::move(handler)); });
    if (ec) {
      return Failure(absl::StrCat("connect to ", host, ":", port), ec);
    }
    beast::error_code ignored;
    Lowest().socket().set_option(tcp::no_delay(true), ignored);
    if (tls) {
      Lowest().expires_at(deadline);
      ec = Run([&](auto handler) {
        tls_stream->async_handshake(asio::ssl::stream_base::client, std::move(handler));
      });
      if (ec) {
        return Failure("TLS handshake", ec);
      }
    }
    return absl::OkStatus();
  }

  template <class Op>
  beast::error_code OnStream(SteadyTime deadline, Op&& op) {
    Lowest().expires_at(deadline);
    if (tls) {
      return Run([&](auto handler) { op(*tls_stream, std::move(handler)); });
    }
    return Run([&](auto handler) { op(*tcp_stream, std::move(handler)); });
  }

  absl::StatusOr<HttpResponse> Exchange(absl::string_view method, absl::string_view target,
                                        const HttpHeaders& headers, absl::string_view body,
                                        const PieceCallback* on_piece, absl::Duration timeout) {
    const SteadyTime deadline =
        std::chrono::steady_clock::now() + absl::ToChronoNanoseconds(timeout);
    const http::verb verb = http::string_to_verb(StdView(method));
    if (verb == http::verb::unknown) {
      return absl::InvalidArgumentError(absl::StrCat("unknown HTTP method '", method, "'"));
    }
    if (!connected()) {
      if (absl::Status s = Connect(deadline); !s.ok()) {
        return s;
      }
    }
    http::request<http::string_body> request(verb, StdView(target), 11);
    request.set(http::field::host, absl::StrCat(host, ":", port));
    request.set(http::field::user_agent, "spillway-test-client");
    bool has_content_type = false;
    for (const auto& [name, value] : headers) {
      request.set(name, value);
      has_content_type |= absl::EqualsIgnoreCase(name, "content-type");
    }
    if (!body.empty() && !has_content_type) {
      request.set(http::field::content_type, "application/json");
    }
    request.body() = std::string(body);
    request.prepare_payload();

    beast::error_code ec = OnStream(deadline, [&](auto& stream, auto handler) {
      http::async_write(stream, request, std::move(handler));
    });
    if (ec) {
      return Failure("write request", ec);
    }

    HttpResponse response;
    bool keep_alive = false;
    if (on_piece == nullptr) {
      http::response_parser<http::string_body> parser;
      parser.body_limit(boost::none);
      ec = OnStream(deadline, [&](auto& stream, auto handler) {
        http::async_read(stream, buffer, parser, std::move(handler));
      });
      if (ec) {
        return Failure("read response", ec);
      }
      response.status = parser.get().result_int();
      for (const auto& field : parser.get()) {
        response.headers.emplace_back(View(field.name_string()), View(field.value()));
      }
      response.body = std::move(parser.get().body());
      keep_alive = parser.get().keep_alive();
    } else {
      http::response_parser<http::buffer_body> parser;
      parser.body_limit(boost::none);
      ec = OnStream(deadline, [&](auto& stream, auto handler) {
        http::async_read_header(stream, buffer, parser, std::move(handler));
      });
      if (ec) {
        return Failure("read response header", ec);
      }
      response.status = parser.get().result_int();
      for (const auto& field : parser.get()) {
        response.headers.emplace_back(View(field.name_string()), View(field.value()));
      }
      char piece[16 * 1024];
      while (!parser.is_done()) {
        parser.get().body().data = piece;
        parser.get().body().size = sizeof(piece);
        ec = OnStream(deadline, [&](auto& stream, auto handler) {
          http::async_read_some(stream, buffer, parser, std::move(handler));
        });
        if (ec == http::error::need_buffer) {
          ec = {};
        }
        const size_t received = sizeof(piece) - parser.get().body().size;
        if (received > 0) {
          const absl::string_view data(piece, received);
          response.body.append(data.data(), data.size());
          (*on_piece)(data, absl::Now());
        }
        if (ec) {
          return Failure("read response body", ec);
        }
      }
      keep_alive = parser.get().keep_alive();
    }
    if (!keep_alive) {
      Drop();
    }
    return response;
  }

  bool connected() const { return tcp_stream != nullptr || tls_stream != nullptr; }

  const std::string host;
  const int port;
  const bool tls;
  const std::string ca_file;
  asio::io_context io;
  asio::ssl::context tls_context;
  bool tls_configured = false;
  std::unique_ptr<beast::tcp_stream> tcp_stream;
  std::unique_ptr<beast::ssl_stream<beast::tcp_stream>> tls_stream;
  beast::flat_buffer buffer;
};

HttpClient::HttpClient(std::string host, int port, bool tls, std::string ca_file)
    : impl_(std::make_unique<Impl>(std::move(host), port, tls, std::move(ca_file))) {}

HttpClient::~HttpClient() { Close(); }

absl::StatusOr<HttpResponse> HttpClient::Send(absl::string_view method, absl::string_view target,
                                              const HttpHeaders& headers, absl::string_view body,
                                              absl::Duration timeout) {
  return impl_->Exchange(method, target, headers, body, nullptr, timeout);
}

absl::StatusOr<HttpResponse> HttpClient::SendStreaming(
    absl::string_view method, absl::string_view target, const HttpHeaders& headers,
    absl::string_view body, const PieceCallback& on_piece, absl::Duration timeout) {
  return impl_->Exchange(method, target, headers, body, &on_piece, timeout);
}

absl::Status HttpClient::Connect(absl::Duration timeout) {
  impl_->Drop();
  return impl_->Connect(std::chrono::steady_clock::now() + absl::ToChronoNanoseconds(timeout));
}

void HttpClient::Close() { impl_->Drop(); }

bool HttpClient::connected() const { return impl_->connected(); }

}  // namespace spillway::test
