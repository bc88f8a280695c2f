// See http_reply.h.
#include "tests/mock_aoai/http_reply.h"

#include <boost/beast/http/status.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/string_view.hpp>
#include <random>

#include "absl/strings/str_cat.h"
#include "common/azure_error.h"

namespace spillway::mock {
namespace {

constexpr char kHex[] = "0123456789abcdef";

std::mt19937_64& Rng() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  return rng;
}

}  // namespace

void AppendJsonString(std::string& out, absl::string_view text) {
  out += boost::json::serialize(boost::json::string_view(text.data(), text.size()));
}

void AppendStatusLine(std::string& out, int status) {
  namespace http = boost::beast::http;
  const auto reason = http::obsolete_reason(http::int_to_status(static_cast<unsigned>(status)));
  absl::StrAppend(&out, "HTTP/1.1 ", status, " ",
                  reason.empty() || reason == "<unknown-status>"
                      ? absl::string_view("Status")
                      : absl::string_view(reason.data(), reason.size()),
                  "\r\n");
}

void AppendHeader(std::string& out, absl::string_view name, absl::string_view value) {
  absl::StrAppend(&out, name, ": ", value, "\r\n");
}

void AppendHeader(std::string& out, absl::string_view name, int64_t value) {
  absl::StrAppend(&out, name, ": ", value, "\r\n");
}

void AppendBody(std::string& out, absl::string_view content_type, absl::string_view body) {
  absl::StrAppend(&out, "Content-Type: ", content_type, "\r\nContent-Length: ", body.size(),
                  "\r\n\r\n", body);
}

void AppendAzureError(std::string& out, absl::string_view code, absl::string_view message) {
  out += AzureErrorBody(code, message);
}

void AppendUuid(std::string& out) {
  uint64_t hi = Rng()();
  uint64_t lo = Rng()();
  hi = (hi & ~0xF000ull) | 0x4000ull;        // version 4
  lo = (lo & ~(3ull << 62)) | (2ull << 62);  // RFC 4122 variant
  char text[36];
  int pos = 0;
  for (int i = 0; i < 32; ++i) {
    if (i == 8 || i == 12 || i == 16 || i == 20) {
      text[pos++] = '-';
    }
    const uint64_t word = i < 16 ? hi : lo;
    text[pos++] = kHex[(word >> (60 - 4 * (i % 16))) & 0xF];
  }
  out.append(text, sizeof(text));
}

void AppendRandomId(std::string& out, int count) {
  static constexpr char kAlnum[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  uint64_t bits = 0;
  for (int i = 0; i < count; ++i) {
    if (i % 10 == 0) {
      bits = Rng()();
    }
    out += kAlnum[bits % 62];
    bits /= 62;
  }
}

void AppendRandomHex(std::string& out, int count) {
  uint64_t bits = 0;
  for (int i = 0; i < count; ++i) {
    if (i % 16 == 0) {
      bits = Rng()();
    }
    out += kHex[bits & 0xF];
    bits >>= 4;
  }
}

void AppendChunk(std::string& out, absl::string_view data) {
  char size[17];
  int pos = 16;
  size_t n = data.size();
  do {
    size[--pos] = kHex[n & 0xF];
    n >>= 4;
  } while (n != 0);
  out.append(size + pos, 16 - pos);
  absl::StrAppend(&out, "\r\n", data, "\r\n");
}

}  // namespace spillway::mock
