// See upstream_attempt.h: the HTTP/1.1 exchange, written once as a template over the stream
// type (plain TCP or TLS), read with Beast's parser straight into a relay buffer.
#include <algorithm>
#include <array>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/read_size.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <cstring>
#include <optional>
#include <type_traits>
#include <utility>

#include "absl/strings/str_cat.h"
#include "dataplane/http/client_response.h"
#include "dataplane/http/drained_read.h"
#include "dataplane/http/http_head.h"
#include "dataplane/http/no_throw.h"
#include "dataplane/http/socket_deadline.h"
#include "dataplane/http/socket_write.h"
#include "dataplane/http/thread_free_list.h"
#include "dataplane/proxy/upload_body.h"
#include "dataplane/proxy/upstream_attempt.h"
#include "dataplane/routing/created_object.h"
#include "dataplane/upstream/relay_response_parser.h"
#include "dataplane/upstream/response_head_read.h"
#include "dataplane/usage/sse_usage_stripper.h"

namespace spillway {
namespace {

using std::chrono::milliseconds;
// The relay's chunk (why 16 KB: upstream_pool.h), leased for each read's bytes until they are
// sent: a stream waiting for its next event holds none, and every request on the thread writes
// into the chunk the one before it warmed (thread_free_list.h).
constexpr std::size_t kRelayChunk = UpstreamConnection::kRelayChunk;
struct RelayChunk {
  char bytes[kRelayChunk];
};
// 64 chunks (1 MiB) kept free per thread: more than the relays that wait on a slow client's
// write at once on a busy thread, all of which hold one.
using RelayChunks = ThreadFreeList<RelayChunk, 64>;
constexpr std::size_t kErrorBodyLimit = 64 * 1024;
// The most one read from a backend takes (Beast's own bound for a read into a dynamic buffer).
constexpr std::size_t kRelayReadMax = 64 * 1024;
// A request line and a dozen forwarded headers; longer heads grow past it.
constexpr std::size_t kUpstreamHeadReserve = 1024;
// Interim (1xx) answers skipped before the final one; a backend sending more is broken.
constexpr int kMaxInterimResponses = 8;

// 100 Continue, 102 Processing, 103 Early Hints: the final answer follows on the same
// connection. (101 is not interim: the agent never asks to switch protocols.)
bool IsInterim(unsigned status) { return status >= 100 && status < 200 && status != 101; }

}  // namespace

void WriteUpstreamHead(const UpstreamRequest& own, const RequestFields& client, std::string& head) {
  head.clear();
  // One allocation for the whole head: grown line by line from empty it took three.
  head.reserve(kUpstreamHeadReserve);
  AppendPieces(head, {own.method, " ", own.target, " HTTP/1.1\r\n"});
  for (const auto& field : client) {
    if (ForwardedUpstream(field)) {
      AppendHeaderLine(head, View(field.name_string()), View(field.value()));
    }
  }
  AppendHeaderLine(head, "Host", own.host);
  if (!own.credential_name.empty()) {
    AppendHeaderLine(head, own.credential_name, own.credential_value);
  }
  if (own.chunked) {
    AppendHeaderLine(head, "Transfer-Encoding", "chunked");
  } else if (own.content_length.has_value()) {
    AppendHeaderLine(head, "Content-Length", *own.content_length);
  }
  head += "\r\n";
}

namespace {

// Parses `input` into the body buffer the parser was given, until that is full, the message
// ends, or only an incomplete piece is left (the next read completes it). Returns the bytes of
// `input` used; `ec` says what the backend got wrong, if anything.
std::size_t ParseSome(RelayResponseParser& parser, asio::const_buffer input,
                      beast::error_code& ec) {
  std::size_t used_all = 0;
  while (!parser.Done() && input.size() > 0 && parser.body_room() > 0) {
    const std::size_t used = parser.Parse(input, ec);
    input += used;
    used_all += used;
    if (ec) {
      // need_more ends nearly every event of a paced stream: compared by category and value,
      // not as two error_codes built and compared out of line (~56 instructions an event).
      static const beast::error_code kNeedMore = http::error::need_more;
      const bool more = ec.category() == kNeedMore.category() &&
                        (ec.value() == static_cast<int>(http::error::need_more) ||
                         ec.value() == static_cast<int>(http::error::need_buffer));
      if (more) {
        ec = {};
      }
      break;
    }
    if (used == 0) {
      break;
    }
  }
  return used_all;
}

// ParseSome over the bytes waiting in `buffer`, consuming what it used.
beast::error_code ParseBuffered(RelayResponseParser& parser, beast::flat_buffer& buffer) {
  beast::error_code ec;
  buffer.consume(ParseSome(parser, buffer.data(), ec));
  return ec;
}

// The block a relay's read took (drained_read.h), until the relay adopts it; returned if the
// relay's frame goes first.
struct ReadChunk {
  RelayChunk* block = nullptr;
  ~ReadChunk() {
    if (block != nullptr) {
      RelayChunks::ReturnBlock(block);
    }
  }
  // The read lands `offset` bytes in, where the relay then puts what it carried over.
  ReadTarget Target(std::size_t offset) { return {&TakeInto, &Drop, &block, offset}; }
  RelayChunks::Lease Adopt() { return RelayChunks::Adopt(std::exchange(block, nullptr)); }

