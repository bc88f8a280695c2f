// Raw HTTP/1.1 response text appended into reused per-connection buffers: replies are small and
// uniform, so a serializer and a header DOM would only add allocations.
#pragma once

#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"

namespace spillway::mock {

// A JSON string literal, quotes included.
void AppendJsonString(std::string& out, absl::string_view text);

void AppendStatusLine(std::string& out, int status);
void AppendHeader(std::string& out, absl::string_view name, absl::string_view value);
void AppendHeader(std::string& out, absl::string_view name, int64_t value);
// Content-Type, Content-Length, the blank line and the body.
void AppendBody(std::string& out, absl::string_view content_type, absl::string_view body);

// {"error":{"code":"...","message":"..."}}
void AppendAzureError(std::string& out, absl::string_view code, absl::string_view message);

// A random (v4) UUID, as Azure's x-request-id and apim-request-id.
void AppendUuid(std::string& out);
// `count` random characters from [A-Za-z0-9], as in "chatcmpl-..." ids.
void AppendRandomId(std::string& out, int count);
// `count` random lowercase hex digits, as in the Responses API's "resp_..." and "msg_..." ids.
void AppendRandomHex(std::string& out, int count);

// One chunk of a chunked body: hex size, CRLF, data, CRLF.
void AppendChunk(std::string& out, absl::string_view data);
inline constexpr absl::string_view kLastChunk = "0\r\n\r\n";

}  // namespace spillway::mock
