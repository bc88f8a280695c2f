// See h2_session.h. nghttp2 does the framing, HPACK and flow control; this file moves its bytes
// over Asio and turns its callbacks into per-stream state the attempt awaits.
#include "dataplane/upstream/h2_session.h"

#include <algorithm>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/error.hpp>
#include <cstring>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "dataplane/http/no_throw.h"

namespace spillway {
namespace {

// Per-stream receive window: what one stream may have in flight towards a slow client. 64 KB
// (the protocol's default) keeps 10k stalled streams bounded; the connection window is large so
// one stalled stream never holds up the others.
constexpr int32_t kStreamWindow = 64 * 1024;
constexpr int32_t kConnectionWindow = 64 * 1024 * 1024;
constexpr std::size_t kReadBuffer = 16 * 1024;
constexpr std::size_t kWriteBatch = 64 * 1024;
constexpr auto kWriteTimeout = std::chrono::seconds(30);
}  // namespace

H2Stream::H2Stream(const asio::any_io_executor& executor) : wake_(executor) {}

H2Stream::~H2Stream() {
  if (session_ != nullptr) {
    session_->Release(*this);
  }
}

asio::awaitable<bool> H2Stream::Wait(std::chrono::steady_clock::time_point deadline) {
  if (!news_) {
    wake_.expires_at(deadline);
    auto [ec] = co_await wake_.async_wait(kNoThrow);
    if (!ec && !news_) {
      co_return false;  // the deadline passed with nothing new
    }
  }
  news_ = false;
  co_return true;
}

void H2Stream::Consumed(std::size_t bytes) {
  bytes = std::min(bytes, unconsumed_);
  if (session_ != nullptr && bytes > 0) {
    unconsumed_ -= bytes;
    session_->Consume(*this, bytes);
  }
}

void H2Stream::Fail(std::string error, bool retryable) {
  if (error_.empty()) {
    error_ = std::move(error);
    retryable_ = retryable && status_ == 0;
  }
  news_ = true;
  Wake();
}

std::shared_ptr<H2Session> H2Session::Start(UpstreamPool& pool, UpstreamAddress address,
                                            std::string endpoint) {
  std::shared_ptr<H2Session> session(new H2Session(pool.executor(), std::move(endpoint)));
  asio::co_spawn(session->executor_, session->Connect(pool, std::move(address)), asio::detached);
  return session;
}

H2Session::H2Session(const asio::any_io_executor& executor, std::string endpoint)
    : executor_(executor), endpoint_(std::move(endpoint)) {
  nghttp2_option* option = nullptr;
  nghttp2_option_new(&option);
  // The relay says when bytes left for the client (H2Stream::Consumed): a slow client slows its
  // stream down instead of growing a buffer.
  nghttp2_option_set_no_auto_window_update(option, 1);
  nghttp2_session_client_new2(&session_, Callbacks(), this, option);
  nghttp2_option_del(option);
  const nghttp2_settings_entry settings[] = {
      {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
      {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, kStreamWindow},
  };
  nghttp2_submit_settings(session_, NGHTTP2_FLAG_NONE, settings, std::size(settings));
  nghttp2_session_set_local_window_size(session_, NGHTTP2_FLAG_NONE, 0, kConnectionWindow);
}

H2Session::~H2Session() { nghttp2_session_del(session_); }

bool H2Session::Accepting() const {
  if (closed_ || going_away_) {
    return false;
  }
  // (Until the backend's SETTINGS arrive nghttp2 reports 100, as RFC 9113 suggests.)
  const uint32_t limit =
      nghttp2_session_get_remote_settings(session_, NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS);
  return streams_.size() < limit;
}

absl::Status H2Session::Open(H2Stream& stream, const std::vector<H2Header>& headers,
                             absl::string_view body) {
  if (!Accepting()) {
    return absl::UnavailableError(absl::StrCat("HTTP/2 connection to ", endpoint_, " is full"));
  }
  std::vector<nghttp2_nv> nva;
  nva.reserve(headers.size());
  for (const H2Header& h : headers) {
    // Copied by nghttp2: the frame is packed later, by the writer.
    nva.push_back({reinterpret_cast<uint8_t*>(const_cast<char*>(h.name.data())),
                   reinterpret_cast<uint8_t*>(const_cast<char*>(h.value.data())), h.name.size(),
                   h.value.size(), NGHTTP2_NV_FLAG_NONE});
  }
  stream.request_body_ = body;
  nghttp2_data_provider provider{};
  provider.read_callback = &H2Session::ReadBody;
  const int32_t id = nghttp2_submit_request(session_, nullptr, nva.data(), nva.size(),
                                            body.empty() ? nullptr : &provider, &stream);
  if (id < 0) {
    if (id == NGHTTP2_ERR_STREAM_ID_NOT_AVAILABLE) {
      going_away_ = true;  // stream ids ran out: new requests go to a new connection
    }
    return absl::UnavailableError(
        absl::StrCat("cannot open an HTTP/2 stream to ", endpoint_, ": ", nghttp2_strerror(id)));
  }
  stream.session_ = shared_from_this();
  stream.id_ = id;
  stream.open_ = true;
  streams_.emplace(id, &stream);
  Flush();
  return absl::OkStatus();
}

void H2Session::Release(H2Stream& stream) {
  if (closed_) {
    return;
  }
  if (stream.open_) {
    streams_.erase(stream.id_);
    stream.open_ = false;
    nghttp2_session_set_stream_user_data(session_, stream.id_, nullptr);
    nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, stream.id_, NGHTTP2_CANCEL);
  }
  // Bytes the owner never relayed still count against the connection's window.
  if (stream.unconsumed_ > 0) {
    nghttp2_session_consume_connection(session_, stream.unconsumed_);
  }
  Flush();
}

void H2Session::Consume(H2Stream& stream, std::size_t bytes) {
  if (!closed_) {
    nghttp2_session_consume(session_, stream.id_, bytes);
    Flush();
  }
}

void H2Session::SuspectSilence(std::chrono::steady_clock::time_point opened_at) {
  if (last_read_ < opened_at) {
    going_away_ = true;
  }
}

H2Stream* H2Session::Find(int32_t id) const {
  auto it = streams_.find(id);
  return it == streams_.end() ? nullptr : it->second;
}

asio::awaitable<void> H2Session::Connect(UpstreamPool& pool, UpstreamAddress address) {
  auto self = shared_from_this();
  absl::StatusOr<UpstreamConnectionPtr> connection =
      co_await pool.Connect(std::move(address), endpoint_, /*offer_h2=*/true);
  if (!connection.ok()) {
    Close(std::string(connection.status().message()), false);
    co_return;
  }
  if (closed_) {
    co_return;
  }
  if ((*connection)->is_tls() && !(*connection)->negotiated_h2) {
    // The endpoint speaks HTTP/1.1 only: queued requests go again over HTTP/1.1.
    pool.MarkHttp1Only(endpoint_);
    Close(absl::StrCat(endpoint_, " does not offer HTTP/2 (ALPN)"), true);
    co_return;
  }
  connection_ = *std::move(connection);
  Flush();
  co_await ReadLoop();
}

asio::awaitable<void> H2Session::ReadLoop() {
  auto self = shared_from_this();
  std::unique_ptr<uint8_t[]> buffer(new uint8_t[kReadBuffer]);
  while (!closed_) {
    beast::error_code ec;
    std::size_t n = 0;
    // No read deadline: every stream has its own (first byte, idle), and an idle connection
    // is the backend's to close.
    connection_->tcp().expires_never();
    if (connection_->is_tls()) {
      std::tie(ec, n) = co_await connection_->tls().async_read_some(
          asio::buffer(buffer.get(), kReadBuffer), kNoThrow);
    } else {
      std::tie(ec, n) = co_await connection_->tcp().async_read_some(
          asio::buffer(buffer.get(), kReadBuffer), kNoThrow);
    }
    if (closed_) {
      break;
    }
    if (ec) {
      Close(absl::StrCat("HTTP/2 connection to ", endpoint_, " failed: ", ec.message()), true);
      break;
    }
    last_read_ = std::chrono::steady_clock::now();
    const ssize_t used = nghttp2_session_mem_recv(session_, buffer.get(), n);
    if (used < 0) {
      Close(absl::StrCat("HTTP/2 protocol error from ", endpoint_, ": ", nghttp2_strerror(used)),
            false);
      break;
    }
    Flush();
    if (!nghttp2_session_want_read(session_) && !nghttp2_session_want_write(session_)) {
      Close(absl::StrCat(endpoint_, " closed the HTTP/2 connection"), true);
      break;
    }
  }
}

void H2Session::Flush() {
  if (connection_ != nullptr && !writing_ && !closed_ && nghttp2_session_want_write(session_)) {
    writing_ = true;
    asio::co_spawn(executor_, WriteLoop(), asio::detached);
  }
}

asio::awaitable<void> H2Session::WriteLoop() {
  auto self = shared_from_this();
  while (!closed_) {
    out_.clear();
    while (out_.size() < kWriteBatch) {
      const uint8_t* data = nullptr;
      const ssize_t n = nghttp2_session_mem_send(session_, &data);
      if (n < 0) {
        Close(absl::StrCat("HTTP/2 framing to ", endpoint_, " failed: ", nghttp2_strerror(n)),
              false);
        co_return;
      }
      if (n == 0) {
        break;
      }
      out_.append(reinterpret_cast<const char*>(data), static_cast<std::size_t>(n));
    }
    if (out_.empty()) {
      break;
    }
    beast::error_code ec;
    connection_->tcp().expires_after(kWriteTimeout);
    if (connection_->is_tls()) {
      std::tie(ec, std::ignore) =
          co_await asio::async_write(connection_->tls(), asio::buffer(out_), kNoThrow);
    } else {
      std::tie(ec, std::ignore) =
          co_await asio::async_write(connection_->tcp(), asio::buffer(out_), kNoThrow);
    }
    if (ec) {
      Close(absl::StrCat("writing to ", endpoint_, " over HTTP/2 failed: ", ec.message()), true);
      co_return;
    }
  }
  writing_ = false;
}

void H2Session::Close(std::string error, bool retryable) {
  if (closed_) {
    return;
  }
  closed_ = true;
  auto streams = std::move(streams_);
  streams_.clear();
  for (auto& [id, stream] : streams) {
    stream->open_ = false;
    // A request that left whole may have been processed: not sent again (docs/choices.md).
    stream->Fail(error, retryable && !stream->request_sent_);
  }
  if (connection_ != nullptr) {
    beast::error_code ignored;
    connection_->tcp().socket().close(ignored);
  }
}

int H2Session::OnHeader(nghttp2_session*, const nghttp2_frame* frame, const uint8_t* name,
                        size_t namelen, const uint8_t* value, size_t valuelen, uint8_t,
                        void* user_data) {
  auto* self = static_cast<H2Session*>(user_data);
  if (frame->hd.type != NGHTTP2_HEADERS) {
    return 0;
  }
  H2Stream* stream = self->Find(frame->hd.stream_id);
  if (stream == nullptr || stream->status_ != 0) {
    return 0;  // trailers, or a cancelled stream
  }
  const absl::string_view n(reinterpret_cast<const char*>(name), namelen);
  const absl::string_view v(reinterpret_cast<const char*>(value), valuelen);
  if (n == ":status") {
    unsigned status = 0;
    if (absl::SimpleAtoi(v, &status)) {
      stream->headers_.clear();
      stream->headers_.emplace_back(":status", std::string(v));  // until the block ends
    }
  } else if (!n.empty() && n[0] != ':') {
    stream->headers_.emplace_back(std::string(n), std::string(v));
  }
  return 0;
}

int H2Session::OnFrame(nghttp2_session*, const nghttp2_frame* frame, void* user_data) {
  auto* self = static_cast<H2Session*>(user_data);
  if (frame->hd.type == NGHTTP2_GOAWAY) {
    // Streams above last_stream_id are closed by nghttp2 as refused (retryable); the rest
    // finish. No new ones go here.
    self->going_away_ = true;
    return 0;
  }
  H2Stream* stream = self->Find(frame->hd.stream_id);
  if (stream == nullptr) {
    return 0;
  }
  if (frame->hd.type == NGHTTP2_HEADERS && stream->status_ == 0 && !stream->headers_.empty() &&
      stream->headers_.front().first == ":status") {
    unsigned status = 0;
    absl::SimpleAtoi(stream->headers_.front().second, &status);
    if (status >= 200) {  // 1xx are interim: the final response follows
      stream->status_ = status;
      stream->headers_.erase(stream->headers_.begin());
    } else {
      stream->headers_.clear();
    }
  }
  if ((frame->hd.type == NGHTTP2_HEADERS || frame->hd.type == NGHTTP2_DATA) &&
      (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0) {
    stream->ended_ = stream->status_ != 0;
  }
  stream->news_ = true;
  stream->Wake();
  return 0;
}

int H2Session::OnData(nghttp2_session*, uint8_t, int32_t stream_id, const uint8_t* data, size_t len,
                      void* user_data) {
  auto* self = static_cast<H2Session*>(user_data);
  H2Stream* stream = self->Find(stream_id);
  if (stream == nullptr) {
    // A cancelled stream's late bytes still count against the connection window.
    nghttp2_session_consume_connection(self->session_, len);
    return 0;
  }
  stream->body_.append(reinterpret_cast<const char*>(data), len);
  stream->unconsumed_ += len;
  stream->news_ = true;
  stream->Wake();
  return 0;
}

int H2Session::OnFrameSent(nghttp2_session*, const nghttp2_frame* frame, void* user_data) {
  if ((frame->hd.type == NGHTTP2_HEADERS || frame->hd.type == NGHTTP2_DATA) &&
      (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0) {
    if (H2Stream* stream = static_cast<H2Session*>(user_data)->Find(frame->hd.stream_id)) {
      stream->request_sent_ = true;
    }
  }
  return 0;
}

int H2Session::OnStreamClose(nghttp2_session*, int32_t stream_id, uint32_t error_code,
                             void* user_data) {
  auto* self = static_cast<H2Session*>(user_data);
  H2Stream* stream = self->Find(stream_id);
  if (stream == nullptr) {
    return 0;
  }
  self->streams_.erase(stream_id);
  stream->open_ = false;
  if (!stream->ended_) {
    // REFUSED_STREAM (also what GOAWAY gives the streams above its last id) promises the
    // stream was not processed; any other reset of a request that left whole promises nothing.
    const bool refused = error_code == NGHTTP2_REFUSED_STREAM;
    stream->Fail(absl::StrCat(self->endpoint_, refused ? " refused" : " reset",
                              " the HTTP/2 stream (", nghttp2_http2_strerror(error_code), ")"),
                 refused || (error_code == NGHTTP2_NO_ERROR && !stream->request_sent_));
  } else {
    stream->news_ = true;
    stream->Wake();
  }
  return 0;
}

ssize_t H2Session::ReadBody(nghttp2_session* session, int32_t stream_id, uint8_t* buf,
                            size_t length, uint32_t* data_flags, nghttp2_data_source*,
                            void* /*user_data*/) {
  auto* stream = static_cast<H2Stream*>(nghttp2_session_get_stream_user_data(session, stream_id));
  if (stream == nullptr) {
    return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;  // cancelled: nghttp2 resets the stream
  }
  const std::size_t n = std::min(length, stream->request_body_.size());
  std::memcpy(buf, stream->request_body_.data(), n);
  stream->request_body_.remove_prefix(n);
  if (stream->request_body_.empty()) {
    *data_flags |= NGHTTP2_DATA_FLAG_EOF;
  }
  return static_cast<ssize_t>(n);
}

nghttp2_session_callbacks* H2Session::Callbacks() {
  static nghttp2_session_callbacks* callbacks = [] {
    nghttp2_session_callbacks* c = nullptr;
    nghttp2_session_callbacks_new(&c);
    nghttp2_session_callbacks_set_on_header_callback(c, &H2Session::OnHeader);
    nghttp2_session_callbacks_set_on_frame_recv_callback(c, &H2Session::OnFrame);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(c, &H2Session::OnData);
    nghttp2_session_callbacks_set_on_stream_close_callback(c, &H2Session::OnStreamClose);
    nghttp2_session_callbacks_set_on_frame_send_callback(c, &H2Session::OnFrameSent);
    return c;
  }();
  return callbacks;
}

}  // namespace spillway
