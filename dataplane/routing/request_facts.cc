// See request_facts.h. One SAX pass with Boost.JSON's basic_parser: no DOM is built (the DOM
// parse and walk were ~5k instructions of the agent's ~65k per request, callgrind).
#include "dataplane/routing/request_facts.h"

#include <algorithm>
#include <array>
#include <boost/json/basic_parser_impl.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>
#include <cstdint>
#include <string_view>

#include "absl/container/inlined_vector.h"
#include "absl/strings/str_cat.h"
#include "dataplane/routing/json_sax.h"

namespace spillway {
namespace {

namespace json = boost::json;

// Where the value about to start goes.
enum class Slot : uint8_t {
  kNone,
  kModel,
  kStream,
  kStreamOptions,
  kIncludeUsage,
  kStore,
  kPreviousResponseId,
  kConversation,  // Responses: "conv_..." or {"id": "conv_..."}
  kMaxOutput,
  kChoices,
  kText,           // prompt text: strings count, objects are text objects, arrays hold text
  kSession,        // Realtime client secrets: the session configuration object
  kSessionModel,   // ... and its model
  kObjectRef,      // a field naming an object by id, at any depth (ObjectRef)
  kObjectRefList,  // ... or a list of them
};

// The fields that name objects: a single id, then lists of ids.
constexpr std::array<std::string_view, 4> kObjectRefFields{"file_id", "input_file_id",
                                                           "assistant_id", "thread_id"};
constexpr std::array<std::string_view, 2> kObjectRefListFields{"vector_store_ids", "file_ids"};

// Top-level keys, and inside text objects (messages, content parts) the keys whose values are
// text; a text object with a "role" is one message. Everything else is skipped.
class FactsHandler : public JsonSaxDefaults {
 public:
  explicit FactsHandler(RequestFacts* facts) : facts_(facts) {}

  bool on_array_begin(json::error_code& ec) { return Enter(Container::kArray, ec); }
  bool on_array_end(std::size_t, json::error_code&) { return Leave(); }
  bool on_object_begin(json::error_code& ec) { return Enter(Container::kObject, ec); }
  bool on_object_end(std::size_t, json::error_code&) { return Leave(); }
  bool on_string_part(json::string_view part, std::size_t, json::error_code& ec) {
    if (stack_.empty()) {
      return NotAnObject(ec);
    }
    if (ValueSlot() == Slot::kModel || ValueSlot() == Slot::kPreviousResponseId ||
        ValueSlot() == Slot::kConversation || ValueSlot() == Slot::kSessionModel ||
        ValueSlot() == Slot::kObjectRef || ValueSlot() == Slot::kObjectRefList) {
      text_.append(part.data(), part.size());
    }
    return true;
  }
  bool on_string(json::string_view part, std::size_t size, json::error_code& ec) {
    if (stack_.empty()) {
      return NotAnObject(ec);
    }
    switch (ValueSlot()) {
      case Slot::kText:
        chars_ += static_cast<int64_t>(size);
        break;
      case Slot::kModel:
        text_.append(part.data(), part.size());
        facts_->model = std::move(text_);
        break;
      case Slot::kPreviousResponseId:
        text_.append(part.data(), part.size());
        facts_->previous_response_id = std::move(text_);
        break;
      case Slot::kConversation:
        text_.append(part.data(), part.size());
        facts_->conversation = std::move(text_);
        break;
      case Slot::kSessionModel:
        text_.append(part.data(), part.size());
        facts_->session_model = std::move(text_);
        break;
      case Slot::kObjectRefList:
        if (stack_.back().container != Container::kArray) {
          break;  // a single string where a list is due
        }
        [[fallthrough]];
      case Slot::kObjectRef:
        text_.append(part.data(), part.size());
        AddObjectRef();
        break;
      default:
        break;
    }
    text_.clear();
    return Value();
  }
  bool on_key_part(json::string_view part, std::size_t, json::error_code&) {
    key_.append(part.data(), part.size());
    return true;
  }
  bool on_key(json::string_view part, std::size_t, json::error_code&) {
    // A key that arrived whole is compared where it lies; only a key split across buffers is
    // assembled. Compared as std::string_view, sizes first (std::string == "literal" measures
    // the literal and compares bytes for each of the ~20 names).
    std::string_view key(part.data(), part.size());
    if (!key_.empty()) {
      key_.append(part.data(), part.size());
      key = key_;
    }
    Frame& frame = stack_.back();
    frame.next = Slot::kNone;
    if (ObjectRefKey(frame, key)) {
      // Taken wherever it is: in a tool, a content part, tool_resources.
    } else if (frame.slot == Slot::kNone && stack_.size() == 1) {
      frame.next = TopLevelSlot(key);
    } else if (frame.slot == Slot::kText) {
      if (key == "role") {
        ++messages_;
      } else if (key == "content" || key == "text" || key == "name" || key == "arguments") {
        frame.next = Slot::kText;
      }
    } else if (frame.slot == Slot::kStreamOptions && key == "include_usage") {
      frame.next = Slot::kIncludeUsage;
    } else if (frame.slot == Slot::kConversation && key == "id" && stack_.size() == 2) {
      frame.next = Slot::kConversation;
    } else if (frame.slot == Slot::kSession && key == "model") {
      frame.next = Slot::kSessionModel;
    }
    key_.clear();
    return true;
  }
  bool on_int64(int64_t value, json::string_view, json::error_code& ec) {
    return Number(value, ec);
  }
  bool on_uint64(uint64_t value, json::string_view, json::error_code& ec) {
    return Number(static_cast<int64_t>(std::min<uint64_t>(value, INT64_MAX)), ec);
  }
  bool on_double(double, json::string_view, json::error_code& ec) { return Scalar(ec); }
  bool on_bool(bool value, json::error_code& ec) {
    if (stack_.empty()) {
      return NotAnObject(ec);
    }
    if (ValueSlot() == Slot::kStream) {
      facts_->stream = value;
    } else if (ValueSlot() == Slot::kIncludeUsage) {
      facts_->include_usage = value;
    } else if (ValueSlot() == Slot::kStore) {
      facts_->store = value;
    }
    return Value();
  }
  bool on_null(json::error_code& ec) { return Scalar(ec); }

