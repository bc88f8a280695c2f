// One HTTP/2 connection to a backend endpoint (nghttp2 over the pool's TCP or TLS stream) and
// the request/response streams multiplexed on it: thousands of open SSE streams share a few
// sockets instead of holding one each. Lives on one I/O thread; nothing here locks.
#pragma once

#include <nghttp2/nghttp2.h>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "dataplane/upstream/upstream_pool.h"

namespace spillway {

class H2Session;

// One request/response exchange. Owned by the attempt that opened it; destroying it before
// the response ended cancels the stream (RST_STREAM CANCEL) so the backend stops generating.
class H2Stream {
 public:
  explicit H2Stream(const asio::any_io_executor& executor);
  ~H2Stream();
  H2Stream(const H2Stream&) = delete;
  H2Stream& operator=(const H2Stream&) = delete;

  // Waits until something new arrived (headers, data, end, failure) or `deadline` passed;
  // false on the deadline.
  asio::awaitable<bool> Wait(std::chrono::steady_clock::time_point deadline);

  bool has_response() const { return status_ != 0; }
  unsigned status() const { return status_; }
  const std::vector<std::pair<std::string, std::string>>& headers() const { return headers_; }
  // Body bytes received and not yet taken; Take hands them over and, once the caller says they
  // left (Consumed), the backend may send as many again (flow control).
  std::string& body() { return body_; }
  void Consumed(std::size_t bytes);
  bool ended() const { return ended_; }  // the whole response arrived
  bool failed() const { return !error_.empty(); }
  const std::string& error() const { return error_; }
  // The backend refused the stream before processing it (GOAWAY, REFUSED_STREAM) or the
  // connection died before the request left whole: safe to send again on another connection.
  bool retryable() const { return retryable_; }
  // The request's last frame went out: the backend may be working on it.
  bool request_sent() const { return request_sent_; }
  // Ends a pending Wait now (it returns true with nothing new), e.g. when the client left.
  void Wake() { wake_.cancel(); }

 private:
  friend class H2Session;
  void Fail(std::string error, bool retryable);

  asio::steady_timer wake_;
  bool news_ = false;
  std::shared_ptr<H2Session> session_;  // set once opened
  int32_t id_ = 0;
  bool open_ = false;           // registered with the session, not yet closed
  std::size_t unconsumed_ = 0;  // received, not yet acknowledged with Consumed
  unsigned status_ = 0;
  std::vector<std::pair<std::string, std::string>> headers_;
  std::string body_;
  bool ended_ = false;
  bool retryable_ = false;
  bool request_sent_ = false;
  std::string error_;
  // The request body, sent by nghttp2's data provider; owned by the caller for the stream's life.
  absl::string_view request_body_;
};

struct H2Header {
  absl::string_view name;  // lowercase, as HTTP/2 requires
  absl::string_view value;
};

class H2Session : public std::enable_shared_from_this<H2Session> {
 public:
  // Created usable at once: requests opened before the connection is up wait in nghttp2's
  // queue and leave when it is. `pool` connects (and must outlive the session's I/O).
  static std::shared_ptr<H2Session> Start(UpstreamPool& pool, UpstreamAddress address,
                                          std::string endpoint);
  ~H2Session();

  // Sends the request; `stream` hears of the response. Fails when the session cannot take
  // another stream (then the caller opens one elsewhere).
  absl::Status Open(H2Stream& stream, const std::vector<H2Header>& headers, absl::string_view body);
  // Room for another stream: alive, not going away, under the backend's stream limit.
  bool Accepting() const;
  bool closed() const { return closed_; }
  // A stream opened at `opened_at` got no response in time. If nothing at all arrived on the
  // connection since then, it may be silently dead (no RST ever comes): new streams go to a
  // new connection; the ones open here run out their own deadlines.
  void SuspectSilence(std::chrono::steady_clock::time_point opened_at);

 private:
  friend class H2Stream;
  H2Session(const asio::any_io_executor& executor, std::string endpoint);

  asio::awaitable<void> Connect(UpstreamPool& pool, UpstreamAddress address);
  asio::awaitable<void> ReadLoop();
  asio::awaitable<void> WriteLoop();
  void Flush();                                   // starts the writer if nghttp2 has frames to send
  void Close(std::string error, bool retryable);  // fails every open stream
  void Release(H2Stream& stream);                 // the stream's owner is done with it
  void Consume(H2Stream& stream, std::size_t bytes);
  static nghttp2_session_callbacks* Callbacks();
  H2Stream* Find(int32_t id) const;

  static int OnHeader(nghttp2_session*, const nghttp2_frame* frame, const uint8_t* name,
                      size_t namelen, const uint8_t* value, size_t valuelen, uint8_t flags,
                      void* user_data);
  static int OnFrame(nghttp2_session*, const nghttp2_frame* frame, void* user_data);
  static int OnData(nghttp2_session*, uint8_t flags, int32_t stream_id, const uint8_t* data,
                    size_t len, void* user_data);
  static int OnFrameSent(nghttp2_session*, const nghttp2_frame* frame, void* user_data);
  static int OnStreamClose(nghttp2_session*, int32_t stream_id, uint32_t error_code,
                           void* user_data);
  static ssize_t ReadBody(nghttp2_session*, int32_t stream_id, uint8_t* buf, size_t length,
                          uint32_t* data_flags, nghttp2_data_source* source, void* user_data);

  asio::any_io_executor executor_;
  std::string endpoint_;
  nghttp2_session* session_ = nullptr;
  UpstreamConnectionPtr connection_;  // null until connected
  bool writing_ = false;
  bool closed_ = false;
  bool going_away_ = false;
  std::chrono::steady_clock::time_point last_read_{};  // when bytes last arrived
  absl::flat_hash_map<int32_t, H2Stream*> streams_;
  std::string out_;  // frames being written
};

}  // namespace spillway
