// One HTTP/2 stream of the mock: the request as the ApiHandler reads it, and the Reply carried
// out paced exactly as the HTTP/1 session paces it (drip, per-token waits, cut), with one DATA
// frame per SSE event. No I/O here: the connection (h2_session.cc) sleeps when told to.
#pragma once

#include <nghttp2/nghttp2.h>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/time/time.h"
#include "tests/mock_aoai/api_handler.h"
#include "tests/mock_aoai/upload.h"

namespace spillway::mock {

// Small on purpose: a connection may carry thousands of these.
struct H2Stream {
  H2Stream(int32_t id, const boost::asio::any_io_executor& executor) : id(id), timer(executor) {}

  // Once the handler answered: frees the request's buffers.
  void ReleaseRequest();
  // Before the HEADERS are submitted; `head_size` is the HTTP/1 head at the start of `out`,
  // kept until Read is first called. Returns whether DATA follows (kFull may have no body).
  bool StartBody(size_t head_size);
  // The nghttp2 data provider: the next piece of the body into `buffer` (at most `length`
  // bytes, EOF flagged with the last one). NGHTTP2_ERR_DEFERRED: call again once `*wait` has
  // passed and Resume was called. NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE: the cut fault, which
  // nghttp2 turns into RST_STREAM(INTERNAL_ERROR).
  ssize_t Read(uint8_t* buffer, size_t length, uint32_t* flags, absl::Duration* wait);
  // The wait Read asked for is over.
  void Resume();

  const int32_t id;
  // The request, as far as the ApiHandler reads it.
  std::string method;
  std::string path;
  std::string api_key;
  std::string authorization;
  std::string metadata;
  std::string identity_header;
  std::string content_type;
  std::string body;
  // A multipart upload (files_routes.h) is fed here instead of `body`, as the HTTP/1 session
  // streams it; made when its first DATA arrives.
  std::unique_ptr<UploadSink> upload;
  bool upload_checked = false;
  bool expect_continue = false;
  bool too_large = false;     // the body passed config.body_limit: answered 413, rest dropped
  bool request_done = false;  // the client's END_STREAM arrived
  bool answered = false;      // the ApiHandler answered, so Settle is owed
  bool settled = false;
  bool responded = false;  // HEADERS submitted
  bool end_sent = false;   // our END_STREAM went out
  bool waiting = false;    // `timer` is armed
  Reply reply;
  // kFull: head and body, handed out from `sent_` up to `ready_` (short of the end while
  // dripping, or for good when cut). kStream: the event being handed out.
  std::string out;
  boost::asio::steady_timer timer;  // first byte delay, per-token pacing, drip

 private:
  ssize_t ReadFull(uint8_t* buffer, size_t length, uint32_t* flags, absl::Duration* wait);
  ssize_t ReadEvents(uint8_t* buffer, size_t length, uint32_t* flags, absl::Duration* wait);

  size_t sent_ = 0;
  size_t ready_ = 0;
  bool due_ = false;  // kStream: the wait before the next event is over
};

}  // namespace spillway::mock