  bool not_an_object() const { return not_an_object_; }
  int64_t chars() const { return chars_; }
  int64_t messages() const { return messages_; }
  int64_t max_output() const { return max_output_; }
  int64_t choices() const { return choices_; }

 private:
  enum class Container : uint8_t { kObject, kArray };
  struct Frame {
    Container container;
    Slot slot;                // what this container is (kText: a text array or text object)
    Slot next = Slot::kNone;  // objects: where the value after the last key goes
    // kObjectRefList arrays, and objects whose next value is an object reference: its field.
    absl::string_view ref_field;
  };

  // Whether `key` names an object (or a list of them); if so the frame takes its value.
  bool ObjectRefKey(Frame& frame, std::string_view key) {
    // Every such field ends in "_id" or "_ids": other keys (role, content, ...) stop here.
    if (key.size() < 7 || (key.back() != 'd' && key.back() != 's') ||
        key.find("_id") == std::string_view::npos) {
      return false;
    }
    for (const std::string_view field : kObjectRefFields) {
      if (key == field) {
        frame.next = Slot::kObjectRef;
        frame.ref_field = absl::string_view(field.data(), field.size());
        return true;
      }
    }
    for (const std::string_view field : kObjectRefListFields) {
      if (key == field) {
        frame.next = Slot::kObjectRefList;
        frame.ref_field = absl::string_view(field.data(), field.size());
        return true;
      }
    }
    return false;
  }

  void AddObjectRef() {
    std::vector<ObjectRef>& refs = facts_->object_refs;
    if (!text_.empty() && text_.size() <= RequestFacts::kMaxObjectRefBytes &&
        refs.size() < RequestFacts::kMaxObjectRefs) {
      refs.push_back(ObjectRef{stack_.back().ref_field, std::move(text_)});
    }
  }

  static Slot TopLevelSlot(std::string_view key) {
    if (key == "model") return Slot::kModel;
    if (key == "stream") return Slot::kStream;
    if (key == "stream_options") return Slot::kStreamOptions;
    if (key == "previous_response_id") return Slot::kPreviousResponseId;
    if (key == "conversation") return Slot::kConversation;
    if (key == "store") return Slot::kStore;
    if (key == "session") return Slot::kSession;
    if (key == "max_tokens" || key == "max_completion_tokens" || key == "max_output_tokens") {
      return Slot::kMaxOutput;
    }
    if (key == "n" || key == "best_of") return Slot::kChoices;
    if (key == "messages" || key == "prompt" || key == "input" || key == "instructions") {
      return Slot::kText;
    }
    return Slot::kNone;
  }

  // The slot of the value now being read: an array passes its own on (text arrays hold
  // text); an object gives the one its last key chose.
  Slot ValueSlot() const {
    const Frame& frame = stack_.back();
    return frame.container == Container::kArray ? frame.slot : frame.next;
  }