 private:
  static asio::mutable_buffer TakeInto(void* slot, std::size_t offset) {
    RelayChunk* taken = RelayChunks::TakeBlock();
    *static_cast<RelayChunk**>(slot) = taken;  // a store: the frame's line is not waited for
    return {taken->bytes + offset, kRelayChunk - offset};
  }
  static void Drop(void* slot) {
    RelayChunks::ReturnBlock(std::exchange(*static_cast<RelayChunk**>(slot), nullptr));
  }
};

// Beast takes the CRLF that ends a chunk as the start of the next chunk's header, so each event
// of a stream leaves those two bytes unparsed until the next arrives: they wait in the relay's
// frame, not in a buffer of the connection's (a cache line more per event, and a buffer per
// stream). A longer piece (a chunk extension cut by a read) waits in the connection's buffer.
constexpr std::size_t kCarryMax = 32;

// ClientWatch's callback: closing the upstream socket ends the pending read, and the backend
// sees its connection go.
void CloseUpstream(void* upstream_tcp) {
  beast::error_code ignored;
  static_cast<beast::tcp_stream*>(upstream_tcp)->socket().close(ignored);
}

}  // namespace

bool ForwardedUpstream(const RequestFields::value_type& field) {
  switch (field.name()) {
    case http::field::authorization:
    case http::field::host:
    case http::field::content_length:
    // The agent holds the whole body already; forwarded, it makes a front end answer an
    // interim 100 that a careless reader takes for the final answer.
    case http::field::expect:
      return false;
    case http::field::unknown:
      return !beast::iequals(field.name_string(), "api-key");
    default:
      return !IsHopByHop(field.name());
  }
}

bool RefusedUnprocessed(unsigned status, bool has_retry_after) {
  return status == 429 || (status == 503 && has_retry_after);
}

milliseconds FirstByteTimeout(const ProxyOptions& options, const SnapshotRoute& route) {
  return route.first_byte_timeout.count() > 0 ? route.first_byte_timeout
                                              : options.first_byte_timeout;
}

SteadyClock::duration Attempt::FirstByteBudget() const {
  return std::min<SteadyClock::duration>(
      FirstByteTimeout(options, *request.route),
      std::max<SteadyClock::duration>(deadline - SteadyClock::now(), {}));
}

void Attempt::OnClientGone(AttemptResult& result) const {
  result.kind = AttemptKind::kClientGone;
  result.error = absl::StrCat("client left while waiting for ", backend.config->id(),
                              "'s first byte; the upstream request was cancelled");
  outcome->status = kClientClosedRequest;
  outcome->error = result.error;
  outcome->keep_alive = false;
}

AttemptResult Attempt::UploadFailed(const beast::error_code& ec) {
  AttemptResult result;
  const UploadBody& upload = *request.upload;
  if (upload.client_left() || upload.client_error().has_value()) {
    // The client's side failed: the backend has a partial body, and the client is answered
    // (or not, if it left) by the caller.
    result.kind = AttemptKind::kClientGone;
    result.error = absl::StrCat("upload from the client failed after ", upload.bytes(),
                                " bytes: ", ec.message());
    outcome->status = upload.client_left() ? kClientClosedRequest : upload.client_error()->status;
    outcome->error = result.error;
    outcome->keep_alive = false;
    return result;
  }
  // Sent in part: the backend may have started, and the body cannot be sent again.
  result.kind = upload.started() ? AttemptKind::kBroken : AttemptKind::kFailed;
  result.error = absl::StrCat("sending the upload to ", backend.config->id(), " after ",
                              upload.bytes(), " bytes: ", ec.message());
  return result;
}

void Attempt::BeginRelay(AttemptResult& result) {
  result.kind = AttemptKind::kRelayed;
  outcome->status = result.status;
  outcome->backend_id = backend.config->id();
  outcome->backend_config = backend.config;
  outcome->first_byte = SteadyClock::now();
}

void Attempt::ClientGone(const beast::error_code& ec, const UsageScanner& usage) {
  outcome->keep_alive = false;
  outcome->error = absl::StrCat("client write failed: ", ec.message());
  outcome->usage = usage.Finish();
}

asio::awaitable<void> Attempt::EndRelay(ClientResponse& response, const UsageScanner& usage,
                                        const CreatedObjectScanner& created, bool event_stream,
                                        bool upstream_failed, std::string error) {
  outcome->usage = usage.Finish();
  if (!upstream_failed) {
    outcome->created_object_id = created.Finish(request.creates);
    outcome->keep_alive = request.client_keep_alive && !response.closes_connection();
    co_return;
  }
  outcome->error = std::move(error);
  outcome->keep_alive = false;
  if (event_stream) {
    co_await response.EndWithErrorEvent(client, options.client_write_timeout);
  }
}

// Not a coroutine itself: the caller awaits RunHttp1's own frame at once (a frame less per
// request), while the connection and this attempt live in the caller's.
asio::awaitable<AttemptResult> Attempt::OverHttp1(UpstreamConnection& connection) {
  if (connection.is_tls()) {
    return RunHttp1(connection.tls(), connection);
  }
  return RunHttp1(connection.tcp(), connection);
}

template <class Stream>
asio::awaitable<AttemptResult> Attempt::RunHttp1(Stream& upstream, UpstreamConnection& connection) {
  AttemptResult result;
  beast::tcp_stream& upstream_tcp = connection.tcp();
  const bool reused = connection.reused;
  const auto first_byte_budget = FirstByteBudget();
  // One deadline for sending the request, the answer's head and an error body.
  const SteadyTime first_byte_deadline = SteadyClock::now() + first_byte_budget;
  SocketDeadline deadline(upstream_tcp);
  deadline.ArmAt(first_byte_deadline);
  std::string& request_head = connection.request_head();
  WriteUpstreamHead(upstream_request, request.client_request->base(), request_head);
  const std::array<asio::const_buffer, 2> request_bytes{
      asio::buffer(request_head),
      asio::const_buffer(upstream_request.body.data(), upstream_request.body.size())};
  beast::error_code write_ec;
  if constexpr (std::is_same_v<Stream, beast::tcp_stream>) {
    // Awaited only for what the socket did not take at once (WriteNowOrAwait's frame was an
    // allocation per request).
    std::size_t written = 0;
    write_ec = WriteNow(upstream, request_bytes, written);
    if (!write_ec && written < asio::buffer_size(request_bytes)) {
      write_ec = co_await WriteRest(upstream, request_bytes, written, first_byte_budget);
    }
  } else {
    auto [ec, written] = co_await asio::async_write(upstream, request_bytes, kNoThrow);
    write_ec = ec;
  }
  if (write_ec && deadline.expired()) {
    write_ec = beast::error::timeout;
  }
  if (write_ec) {
    // Not sent whole: the backend cannot have started on it, another may have it.
    result.kind = reused ? AttemptKind::kStale : AttemptKind::kFailed;
    result.error = absl::StrCat("sending to ", backend.config->id(), ": ", write_ec.message());
    co_return result;
  }
  if (request.upload != nullptr) {
    (void)deadline.Disarm({});  // each piece of the upload has its own deadline
    if (beast::error_code upload_ec = co_await request.upload->CopyTo(upstream, upstream_tcp)) {
      co_return UploadFailed(upload_ec);
    }
    deadline.ArmAt(SteadyClock::now() + first_byte_budget);
  }
  // Beast reads at most the buffer's free capacity (512 bytes to start): without room, a
  // 13 KB burst of events took 26 reads and 26 writes. The connection's own, reserved once.
  beast::flat_buffer& buffer = connection.read_buffer();
  buffer.reserve(kRelayChunk);
  // Interim answers are read and dropped: the final one is the client's. A parser reads one
  // message, so each answer gets a fresh one.
  std::optional<RelayResponseParser> parser;
  beast::error_code read_ec;
  std::size_t header_bytes = 0;
  // From here the backend may be working on the request: a client that leaves cuts it.
  ClientWatch watch(client, &CloseUpstream, &upstream_tcp);
  for (int interim = 0; interim <= kMaxInterimResponses; ++interim) {
    parser.emplace(request.rate_limit);
    parser->body_limit(boost::none);
    if constexpr (std::is_same_v<Stream, beast::tcp_stream>) {
      read_ec = co_await ReadResponseHead(upstream, buffer, *parser, header_bytes);
    } else {
      auto [ec, bytes] = co_await http::async_read_header(upstream, buffer, *parser, kNoThrow);
      read_ec = ec;
      header_bytes += bytes;
    }
    if (read_ec || !IsInterim(parser->status())) {
      break;
    }
  }
  const beast::error_code header_ec = deadline.Disarm(read_ec);
  if (watch.Stop()) {
    OnClientGone(result);
    co_return result;
  }
  if (header_ec) {
    if (header_ec == beast::error::timeout) {
      result.kind = AttemptKind::kTimedOut;
      result.error =
          absl::StrCat(backend.config->id(), " sent no response within ",
                       std::chrono::duration_cast<milliseconds>(first_byte_budget).count(), " ms");
    } else {
      // A reused connection closed unanswered is the keep-alive race: the backend closed it
      // idle as the request left, so never saw it. Any other close may follow its work.
      result.kind = reused && header_bytes == 0 ? AttemptKind::kStale : AttemptKind::kBroken;
      result.error = absl::StrCat("reading from ", backend.config->id(), ": ", header_ec.message());
    }
    co_return result;
  }
  if (parser->status() < 200) {
    // 101 unasked for, or interim answers without end: nothing on this connection can be
    // trusted to belong to this request.
    result.kind = AttemptKind::kBroken;
    result.error = absl::StrCat(backend.config->id(), " answered ", parser->status(),
                                " where a final response was due");
    co_return result;
  }
  result.status = parser->status();
  if (TriesAnotherOn(result.status, parser->has_retry_after())) {
    result.kind = RefusalKind(result.status);
    result.retry_after = parser->retry_after();
    result.error = absl::StrCat(backend.config->id(), " answered ", result.status);
    // Read the (small) error body so the connection can be reused.
    parser->DiscardBody();
    parser->body_limit(kErrorBodyLimit);
    deadline.ArmAt(first_byte_deadline);
    auto [body_read_ec, body_bytes] =
        co_await http::async_read(upstream, buffer, *parser, kNoThrow);
    const beast::error_code body_ec = deadline.Disarm(body_read_ec);
    *release_connection = !body_ec && parser->Done() && parser->KeepsAlive() && buffer.size() == 0;
    co_return result;
  }
  if (parser->event_stream()) {
    // A stream holds its connection for minutes: the head is made again for the next request.
    std::string().swap(request_head);
  }
  co_return co_await RelayHttp1(upstream, upstream_tcp, buffer, *parser);
}

// Streams the upstream response to the client as it arrives: one read, one write, so a slow
// client slows the backend down instead of growing a buffer.
template <class Stream>
asio::awaitable<AttemptResult> Attempt::RelayHttp1(Stream& upstream,
                                                   beast::tcp_stream& upstream_tcp,
                                                   beast::flat_buffer& buffer,
                                                   RelayResponseParser& parser) {
  AttemptResult result;
  result.status = parser.status();
  if (result.status == 429) {
    result.retry_after = parser.retry_after();  // a pinned request's relayed 429 still cools
  }
  BeginRelay(result);
  const bool upstream_keep_alive = parser.KeepsAlive();
  const bool event_stream = parser.event_stream();
  const bool strip_usage = strip_stream_usage && event_stream;
  // Framing towards the client: the backend's Content-Length when its bytes pass unchanged,
  // chunked when the agent changes them or the backend gave no length; none for 204/304.
  const std::optional<std::uint64_t> length = parser.Length();
  const bool body_less = parser.Done() && !length.has_value();
  const bool chunked_out = !body_less && (strip_usage || !length.has_value());

  ClientResponse client_response(std::move(parser.head()), request.rate_limit);
  client_response.FinishHead(backend.config->id(), attempt_number, chunked_out, length,
                             request.client_keep_alive, request.client_request->version() < 11);

  UsageScanner usage;
  CreatedObjectScanner created(!request.creates.empty() && result.status == 200);
  SseUsageStripper stripper;
  SocketDeadline deadline(upstream_tcp);
  bool upstream_failed = false;
  // One put parses on past a chunk's header into its body and the chunks after it, until the
  // relay buffer is full: without it, each chunk of a paced stream took three puts.
  parser.eager(true);
  // What each event needs, kept in this frame: the attempt, the options and the stream objects
  // are each a cache line more to fetch per event when thousands of streams take turns.
  const auto idle_timeout = options.stream_idle_timeout;
  const auto write_timeout = options.client_write_timeout;
  const bool defer_acks = event_stream && options.stream_delayed_acks;
  asio::ip::tcp::socket& client_socket = client.socket();
  asio::ip::tcp::socket& upstream_socket = upstream_tcp.socket();
  bool buffered = buffer.size() > 0;  // bytes wait in `buffer`
  std::array<char, kCarryMax> carry;  // or here, when few (see kCarryMax)
  std::size_t carry_size = 0;
  // After parsing from `buffer`: a few bytes left move to `carry`, so that the next read is
  // into a leased chunk again (a TLS read goes through `buffer` whatever is left).
  auto settle_buffer = [&] {
    buffered = buffer.size() > 0;
    if constexpr (std::is_same_v<Stream, beast::tcp_stream>) {
      if (buffered && buffer.size() <= kCarryMax) {
        carry_size = asio::buffer_copy(asio::buffer(carry), buffer.data());
        buffer.consume(carry_size);
        buffered = false;
      }
    }
  };
  auto fail = [&](beast::error_code ec) {
    upstream_failed = true;
    result.error =
        absl::StrCat(backend.config->id(), " failed mid-response: ",
                     ec == beast::error::timeout ? std::string("idle timeout") : ec.message());
  };
  // A chunk is leased only while bytes are parsed into it and sent: a stream waiting for its
  // next event holds none. Without one the parser has no room, so it cannot write into a chunk
  // already returned.
  RelayChunks::Lease chunk;
  ReadChunk input;
  auto lease_chunk = [&] {
    chunk = RelayChunks::Take();
    parser.SetBodyBuffer(chunk->bytes, kRelayChunk);
  };
  auto return_chunk = [&] {
    chunk.reset();
    parser.SetBodyBuffer(nullptr, 0);
  };
  do {
    absl::string_view body;  // this pass's body bytes, in the leased chunk
    absl::string_view relayed;
    if (!parser.Done()) {
      // What has already arrived is parsed first: a small body usually came with the head,
      // and an awaited read that completes at once still costs a trip round the event loop.
      if (buffered) {
        lease_chunk();
        const beast::error_code parse_ec = ParseBuffered(parser, buffer);
        settle_buffer();
        if (parse_ec) {
          fail(parse_ec);
          break;
        }
      }
      if (!parser.Done() && (!chunk || parser.body_room() == kRelayChunk)) {
        // Left armed between reads (re-arming an armed deadline only moves it): the thread's
        // table is touched when a write to the client must wait, not per event.
        deadline.Arm(idle_timeout);
        beast::error_code some_ec;
        std::size_t read_into_input = 0;  // bytes read into `input` rather than `buffer`
        if constexpr (std::is_same_v<Stream, beast::tcp_stream>) {
          if (chunk) {
            return_chunk();  // nothing in it: the wait for the backend holds none
          }
          // What http::async_read_some does, without its composed operation and in this
          // frame (~1k instructions a read, callgrind). The bytes land in a chunk leased as
          // they are read (drained_read.h), after what the last read left unparsed (`carry`);
          // a longer piece waits in the connection's buffer, and the next read appends to it.
          if (!buffered) {
            if (event_stream && buffer.capacity() != 0) {
              buffer.shrink_to_fit();  // a stream's 16 KB, held for minutes, to no use
            }
            DrainedReadBuffer into(input.Target(carry_size), kRelayChunk - carry_size);
            into.defer_ack = defer_acks;
            auto [plain_ec, bytes] = co_await upstream_socket.async_read_some(into, kNoThrow);
            some_ec = plain_ec;
            read_into_input = bytes;
          } else {
            const std::size_t room = beast::read_size(buffer, kRelayReadMax);
            auto [plain_ec, bytes] = co_await upstream_socket.async_read_some(
                DrainedReadBuffer(buffer.prepare(room)), kNoThrow);
            buffer.commit(bytes);
            some_ec = plain_ec;
          }
          if (some_ec && some_ec == asio::error::eof) {
            some_ec = {};
            parser.ParseEof(some_ec);  // the end of a body that lasts until the connection's
          }
        } else {
          // TLS: the engine may hold decrypted bytes the socket no longer shows, and the read
          // parses them into the chunk.
          if (!chunk) {
            lease_chunk();
          }
          auto [ec, read_bytes] =
              co_await http::async_read_some(upstream, buffer, parser, kNoThrow);
          some_ec = ec;
        }
        const beast::error_code read_ec = deadline.Cut(some_ec);
        if (read_ec && read_ec != http::error::need_buffer) {
          fail(read_ec);
          break;
        }
        // A burst of events leaves in one write instead of one per event (as nginx does
        // with proxy_buffering off).
        beast::error_code parse_ec;
        if (read_into_input > 0) {
          // Parsed where it was read: the body only moves back over the chunks' framing.
          chunk = input.Adopt();
          parser.SetBodyBuffer(chunk->bytes, kRelayChunk);
          std::memcpy(chunk->bytes, carry.data(), carry_size);
          const asio::const_buffer read(chunk->bytes, carry_size + read_into_input);
          const std::size_t used = ParseSome(parser, read, parse_ec);
          carry_size = read.size() - used;
          if (carry_size > kCarryMax) {
            buffer.commit(asio::buffer_copy(buffer.prepare(carry_size), read + used));
            buffered = true;
            carry_size = 0;
          } else {
            std::memcpy(carry.data(), chunk->bytes + used, carry_size);
          }
        } else {
          if (!chunk) {
            lease_chunk();
          }
          parse_ec = ParseBuffered(parser, buffer);
          settle_buffer();
        }
        if (parse_ec) {
          fail(parse_ec);
          break;
        }
      }
      body = absl::string_view(chunk->bytes, kRelayChunk - parser.body_room());
      relayed = strip_usage ? stripper.Filter(body, parser.Done(), usage.Feed(body)) : body;
    }
    bool sent = false;
    beast::error_code write_ec =
        client_response.SendNow(client_socket, relayed, parser.Done(), &sent);
    if (!write_ec && !sent) {
      (void)deadline.Disarm({});  // the backend is not read while the client catches up
      write_ec = co_await client_response.SendRest(client, write_timeout);
    }
    // Scanned once sent (the chunk is still leased), unless the bytes sent depended on it: at
    // one connection the scan would otherwise sit between the backend's answer and the
    // client's (~800 instructions, callgrind).
    if (!strip_usage) {
      usage.Feed(body);
    }
    created.Feed(body);
    if (write_ec) {
      ClientGone(write_ec, usage);
      *release_connection = false;
      co_return result;
    }
    return_chunk();  // sent: the next read takes the thread's most recently used one
  } while (!parser.Done());
  (void)deadline.Disarm({});

  // Only an exchange that ended exactly at the answer's last byte leaves the connection fit for
  // another request: anything more on it would be read as the next request's answer.
  *release_connection = !upstream_failed && parser.Done() && upstream_keep_alive &&
                        buffer.size() == 0 && carry_size == 0;
  co_await EndRelay(client_response, usage, created, event_stream, upstream_failed, result.error);
  co_return result;
}

}  // namespace spillway
