// See h2_session.h. nghttp2 does the framing, HPACK and flow control; this file feeds it the
// bytes read, writes what it produces, and answers its callbacks from the ApiHandler.
#include "tests/mock_aoai/h2_session.h"

#include <nghttp2/nghttp2.h>

#include <algorithm>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <memory>
#include <optional>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "tests/mock_aoai/files_routes.h"
#include "tests/mock_aoai/h2_head.h"
#include "tests/mock_aoai/h2_stream.h"
#include "tests/mock_aoai/multipart.h"

namespace spillway::mock {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
using tcp = asio::ip::tcp;

constexpr auto kNoThrow = asio::as_tuple(asio::use_awaitable);
constexpr size_t kReadSize = 16 * 1024;
constexpr size_t kWriteBatch = 64 * 1024;  // frames gathered into one socket write
constexpr auto kWriteTimeout = std::chrono::seconds(30);
constexpr auto kLingerTimeout = std::chrono::seconds(2);
// Lets many streams upload their bodies at once without each waiting on WINDOW_UPDATE.
constexpr int32_t kConnectionWindow = 1 << 20;

absl::string_view View(const uint8_t* data, size_t size) {
  return absl::string_view(reinterpret_cast<const char*>(data), size);
}

// Owned by shared_ptr: the read loop, the write loop and every pending timer hold it, so it
// lives until the last of them is done. Everything runs on the connection's io_context thread;
// Abort (which frees the nghttp2 session) is never called from inside an nghttp2 callback.
template <class Stream>
class H2Connection : public std::enable_shared_from_this<H2Connection<Stream>> {
 public:
  H2Connection(Stream stream, SessionContext& context)
      : stream_(std::move(stream)),
        context_(context),
        wake_(stream_.get_executor()),
        idle_(stream_.get_executor()),
        write_deadline_(stream_.get_executor()) {}

  ~H2Connection() { Abort(); }

  asio::awaitable<void> Run(absl::string_view already_read) {
    if (!Start()) {
      Abort();
      co_return;
    }
    Receive(already_read);
    asio::co_spawn(stream_.get_executor(), WriteLoop(this->shared_from_this()), asio::detached);
    std::string in(kReadSize, '\0');
    while (!closed_) {
      auto [ec, n] = co_await stream_.async_read_some(asio::buffer(in), kNoThrow);
      if (ec || closed_) {
        break;
      }
      Receive(absl::string_view(in.data(), n));
    }
    Abort();  // the client left (or Drain's linger ended with its EOF)
  }

 private:
  bool Start() {
    beast::get_lowest_layer(stream_).expires_never();  // deadlines are our own timers
    nghttp2_session_callbacks* callbacks = nullptr;
    if (nghttp2_session_callbacks_new(&callbacks) != 0) {
      return false;
    }
    nghttp2_session_callbacks_set_on_begin_headers_callback(callbacks, &OnBeginHeaders);
    nghttp2_session_callbacks_set_on_header_callback(callbacks, &OnHeader);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(callbacks, &OnDataChunk);
    nghttp2_session_callbacks_set_on_frame_recv_callback(callbacks, &OnFrameRecv);
    nghttp2_session_callbacks_set_on_frame_send_callback(callbacks, &OnFrameSend);
    nghttp2_session_callbacks_set_on_stream_close_callback(callbacks, &OnStreamClose);
    nghttp2_option* option = nullptr;
    int rv = nghttp2_option_new(&option);
    if (rv == 0) {
      // Closed streams are kept only for RFC 7540 priorities, which the mock ignores.
      nghttp2_option_set_no_closed_streams(option, 1);
      rv = nghttp2_session_server_new2(&session_, callbacks, this, option);
      nghttp2_option_del(option);
    }
    nghttp2_session_callbacks_del(callbacks);
    if (rv != 0) {
      session_ = nullptr;
      return false;
    }
    const nghttp2_settings_entry settings[] = {
        {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, context_.config.h2_max_concurrent_streams}};
    nghttp2_submit_settings(session_, NGHTTP2_FLAG_NONE, settings, std::size(settings));
    nghttp2_session_set_local_window_size(session_, NGHTTP2_FLAG_NONE, 0, kConnectionWindow);
    ArmIdle();
    return true;
  }

