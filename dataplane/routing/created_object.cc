// See created_object.h. A SAX parse of a prefix: Boost.JSON's basic_parser takes partial input
// and reports what it has seen, so a cut-off head still yields an id that came before the cut.
#include "dataplane/routing/created_object.h"

#include <boost/json/basic_parser_impl.hpp>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "dataplane/routing/json_sax.h"

namespace spillway {
namespace {

namespace json = boost::json;

// Takes the string value of "id" at the top level, or of "id" inside a top-level "response"
// object (the Responses stream's events wrap the response object).
class IdHandler : public JsonSaxDefaults {
 public:
  IdHandler(std::string* id, absl::string_view field) : id_(id), field_(field) {}

  bool on_array_begin(json::error_code&) { return Enter(false); }
  bool on_array_end(std::size_t, json::error_code&) { return Leave(); }
  bool on_object_begin(json::error_code&) { return Enter(depth_ == 1 && key_ == "response"); }
  bool on_object_end(std::size_t, json::error_code&) { return Leave(); }
  bool on_string_part(json::string_view part, std::size_t, json::error_code&) {
    if (IdSlot()) {
      value_.append(part.data(), part.size());
    }
    return true;
  }
  bool on_string(json::string_view part, std::size_t, json::error_code&) {
    if (IdSlot() && id_->empty()) {
      value_.append(part.data(), part.size());
      *id_ = std::move(value_);
    }
    value_.clear();
    key_.clear();
    return true;
  }
  bool on_key_part(json::string_view part, std::size_t, json::error_code&) {
    key_.append(part.data(), part.size());
    return true;
  }
  bool on_key(json::string_view part, std::size_t, json::error_code&) {
    key_.append(part.data(), part.size());
    return true;
  }
  bool on_int64(int64_t, json::string_view, json::error_code&) { return Scalar(); }
  bool on_uint64(uint64_t, json::string_view, json::error_code&) { return Scalar(); }
  bool on_double(double, json::string_view, json::error_code&) { return Scalar(); }
  bool on_bool(bool, json::error_code&) { return Scalar(); }
  bool on_null(json::error_code&) { return Scalar(); }

 private:
  bool IdSlot() const { return key_ == field_ && (depth_ == 1 || (depth_ == 2 && in_response_)); }
  bool Enter(bool response) {
    ++depth_;
    if (depth_ == 2) {
      in_response_ = response;
    }
    key_.clear();
    return true;
  }
  bool Leave() {
    if (depth_ == 2) {
      in_response_ = false;
    }
    --depth_;
    key_.clear();
    return true;
  }
  bool Scalar() {
    key_.clear();
    return true;
  }

  std::string* id_;
  absl::string_view field_;
  int depth_ = 0;
  bool in_response_ = false;
  std::string key_;    // the key whose value comes next (cleared after each value)
  std::string value_;  // an id value in pieces
};

std::string IdInJson(absl::string_view json_text, absl::string_view field) {
  std::string id;
  json::basic_parser<IdHandler> parser(json::parse_options{}, &id, field);
  json::error_code ec;
  // more=true: the head may stop mid-document; what came before the cut was reported.
  parser.write_some(true, json_text.data(), json_text.size(), ec);
  return id;
}

}  // namespace

std::string FindCreatedObjectId(absl::string_view head, absl::string_view prefix) {
  absl::string_view text = absl::StripLeadingAsciiWhitespace(head);
  if (!absl::StartsWith(text, "{")) {
    // An event stream: the first data line holds the created object (or wraps it).
    const std::size_t data = text.find("data:");
    if (data == absl::string_view::npos) {
      return "";
    }
    text = text.substr(data + 5);
    text = text.substr(0, text.find('\n'));
  }
  std::string id = IdInJson(text, "id");
  if (!absl::StartsWith(id, prefix) && absl::EndsWith(prefix, "_")) {
    // Made along with the object answered: a thread created with its run is the run's
    // "thread_id".
    id = IdInJson(text, absl::StrCat(prefix, "id"));
  }
  if (!absl::StartsWith(id, prefix) || id.size() <= prefix.size()) {
    return "";
  }
  return id;
}

std::string CreatedObjectScanner::Finish(absl::string_view prefix) const {
  return enabled_ ? FindCreatedObjectId(head_, prefix) : std::string();
}

}  // namespace spillway
