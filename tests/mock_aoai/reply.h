// The request as the handlers read it, and the Reply they leave for the session (HTTP/1 or
// HTTP/2) to carry out on the wire: wait, stream, drip, cut, reset, hang.
#pragma once

#include <cstdint>
#include <optional>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "tests/mock_aoai/assistants_wire.h"
#include "tests/mock_aoai/completion.h"
#include "tests/mock_aoai/event_stream.h"
#include "tests/mock_aoai/rate_limiter.h"
#include "tests/mock_aoai/responses_wire.h"
#include "tests/mock_aoai/stats.h"

namespace spillway::mock {

class UploadSink;  // upload.h

// The parts of an HTTP request the handler reads.
struct RequestView {
  absl::string_view method;
  absl::string_view target;
  absl::string_view api_key;          // the api-key header
  absl::string_view authorization;    // the Authorization header
  absl::string_view metadata;         // Metadata (IMDS requires "true")
  absl::string_view identity_header;  // X-IDENTITY-HEADER (App Service managed identity)
  absl::string_view content_type;
  absl::string_view body;
  bool keep_alive = true;
  bool http10 = false;
  bool websocket_upgrade = false;  // GET with Upgrade: websocket (HTTP/1.1 only)
  // A multipart upload the session streamed in (files_routes.h IsStreamedUpload) instead of
  // filling `body`; null when `body` holds the request's body.
  const UploadSink* upload = nullptr;
};

struct Reply {
  enum class Kind {
    kFull,    // `out` holds the whole response
    kStream,  // `out` holds the head; events() makes the chunked SSE body
    kReset,   // close with RST, nothing written
    kHang,    // write nothing, keep the connection open until the client leaves
    // Accept the WebSocket upgrade and serve a Realtime session (HTTP/1.1 only): `deployment`
    // and `realtime_model` name it.
    kWebSocket,
    // The goaway fault: HTTP/2 refuses the stream (and later ones) with GOAWAY; HTTP/1.1
    // closes the connection unanswered.
    kGoaway,
  };
  Kind kind = Kind::kFull;
  bool keep_alive = true;
  size_t head_size = 0;  // kFull: how much of `out` is the head
  absl::Duration first_byte_delay = absl::ZeroDuration();
  absl::Duration per_token = absl::ZeroDuration();  // kStream: before each later token
  absl::Duration drip = absl::ZeroDuration();       // slow_drip: between events / body pieces
  int64_t cut_after = -1;                           // cut: events (or body pieces) before close
  int interim_status = 0;    // interim: a 1xx answer first (HTTP/1.1; HTTP/2 ignores it)
  bool close_after = false;  // close: end the connection once answered (HTTP/1.1 only)
  // kStream: one of these (held by value: a connection reuses its Reply, nothing is allocated
  // for the stream itself).
  std::optional<SseStream> stream;                    // chat and text completions
  std::optional<ResponsesStream> responses_stream;    // the Responses API
  std::optional<AssistantsStream> assistants_stream;  // an Assistants API run

  // Settled once the reply is written or abandoned.
  RateLimiter* limiter = nullptr;
  uint64_t ticket = 0;
  int64_t refund = 0;
  absl::string_view deployment;
  absl::string_view realtime_model;  // kWebSocket
  std::optional<Usage> usage;  // reported in the body (streams: only if the usage event went out)

  // kStream: the events to write.
  EventStream* events() {
    if (stream.has_value()) return &*stream;
    if (responses_stream.has_value()) return &*responses_stream;
    if (assistants_stream.has_value()) return &*assistants_stream;
    return nullptr;
  }
  const EventStream* events() const {
    if (stream.has_value()) return &*stream;
    if (responses_stream.has_value()) return &*responses_stream;
    if (assistants_stream.has_value()) return &*assistants_stream;
    return nullptr;
  }
};

}  // namespace spillway::mock