  void Receive(absl::string_view data) {
    if (broken_ || !nghttp2_session_want_read(session_)) {
      return;  // GOAWAY is out: what still arrives is dropped
    }
    const ssize_t rv = nghttp2_session_mem_recv(
        session_, reinterpret_cast<const uint8_t*>(data.data()), data.size());
    if (rv < 0) {
      // A bad preface or flooding (protocol errors in frames nghttp2 answers with GOAWAY by
      // itself): say goodbye; the write loop closes once the GOAWAY is out.
      broken_ = true;
      nghttp2_session_terminate_session(session_, NGHTTP2_PROTOCOL_ERROR);
    }
    Kick();
  }

  // Writes whatever nghttp2 has to send, then sleeps on `wake_` until Kick. Frames are
  // produced only when the socket takes bytes, so a client that stops reading stops the
  // streams (their events are made as their DATA frames are) instead of growing a queue.
  asio::awaitable<void> WriteLoop(std::shared_ptr<H2Connection> self) {
    std::string out;
    while (!closed_) {
      out.clear();
      while (out.size() < kWriteBatch) {
        const uint8_t* data = nullptr;
        const ssize_t n = nghttp2_session_mem_send(session_, &data);
        if (n < 0) {
          Abort();  // out of memory or a failed callback: nothing sensible to send
          co_return;
        }
        if (n == 0) {
          break;
        }
        out.append(reinterpret_cast<const char*>(data), static_cast<size_t>(n));
      }
      if (!out.empty()) {
        const uint64_t generation = ++write_generation_;
        write_deadline_.expires_after(kWriteTimeout);
        write_deadline_.async_wait([self, generation](beast::error_code ec) {
          if (!ec && generation == self->write_generation_) {
            self->Abort();  // the client stopped reading for too long
          }
        });
        auto [ec, n] = co_await asio::async_write(stream_, asio::buffer(out), kNoThrow);
        ++write_generation_;
        write_deadline_.cancel();
        if (ec) {
          Abort();
          co_return;
        }
        continue;
      }
      if (!nghttp2_session_want_read(session_) && !nghttp2_session_want_write(session_)) {
        Drain();
        co_return;
      }
      writer_idle_ = true;
      wake_.expires_at(asio::steady_timer::time_point::max());
      co_await wake_.async_wait(kNoThrow);
      writer_idle_ = false;
    }
  }

  void Kick() {
    if (writer_idle_) {
      wake_.cancel();
    }
  }

  // The session is over (GOAWAY sent or received, no stream left): half-close and let the
  // client close, so it reads the GOAWAY rather than a RST for bytes it sent meanwhile.
  void Drain() {
    beast::error_code ignored;
    beast::get_lowest_layer(stream_).socket().shutdown(tcp::socket::shutdown_send, ignored);
    const uint64_t generation = ++idle_generation_;
    idle_.expires_after(kLingerTimeout);
    idle_.async_wait([self = this->shared_from_this(), generation](beast::error_code ec) {
      if (!ec && generation == self->idle_generation_) {
        self->Abort();
      }
    });
  }

  // Ends everything now: the socket, the timers, and the streams still open (their answers
  // not delivered).
  void Abort() {
    if (closed_) {
      return;
    }
    closed_ = true;
    beast::get_lowest_layer(stream_).close();
    wake_.cancel();
    idle_.cancel();
    write_deadline_.cancel();
    for (auto& [id, stream] : streams_) {
      stream->timer.cancel();
      Settle(*stream, false);
    }
    streams_.clear();
    if (session_ != nullptr) {
      nghttp2_session_del(session_);
      session_ = nullptr;
    }
  }

  // Without an open stream for config.idle_timeout, the connection says goodbye.
  void ArmIdle() {
    const uint64_t generation = ++idle_generation_;
    idle_.expires_after(absl::ToChronoNanoseconds(context_.config.idle_timeout));
    idle_.async_wait([self = this->shared_from_this(), generation](beast::error_code ec) {
      if (ec || self->closed_ || generation != self->idle_generation_ || !self->streams_.empty()) {
        return;
      }
      nghttp2_session_terminate_session(self->session_, NGHTTP2_NO_ERROR);
      self->Kick();
    });
  }

  void DisarmIdle() {
    ++idle_generation_;
    idle_.cancel();
  }

  H2Stream* Find(int32_t id) {
    const auto it = streams_.find(id);
    return it == streams_.end() ? nullptr : it->second.get();
  }

