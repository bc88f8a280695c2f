// See h2_test_client.h. One socket, driven by poll() from the test's thread.
#include "tests/mock_aoai/h2_test_client.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "tests/mock_aoai/h2_head.h"

namespace spillway::mock {
namespace {

H2TestClient& Self(void* user_data) { return *static_cast<H2TestClient*>(user_data); }

}  // namespace

absl::StatusOr<std::unique_ptr<H2TestClient>> H2TestClient::Connect(int port,
                                                                    int32_t stream_window) {
  std::unique_ptr<H2TestClient> client(new H2TestClient());
  client->fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (client->fd_ < 0) {
    return absl::InternalError(absl::StrCat("socket: ", std::strerror(errno)));
  }
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(client->fd_, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0) {
    return absl::UnavailableError(absl::StrCat("connect: ", std::strerror(errno)));
  }
  const int one = 1;
  setsockopt(client->fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));

  nghttp2_session_callbacks* callbacks = nullptr;
  nghttp2_session_callbacks_new(&callbacks);
  nghttp2_session_callbacks_set_on_header_callback(callbacks, &OnHeader);
  nghttp2_session_callbacks_set_on_frame_recv_callback(callbacks, &OnFrameRecv);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(callbacks, &OnDataChunk);
  nghttp2_session_callbacks_set_on_stream_close_callback(callbacks, &OnStreamClose);
  const int rv = nghttp2_session_client_new(&client->session_, callbacks, client.get());
  nghttp2_session_callbacks_del(callbacks);
  if (rv != 0) {
    client->session_ = nullptr;
    return absl::InternalError(nghttp2_strerror(rv));
  }
  const nghttp2_settings_entry settings[] = {
      {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, static_cast<uint32_t>(stream_window)}};
  nghttp2_submit_settings(client->session_, NGHTTP2_FLAG_NONE, settings, 1);
  if (absl::Status sent = client->Flush(); !sent.ok()) {
    return sent;
  }
  return client;
}

H2TestClient::~H2TestClient() {
  if (session_ != nullptr) {
    nghttp2_session_del(session_);
  }
  if (fd_ >= 0) {
    close(fd_);
  }
}

int32_t H2TestClient::Submit(absl::string_view method, absl::string_view path,
                             absl::string_view body, const test::HttpHeaders& headers) {
  std::vector<nghttp2_nv> nva = {Nv(":method", method), Nv(":scheme", "http"),
                                 Nv(":authority", "127.0.0.1"), Nv(":path", path)};
  if (!body.empty()) {
    nva.push_back(Nv("content-type", "application/json"));
  }
  for (const auto& [name, value] : headers) {
    nva.push_back(Nv(name, value));
  }
  nghttp2_data_provider provider;
  provider.source.ptr = nullptr;
  provider.read_callback = &ReadBody;
  const int32_t id = nghttp2_submit_request(session_, nullptr, nva.data(), nva.size(),
                                            body.empty() ? nullptr : &provider, nullptr);
  if (id > 0) {
    streams_[id];
    if (!body.empty()) {
      bodies_[id] = {std::string(body), 0};
    }
  }
  return id;
}

void H2TestClient::Cancel(int32_t stream_id) {
  nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, stream_id, NGHTTP2_CANCEL);
}

absl::Status H2TestClient::Flush() {
  for (;;) {
    const uint8_t* data = nullptr;
    const ssize_t n = nghttp2_session_mem_send(session_, &data);
    if (n < 0) {
      return absl::InternalError(nghttp2_strerror(static_cast<int>(n)));
    }
    if (n == 0) {
      return absl::OkStatus();
    }
    for (ssize_t at = 0; at < n;) {
      const ssize_t sent = send(fd_, data + at, static_cast<size_t>(n - at), MSG_NOSIGNAL);
      if (sent < 0) {
        if (errno == EINTR) continue;
        connection_closed_ = true;
        return absl::UnavailableError(absl::StrCat("send: ", std::strerror(errno)));
      }
      at += sent;
    }
  }
}

