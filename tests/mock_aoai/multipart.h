// An incremental multipart/form-data parser (RFC 7578 over RFC 2046): the body goes in as it
// arrives, in pieces of any size; parts come out as events, their content never buffered.
#pragma once

#include <cstddef>
#include <optional>
#include <string>

#include "absl/strings/string_view.h"

namespace spillway::mock {

// What a part's headers say: Content-Disposition's name and filename, and its Content-Type.
struct MultipartPartHeaders {
  std::string name;
  std::string filename;
  bool has_filename = false;  // a file part (even with filename="")
  std::string content_type;
};

class MultipartHandler {
 public:
  virtual ~MultipartHandler() = default;
  virtual void OnPartBegin(const MultipartPartHeaders& headers) = 0;
  virtual void OnPartData(absl::string_view data) = 0;
  virtual void OnPartEnd() = 0;
};

// The boundary of a multipart/form-data Content-Type; nullopt when the type is another or the
// boundary is missing or invalid (1 to 70 characters, RFC 2046 5.1.1).
std::optional<std::string> MultipartBoundary(absl::string_view content_type);

class MultipartParser {
 public:
  static constexpr size_t kMaxBoundary = 70;
  static constexpr size_t kMaxHeaderBytes = 16 * 1024;  // one part's header block
  static constexpr size_t kMaxParts = 1000;

  // `boundary` as MultipartBoundary gives it; `handler` must outlive the parser.
  MultipartParser(absl::string_view boundary, MultipartHandler& handler);

  // False once the input is malformed (error() says why); later calls then do nothing.
  bool Feed(absl::string_view data);
  // At the end of the body: false unless the closing delimiter was seen.
  bool Finish();
  bool failed() const { return state_ == State::kFailed; }
  const std::string& error() const { return error_; }

 private:
  enum class State {
    kPreamble,   // before the first delimiter: discarded
    kDelimited,  // just after a delimiter: "--" closes, padding and CRLF open a part
    kCloseDash,  // after the first '-' of "--"
    kPadding,    // transport padding (spaces, tabs) before the CRLF
    kPaddingCr,  // after that CR
    kHeaders,    // a part's header block, up to its empty line
    kBody,       // a part's content, up to the next delimiter
    kEpilogue,   // after the closing delimiter: discarded
    kFailed,
  };

  bool Fail(absl::string_view why);
  // Content (or preamble) up to the next delimiter; true when one completed at `pos`.
  bool Scan(absl::string_view data, size_t& pos);
  void Emit(absl::string_view data);
  // One byte after a delimiter; false on a malformed one.
  bool Delimited(char c);
  bool Header(char c);
  bool ParseHeaders();

  const std::string delimiter_;  // CRLF "--" boundary
  MultipartHandler& handler_;
  State state_ = State::kPreamble;
  // A tail of the last piece that may begin the delimiter: at most its size - 1 bytes. Starts
  // as CRLF, so a body that opens with the delimiter's dashes needs no special case.
  std::string held_ = "\r\n";
  std::string headers_;
  size_t parts_ = 0;
  std::string error_;
};

}  // namespace spillway::mock
