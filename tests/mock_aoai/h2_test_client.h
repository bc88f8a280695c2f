// A blocking HTTP/2 client for the mock's tests (nghttp2, h2c with prior knowledge): many
// streams on one connection, a chosen receive window, and the raw outcome of each stream
// (status, headers, body, DATA frame sizes, RST_STREAM code), which curl does not show.
#pragma once

#include <nghttp2/nghttp2.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "tests/support/http_client.h"

namespace spillway::mock {

class H2TestClient {
 public:
  struct Stream {
    int status = 0;             // 0 until the final HEADERS
    test::HttpHeaders headers;  // as received (lowercase)
    std::string body;
    std::vector<size_t> data_frames;  // payload size of each DATA frame
    bool closed = false;
    uint32_t error_code = 0;  // of the close: NGHTTP2_NO_ERROR unless reset
  };

  // Connects to 127.0.0.1:`port` and sends the preface and SETTINGS with
  // SETTINGS_INITIAL_WINDOW_SIZE = `stream_window` (flow control is left to nghttp2, which
  // sends WINDOW_UPDATE as data is read).
  static absl::StatusOr<std::unique_ptr<H2TestClient>> Connect(int port,
                                                               int32_t stream_window = 65535);
  ~H2TestClient();

  // Queues a request; returns its stream id (negative on failure). Nothing is sent before Run.
  int32_t Submit(absl::string_view method, absl::string_view path, absl::string_view body = "",
                 const test::HttpHeaders& headers = {});
  void Cancel(int32_t stream_id);  // RST_STREAM(CANCEL)

  // Sends and receives until `done` holds, the connection ends, or `timeout` passes
  // (DeadlineExceeded).
  absl::Status RunUntil(const std::function<bool()>& done,
                        absl::Duration timeout = absl::Seconds(20));
  // Until every submitted stream is closed.
  absl::Status RunUntilAllClosed(absl::Duration timeout = absl::Seconds(20));

  const Stream& stream(int32_t id) { return streams_[id]; }
  bool goaway_received() const { return goaway_received_; }
  uint32_t goaway_error() const { return goaway_error_; }
  int32_t goaway_last_stream_id() const { return goaway_last_stream_id_; }
  bool connection_closed() const { return connection_closed_; }
  // The server's SETTINGS value, once received.
  uint32_t remote_setting(nghttp2_settings_id id) const;

 private:
  H2TestClient() = default;
  absl::Status Flush();

  static int OnHeader(nghttp2_session*, const nghttp2_frame* frame, const uint8_t* name,
                      size_t name_size, const uint8_t* value, size_t value_size, uint8_t,
                      void* user_data);
  static int OnFrameRecv(nghttp2_session*, const nghttp2_frame* frame, void* user_data);
  static int OnDataChunk(nghttp2_session*, uint8_t, int32_t id, const uint8_t* data, size_t size,
                         void* user_data);
  static int OnStreamClose(nghttp2_session*, int32_t id, uint32_t error_code, void* user_data);
  static ssize_t ReadBody(nghttp2_session*, int32_t id, uint8_t* buffer, size_t length,
                          uint32_t* flags, nghttp2_data_source* source, void* user_data);

  int fd_ = -1;
  nghttp2_session* session_ = nullptr;
  std::map<int32_t, Stream> streams_;
  std::map<int32_t, std::pair<std::string, size_t>> bodies_;  // request bodies being sent
  bool goaway_received_ = false;
  uint32_t goaway_error_ = 0;
  int32_t goaway_last_stream_id_ = -1;
  bool connection_closed_ = false;
};

}  // namespace spillway::mock