  void Settle(H2Stream& stream, bool delivered) {
    if (stream.answered && !stream.settled) {
      stream.settled = true;
      if (stream.reply.kind == Reply::Kind::kHang) {
        context_.stats.CountHangAbandoned();  // reset by the client, or the connection ended
      }
      context_.handler.Settle(stream.reply, delivered);
    }
  }

  // The request is complete: ask the handler, then carry the Reply out on this stream.
  void Answer(H2Stream& stream) {
    if (goaway_last_ >= 0 && stream.id > goaway_last_) {
      // Refused by our GOAWAY: never processed. nghttp2 closes it (REFUSED_STREAM) once the
      // GOAWAY is out, or already did.
      return;
    }
    const int32_t highest_before = highest_answered_;
    highest_answered_ = std::max(highest_answered_, stream.id);
    RequestView request;
    request.method = stream.method;
    request.target = stream.path;
    request.api_key = stream.api_key;
    request.authorization = stream.authorization;
    request.metadata = stream.metadata;
    request.identity_header = stream.identity_header;
    request.content_type = stream.content_type;
    request.body = stream.body;
    if (stream.upload != nullptr) {
      stream.upload->Finish();
      request.upload = stream.upload.get();
    }
    context_.handler.Handle(request, stream.out, scratch_, stream.reply);
    stream.answered = true;
    stream.ReleaseRequest();
    switch (stream.reply.kind) {
      case Reply::Kind::kReset:
        // HTTP/1 resets the connection; on h2 the stream is the unit, its siblings go on.
        nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, stream.id, NGHTTP2_INTERNAL_ERROR);
        return;
      case Reply::Kind::kHang:
        return;  // nothing, until the client cancels the stream or the connection ends
      case Reply::Kind::kGoaway:
        Goaway(stream, highest_before);
        return;
      case Reply::Kind::kWebSocket:
        // Never chosen: an HTTP/2 request carries no Upgrade (RFC 8441 is not spoken here).
        nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, stream.id, NGHTTP2_INTERNAL_ERROR);
        return;
      case Reply::Kind::kFull:
      case Reply::Kind::kStream:
        if (stream.reply.first_byte_delay > absl::ZeroDuration()) {
          Wait(stream, stream.reply.first_byte_delay);
        } else {
          Respond(stream);
        }
        return;
    }
  }

  // The goaway fault: the streams answered before this one finish; this one and every later
  // one are refused unprocessed, so the client may send them again on another connection.
  // Once the last of those below `last_stream_id` ends, the connection closes (WriteLoop).
  void Goaway(H2Stream& stream, int32_t last_stream_id) {
    goaway_last_ = last_stream_id;
    nghttp2_submit_goaway(session_, NGHTTP2_FLAG_NONE, last_stream_id, NGHTTP2_NO_ERROR, nullptr,
                          0);
    if (stream.id <= last_stream_id) {
      // Its request ended after a later stream's did: the GOAWAY covers it, so refuse it alone.
      nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, stream.id, NGHTTP2_REFUSED_STREAM);
    }
  }

  // The body passed the limit: the handler's 413 on this stream, whatever else still comes.
  void RejectTooLarge(H2Stream& stream, uint64_t limit) {
    stream.too_large = true;
    stream.ReleaseRequest();
    context_.handler.RejectMalformed(
        413, absl::StrCat("The request body exceeds the limit of ", limit, " bytes."), stream.out,
        scratch_);
    stream.reply = Reply{};  // a full answer with nothing to settle
    Respond(stream);
  }

  // HEADERS from the handler's HTTP/1 head, and a data provider for the rest.
  void Respond(H2Stream& stream) {
    stream.responded = true;
    if (!ToH2Head(stream.out, head_)) {
      // Cannot happen (the heads are the handler's own), but must not take the mock down.
      nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, stream.id, NGHTTP2_INTERNAL_ERROR);
      return;
    }
    nghttp2_data_provider provider;
    provider.source.ptr = &stream;
    provider.read_callback = &ReadBody;
    const bool has_body = stream.StartBody(head_.size);
    if (nghttp2_submit_response(session_, stream.id, head_.headers.data(), head_.headers.size(),
                                has_body ? &provider : nullptr) != 0) {
      nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, stream.id, NGHTTP2_INTERNAL_ERROR);
    }
  }

  void Wait(H2Stream& stream, absl::Duration duration) {
    stream.waiting = true;
    stream.timer.expires_after(absl::ToChronoNanoseconds(duration));
    stream.timer.async_wait([self = this->shared_from_this(),
                             id = stream.id](beast::error_code ec) { self->OnTimer(id, ec); });
  }

  void OnTimer(int32_t id, beast::error_code ec) {
    if (ec || closed_) {
      return;
    }
    H2Stream* stream = Find(id);
    if (stream == nullptr) {
      return;  // the client reset it meanwhile
    }
    stream->waiting = false;
    if (!stream->responded) {
      Respond(*stream);  // after first_byte_delay
    } else {
      stream->Resume();
      nghttp2_session_resume_data(session_, id);
    }
    Kick();
  }

  // nghttp2 callbacks; `user_data` is the connection.

  static H2Connection& Self(void* user_data) { return *static_cast<H2Connection*>(user_data); }

  static bool IsRequestHeaders(const nghttp2_frame* frame) {
    return frame->hd.type == NGHTTP2_HEADERS && frame->headers.cat == NGHTTP2_HCAT_REQUEST;
  }

  // nghttp2 has checked the stream limit before this, and calls OnStreamClose for every stream
  // it reports here.
  static int OnBeginHeaders(nghttp2_session*, const nghttp2_frame* frame, void* user_data) {
    if (!IsRequestHeaders(frame)) {
      return 0;
    }
    H2Connection& self = Self(user_data);
    self.streams_.emplace(
        frame->hd.stream_id,
        std::make_unique<H2Stream>(frame->hd.stream_id, self.stream_.get_executor()));
    self.DisarmIdle();
    return 0;
  }

  // Names arrive lowercase (nghttp2 refuses others); trailers are ignored.
  static int OnHeader(nghttp2_session*, const nghttp2_frame* frame, const uint8_t* name,
                      size_t name_size, const uint8_t* value, size_t value_size, uint8_t,
                      void* user_data) {
    H2Stream* stream =
        IsRequestHeaders(frame) ? Self(user_data).Find(frame->hd.stream_id) : nullptr;
    if (stream == nullptr) {
      return 0;
    }
    const absl::string_view key = View(name, name_size);
    const absl::string_view text = View(value, value_size);
    if (key == ":method") {
      stream->method.assign(text.data(), text.size());
    } else if (key == ":path") {
      stream->path.assign(text.data(), text.size());
    } else if (key == "api-key") {
      stream->api_key.assign(text.data(), text.size());
    } else if (key == "authorization") {
      stream->authorization.assign(text.data(), text.size());
    } else if (key == "metadata") {
      stream->metadata.assign(text.data(), text.size());
    } else if (key == "x-identity-header") {
      stream->identity_header.assign(text.data(), text.size());
    } else if (key == "content-type") {
      stream->content_type.assign(text.data(), text.size());
    } else if (key == "expect") {
      stream->expect_continue = absl::EqualsIgnoreCase(text, "100-continue");
    }
    return 0;
  }

  static int OnDataChunk(nghttp2_session*, uint8_t, int32_t id, const uint8_t* data, size_t size,
                         void* user_data) {
    H2Connection& self = Self(user_data);
    H2Stream* stream = self.Find(id);
    if (stream == nullptr || stream->too_large || stream->answered) {
      return 0;
    }
    const MockConfig& config = self.context_.config;
    if (!stream->upload_checked) {
      stream->upload_checked = true;
      if (IsStreamedUpload(stream->method, stream->path)) {
        if (std::optional<std::string> boundary = MultipartBoundary(stream->content_type)) {
          UploadLimits limits;
          limits.keep_bytes = config.files_keep_bytes;
          stream->upload = std::make_unique<UploadSink>(*boundary, limits);
        }
      }
    }
    const absl::string_view piece(reinterpret_cast<const char*>(data), size);
    if (stream->upload != nullptr) {
      if (stream->upload->body_bytes() + size > config.upload_limit) {
        self.RejectTooLarge(*stream, config.upload_limit);
      } else {
        stream->upload->Feed(piece);
      }
      return 0;
    }
    if (stream->body.size() + size > config.body_limit) {
      self.RejectTooLarge(*stream, config.body_limit);
      return 0;
    }
    stream->body.append(piece.data(), piece.size());
    return 0;
  }

  static int OnFrameRecv(nghttp2_session* session, const nghttp2_frame* frame, void* user_data) {
    if (frame->hd.type != NGHTTP2_HEADERS && frame->hd.type != NGHTTP2_DATA) {
      return 0;
    }
    H2Connection& self = Self(user_data);
    H2Stream* stream = self.Find(frame->hd.stream_id);
    if (stream == nullptr) {
      return 0;
    }
    const bool end = (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0;
    if (IsRequestHeaders(frame) && !end && stream->expect_continue) {
      // The client holds its body back until told to go on.
      static const char kStatus[] = ":status";
      static const char kContinue[] = "100";
      nghttp2_nv status = {reinterpret_cast<uint8_t*>(const_cast<char*>(kStatus)),
                           reinterpret_cast<uint8_t*>(const_cast<char*>(kContinue)),
                           sizeof(kStatus) - 1, sizeof(kContinue) - 1, NGHTTP2_NV_FLAG_NONE};
      nghttp2_submit_headers(session, NGHTTP2_FLAG_NONE, stream->id, nullptr, &status, 1, nullptr);
    }
    if (end && !stream->request_done) {
      stream->request_done = true;
      if (!stream->too_large) {
        self.Answer(*stream);
      }
    }
    return 0;
  }

  static int OnFrameSend(nghttp2_session* session, const nghttp2_frame* frame, void* user_data) {
    if ((frame->hd.type != NGHTTP2_HEADERS && frame->hd.type != NGHTTP2_DATA) ||
        (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) == 0) {
      return 0;
    }
    H2Stream* stream = Self(user_data).Find(frame->hd.stream_id);
    if (stream == nullptr) {
      return 0;
    }
    stream->end_sent = true;
    if (stream->too_large && !stream->request_done) {
      // The 413 is out while the body still comes: ask the client to stop (RFC 9113 8.1).
      nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE, stream->id, NGHTTP2_NO_ERROR);
    }
    return 0;
  }

  static int OnStreamClose(nghttp2_session*, int32_t id, uint32_t error_code, void* user_data) {
    H2Connection& self = Self(user_data);
    const auto it = self.streams_.find(id);
    if (it == self.streams_.end()) {
      return 0;
    }
    // Delivered when our END_STREAM went out and nobody reset the stream.
    self.Settle(*it->second, it->second->end_sent && error_code == NGHTTP2_NO_ERROR);
    self.streams_.erase(it);  // cancels its timer; the handler finds no stream and returns
    if (self.streams_.empty()) {
      self.ArmIdle();
    }
    return 0;
  }

  static ssize_t ReadBody(nghttp2_session*, int32_t, uint8_t* buffer, size_t length,
                          uint32_t* flags, nghttp2_data_source* source, void* user_data) {
    H2Stream& stream = *static_cast<H2Stream*>(source->ptr);
    absl::Duration wait = absl::ZeroDuration();
    const ssize_t n = stream.Read(buffer, length, flags, &wait);
    if (n == NGHTTP2_ERR_DEFERRED && !stream.waiting) {
      Self(user_data).Wait(stream, wait);  // resumed by OnTimer
    }
    return n;
  }

  Stream stream_;
  SessionContext& context_;
  nghttp2_session* session_ = nullptr;
  absl::flat_hash_map<int32_t, std::unique_ptr<H2Stream>> streams_;
  asio::steady_timer wake_;            // the write loop sleeps on it
  asio::steady_timer idle_;            // idle timeout, then the linger of Drain
  asio::steady_timer write_deadline_;  // one socket write at a time
  uint64_t idle_generation_ = 0;       // a fired timer whose generation is stale does nothing
  uint64_t write_generation_ = 0;
  bool writer_idle_ = false;
  bool broken_ = false;  // nghttp2 refused the input: no more of it is fed
  bool closed_ = false;
  int32_t highest_answered_ = 0;  // the highest stream id handed to the handler
  int32_t goaway_last_ = -1;      // the goaway fault's last-stream-id; -1 until it fires
  std::string scratch_;
  H2Head head_;
};

}  // namespace

asio::awaitable<void> ServeH2(beast::tcp_stream stream, SessionContext& context,
                              absl::string_view already_read) {
  auto connection = std::make_shared<H2Connection<beast::tcp_stream>>(std::move(stream), context);
  co_await connection->Run(already_read);
}

asio::awaitable<void> ServeH2(beast::ssl_stream<beast::tcp_stream> stream,
                              SessionContext& context) {
  auto connection = std::make_shared<H2Connection<beast::ssl_stream<beast::tcp_stream>>>(
      std::move(stream), context);
  co_await connection->Run("");
}

}  // namespace spillway::mock