absl::Status H2TestClient::RunUntil(const std::function<bool()>& done, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  char buffer[64 * 1024];
  for (;;) {
    if (absl::Status sent = Flush(); !sent.ok() && !connection_closed_) {
      return sent;
    }
    if (done()) {
      return absl::OkStatus();
    }
    if (connection_closed_) {
      return absl::UnavailableError("the server closed the connection");
    }
    const absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) {
      return absl::DeadlineExceededError("HTTP/2 exchange did not finish in time");
    }
    pollfd pfd{fd_, POLLIN, 0};
    const int ready = poll(
        &pfd, 1, static_cast<int>(std::min<int64_t>(100, absl::ToInt64Milliseconds(left) + 1)));
    if (ready <= 0) {
      continue;
    }
    const ssize_t n = recv(fd_, buffer, sizeof(buffer), 0);
    if (n <= 0) {
      connection_closed_ = true;
      continue;
    }
    const ssize_t used =
        nghttp2_session_mem_recv(session_, reinterpret_cast<const uint8_t*>(buffer), n);
    if (used < 0) {
      return absl::InternalError(
          absl::StrCat("nghttp2: ", nghttp2_strerror(static_cast<int>(used))));
    }
  }
}

absl::Status H2TestClient::RunUntilAllClosed(absl::Duration timeout) {
  return RunUntil(
      [this] {
        return std::all_of(streams_.begin(), streams_.end(),
                           [](const auto& entry) { return entry.second.closed; });
      },
      timeout);
}

uint32_t H2TestClient::remote_setting(nghttp2_settings_id id) const {
  return nghttp2_session_get_remote_settings(session_, id);
}

int H2TestClient::OnHeader(nghttp2_session*, const nghttp2_frame* frame, const uint8_t* name,
                           size_t name_size, const uint8_t* value, size_t value_size, uint8_t,
                           void* user_data) {
  if (frame->hd.type != NGHTTP2_HEADERS) {
    return 0;
  }
  Stream& stream = Self(user_data).streams_[frame->hd.stream_id];
  const std::string key(reinterpret_cast<const char*>(name), name_size);
  const std::string text(reinterpret_cast<const char*>(value), value_size);
  if (key == ":status") {
    stream.status = std::atoi(text.c_str());
  } else {
    stream.headers.emplace_back(key, text);
  }
  return 0;
}

int H2TestClient::OnFrameRecv(nghttp2_session*, const nghttp2_frame* frame, void* user_data) {
  H2TestClient& self = Self(user_data);
  if (frame->hd.type == NGHTTP2_GOAWAY) {
    self.goaway_received_ = true;
    self.goaway_error_ = frame->goaway.error_code;
    self.goaway_last_stream_id_ = frame->goaway.last_stream_id;
  } else if (frame->hd.type == NGHTTP2_DATA) {
    self.streams_[frame->hd.stream_id].data_frames.push_back(frame->hd.length);
  }
  return 0;
}

int H2TestClient::OnDataChunk(nghttp2_session*, uint8_t, int32_t id, const uint8_t* data,
                              size_t size, void* user_data) {
  Self(user_data).streams_[id].body.append(reinterpret_cast<const char*>(data), size);
  return 0;
}

int H2TestClient::OnStreamClose(nghttp2_session*, int32_t id, uint32_t error_code,
                                void* user_data) {
  Stream& stream = Self(user_data).streams_[id];
  stream.closed = true;
  stream.error_code = error_code;
  return 0;
}

ssize_t H2TestClient::ReadBody(nghttp2_session*, int32_t id, uint8_t* buffer, size_t length,
                               uint32_t* flags, nghttp2_data_source*, void* user_data) {
  auto& [body, sent] = Self(user_data).bodies_[id];
  const size_t n = std::min(length, body.size() - sent);
  std::memcpy(buffer, body.data() + sent, n);
  sent += n;
  if (sent == body.size()) {
    *flags |= NGHTTP2_DATA_FLAG_EOF;
  }
  return static_cast<ssize_t>(n);
}

}  // namespace spillway::mock