  bool Enter(Container container, json::error_code& ec) {
    if (stack_.empty()) {
      if (container != Container::kObject) {
        return NotAnObject(ec);
      }
      stack_.push_back({container, Slot::kNone, Slot::kNone, {}});
      return true;
    }
    Slot slot = ValueSlot();
    // stream_options, session and a conversation given as {"id": ...} must be objects; a text
    // value may be either container.
    if ((slot == Slot::kStreamOptions || slot == Slot::kSession || slot == Slot::kConversation) &&
        container != Container::kObject) {
      slot = Slot::kNone;
    }
    // A list of ids is one array of strings, right under its key.
    if (slot == Slot::kObjectRefList &&
        (container != Container::kArray || stack_.back().container != Container::kObject)) {
      slot = Slot::kNone;
    }
    if (slot != Slot::kText && slot != Slot::kStreamOptions && slot != Slot::kSession &&
        slot != Slot::kConversation && slot != Slot::kObjectRefList) {
      slot = Slot::kNone;
    }
    const absl::string_view field = slot == Slot::kObjectRefList ? stack_.back().ref_field : "";
    stack_.push_back({container, slot, Slot::kNone, field});
    return true;
  }
  bool Leave() {
    stack_.pop_back();
    return Value();
  }
  bool Value() {
    if (!stack_.empty()) {
      stack_.back().next = Slot::kNone;
    }
    return true;
  }
  bool Number(int64_t value, json::error_code& ec) {
    if (stack_.empty()) {
      return NotAnObject(ec);
    }
    if (ValueSlot() == Slot::kMaxOutput) {
      max_output_ = std::max(max_output_, value);
    } else if (ValueSlot() == Slot::kChoices) {
      choices_ = std::max(choices_, value);
    }
    return Value();
  }
  bool Scalar(json::error_code& ec) { return stack_.empty() ? NotAnObject(ec) : Value(); }
  bool NotAnObject(json::error_code& ec) {
    not_an_object_ = true;
    ec = json::error::syntax;  // stops the parse; reported as "must be a JSON object"
    return false;
  }

  RequestFacts* facts_;
  bool not_an_object_ = false;
  absl::InlinedVector<Frame, 8> stack_;
  std::string key_;   // short keys stay in the small-string buffer
  std::string text_;  // the model, previous_response_id or conversation being read
  int64_t chars_ = 0;
  int64_t messages_ = 0;
  int64_t max_output_ = 0;
  int64_t choices_ = 1;
};

}  // namespace

int64_t EstimateTokensFromChars(int64_t chars, int64_t messages) {
  return (chars + 3) / 4 + 4 * messages + (chars > 0 || messages > 0 ? 1 : 0);
}

absl::StatusOr<RequestFacts> ReadRequestFacts(absl::string_view body) {
  RequestFacts facts;
  if (absl::Status status = ReadRequestFacts(body, facts); !status.ok()) {
    return status;
  }
  return facts;
}

absl::Status ReadRequestFacts(absl::string_view body, RequestFacts& facts) {
  if (body.empty()) {
    return absl::OkStatus();
  }
  json::basic_parser<FactsHandler> parser(json::parse_options{}, &facts);
  json::error_code ec;
  const std::size_t used = parser.write_some(false, body.data(), body.size(), ec);
  if (parser.handler().not_an_object()) {
    return absl::InvalidArgumentError("request body must be a JSON object");
  }
  if (!ec && body.find_first_not_of(" \t\r\n", used) != absl::string_view::npos) {
    ec = json::error::extra_data;  // one document, as json::parse requires
  }
  if (ec) {
    return absl::InvalidArgumentError(
        absl::StrCat("request body is not valid JSON: ", ec.message()));
  }
  const FactsHandler& handler = parser.handler();
  facts.prompt_tokens_estimate = EstimateTokensFromChars(handler.chars(), handler.messages());
  facts.max_output_tokens = handler.max_output();
  facts.choices = handler.choices();
  return absl::OkStatus();
}

absl::StatusOr<std::string> ReplaceModel(absl::string_view body, absl::string_view model,
                                         bool in_session) {
  boost::system::error_code ec;
  json::value root = json::parse(json::string_view(body.data(), body.size()), ec);
  if (ec || !root.is_object()) {
    return absl::InvalidArgumentError("request body is not a JSON object");
  }
  json::object* target = &root.get_object();
  if (in_session) {
    json::value* session = target->if_contains("session");
    if (session == nullptr || !session->is_object()) {
      return absl::InvalidArgumentError("request body has no \"session\" object");
    }
    target = &session->get_object();
  }
  (*target)["model"] = json::string_view(model.data(), model.size());
  return json::serialize(root);
}

}  // namespace spillway
