// See request.h. Bodies are parsed with Boost.JSON into a stack-backed arena: requests are
// small and this runs once per request on the hot path.
#include "tests/mock_aoai/request.h"

#include <algorithm>
#include <array>
#include <boost/json/monotonic_resource.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "tests/mock_aoai/files_routes.h"
#include "tests/mock_aoai/token_estimate.h"

namespace spillway::mock {
namespace {

namespace json = boost::json;

absl::string_view View(const json::string& s) { return absl::string_view(s.data(), s.size()); }

bool ParseOperation(absl::string_view suffix, Operation* op) {
  if (suffix == "chat/completions") {
    *op = Operation::kChatCompletions;
  } else if (suffix == "completions") {
    *op = Operation::kCompletions;
  } else if (suffix == "embeddings") {
    *op = Operation::kEmbeddings;
  } else {
    return false;
  }
  return true;
}

absl::Status Invalid(absl::string_view message) { return absl::InvalidArgumentError(message); }

// Optional positive integer field; null counts as absent.
absl::Status ReadPositive(const json::object& body, absl::string_view key,
                          std::optional<int64_t>* out) {
  const json::value* value = body.if_contains(json::string_view(key.data(), key.size()));
  if (value == nullptr || value->is_null()) {
    return absl::OkStatus();
  }
  int64_t number = 0;
  if (value->is_int64()) {
    number = value->get_int64();
  } else if (value->is_uint64() && value->get_uint64() < (1ull << 62)) {
    number = static_cast<int64_t>(value->get_uint64());
  } else {
    return Invalid(absl::StrCat("'", key, "' must be an integer"));
  }
  if (number < 1) {
    return Invalid(absl::StrCat("'", key, "' must be at least 1"));
  }
  *out = number;
  return absl::OkStatus();
}

// Text of one chat message: a string, or the `text` of each part of an array of parts.
void MessageText(const json::value& content, std::string* scratch, absl::string_view* text) {
  if (content.is_string()) {
    *text = View(content.get_string());
    return;
  }
  if (content.is_array()) {
    for (const json::value& part : content.get_array()) {
      if (const json::object* object = part.if_object()) {
        if (const json::value* t = object->if_contains("text"); t != nullptr && t->is_string()) {
          absl::StrAppend(scratch, View(t->get_string()));
        }
      }
    }
    *text = *scratch;
  }
}

// Prompt or embedding input: a string, an array of strings, or token arrays (counted as is).
absl::Status CollectInputs(const json::value& input, absl::string_view key,
                           std::vector<absl::string_view>* pieces, int64_t* token_arrays,
                           ApiRequest* request) {
  auto add_string = [&](const json::string& s) {
    pieces->push_back(View(s));
    request->input_hashes.push_back(Fnv1a(kFnvOffset, View(s)));
  };
  if (input.is_string()) {
    add_string(input.get_string());
    return absl::OkStatus();
  }
  if (!input.is_array() || input.get_array().empty()) {
    return Invalid(absl::StrCat("'", key, "' must be a string or a non-empty array"));
  }
  const json::array& items = input.get_array();
  if (items[0].is_number()) {
    // One prompt given as token ids.
    *token_arrays += static_cast<int64_t>(items.size());
    request->input_hashes.push_back(Fnv1a(kFnvOffset, json::serialize(input)));
    return absl::OkStatus();
  }
  for (const json::value& item : items) {
    if (item.is_string()) {
      add_string(item.get_string());
    } else if (item.is_array()) {
      *token_arrays += std::max<int64_t>(1, static_cast<int64_t>(item.get_array().size()));
      request->input_hashes.push_back(Fnv1a(kFnvOffset, json::serialize(item)));
    } else {
      return Invalid(absl::StrCat("'", key, "' items must be strings or token arrays"));
    }
  }
  return absl::OkStatus();
}

}  // namespace

uint64_t Fnv1a(uint64_t hash, absl::string_view text) {
  constexpr uint64_t kFnvPrime = 1099511628211ull;
  for (const char c : text) {
    hash ^= static_cast<unsigned char>(c);
    hash *= kFnvPrime;
  }
  return hash;
}

absl::string_view OperationName(Operation op) {
  switch (op) {
    case Operation::kChatCompletions:
      return "ChatCompletions_Create";
    case Operation::kCompletions:
      return "Completions_Create";
    case Operation::kEmbeddings:
      return "Embeddings_Create";
  }
  return "Unknown";
}

Route MatchRoute(absl::string_view method, absl::string_view target) {
  Route route;
  absl::string_view path = target;
  absl::string_view query;
  if (const size_t q = target.find('?'); q != absl::string_view::npos) {
    path = target.substr(0, q);
    query = target.substr(q + 1);
  }
  route.query = query;
  absl::string_view model_param;
  absl::string_view deployment_param;
  for (absl::string_view param : absl::StrSplit(query, '&')) {
    if (absl::ConsumePrefix(&param, "api-version=")) {
      route.has_api_version = true;
      route.api_version = param;
    } else if (absl::ConsumePrefix(&param, "model=")) {
      model_param = param;
    } else if (absl::ConsumePrefix(&param, "deployment=")) {
      deployment_param = param;
    } else if (absl::ConsumePrefix(&param, "api-key=")) {
      route.query_api_key = param;
    }
  }
  if (absl::ConsumePrefix(&path, "/mock/")) {
    route.kind = Route::Kind::kControl;
    if (path == "stats" && method == "GET") {
      route.control = ControlAction::kGetStats;
    } else if (path == "faults" && method == "POST") {
      route.control = ControlAction::kAddFault;
    } else if (path == "faults" && method == "DELETE") {
      route.control = ControlAction::kClearFaults;
    } else if (path == "faults" && method == "GET") {
      route.control = ControlAction::kListFaults;
    } else if (path == "reset" && method == "POST") {
      route.control = ControlAction::kReset;
    } else {
      route.kind = Route::Kind::kNotFound;
    }
    return route;
  }
  if (path == "/metadata/identity/oauth2/token" || path == "/msi/token") {
    if (method == "GET") {
      route.kind = Route::Kind::kToken;
      route.token = path == "/msi/token" ? TokenEndpoint::kAppService : TokenEndpoint::kImds;
    }
    return route;
  }
  // The Responses API, stateful: GET, DELETE and POST on the collection and its members.
  for (const absl::string_view prefix : {"/openai/v1/responses", "/openai/responses"}) {
    absl::string_view rest = path;
    if (absl::ConsumePrefix(&rest, prefix) && (rest.empty() || rest.front() == '/')) {
      route.kind = Route::Kind::kResponses;
      route.v1 = prefix == "/openai/v1/responses";
      route.responses_path = rest;
      return route;
    }
  }
  // The Conversations API, stateful, on the v1 surface only.
  if (absl::string_view rest = path; absl::ConsumePrefix(&rest, "/openai/v1/conversations") &&
                                     (rest.empty() || rest.front() == '/')) {
    route.kind = Route::Kind::kConversations;
    route.v1 = true;
    route.conversations_path = rest;
    return route;
  }
  // The Assistants API (assistants, threads, their messages and runs), stateful, on both
  // surfaces: the dated one is what Azure documents for it.
  for (const absl::string_view prefix : {"/openai/v1", "/openai"}) {
    absl::string_view rest = path;
    if (!absl::ConsumePrefix(&rest, prefix)) {
      continue;
    }
    for (const absl::string_view collection : {"/assistants", "/threads"}) {
      if (absl::StartsWith(rest, collection) &&
          (rest.size() == collection.size() || rest[collection.size()] == '/')) {
        route.kind = Route::Kind::kAssistants;
        route.v1 = prefix == "/openai/v1";
        route.assistants_path = rest;
        return route;
      }
    }
  }
  // Realtime: the WebSocket (GET), client secrets and WebRTC calls (POST).
  for (const absl::string_view prefix : {"/openai/v1/realtime", "/openai/realtime"}) {
    absl::string_view rest = path;
    if (absl::ConsumePrefix(&rest, prefix) &&
        (rest.empty() || rest == "/client_secrets" || rest == "/calls")) {
      route.kind = Route::Kind::kRealtime;
      route.v1 = prefix == "/openai/v1/realtime";
      route.realtime_path = rest;
      route.query_deployment = route.v1 ? model_param : deployment_param;
      return route;
    }
  }
  if (MatchFilesApiRoute(method, path, route)) {
    return route;
  }
  if (method != "POST") {
    return route;
  }
  if (absl::EndsWith(path, "/oauth2/v2.0/token")) {
    const absl::string_view tenant = path.substr(1, path.size() - 1 - 18);
    if (absl::StartsWith(path, "/") && !tenant.empty() && !absl::StrContains(tenant, '/')) {
      route.kind = Route::Kind::kToken;
      route.token = TokenEndpoint::kClientCredentials;
      route.tenant = tenant;
    }
    return route;
  }
  if (absl::ConsumePrefix(&path, "/openai/v1/")) {
    if (ParseOperation(path, &route.op)) {
      route.kind = Route::Kind::kApi;
      route.v1 = true;
    }
    return route;
  }
  if (absl::ConsumePrefix(&path, "/openai/deployments/")) {
    const size_t slash = path.find('/');
    if (slash == 0 || slash == absl::string_view::npos) {
      return route;
    }
    route.deployment = path.substr(0, slash);
    if (ParseOperation(path.substr(slash + 1), &route.op)) {
      route.kind = Route::Kind::kApi;
    }
  }
  return route;
}

absl::StatusOr<ApiRequest> ParseApiRequest(Operation op, absl::string_view body) {
  std::array<unsigned char, 8192> arena;
  json::monotonic_resource resource(arena.data(), arena.size());
  boost::system::error_code ec;
  const json::value parsed =
      json::parse(json::string_view(body.data(), body.size()), ec, &resource);
  if (ec) {
    return Invalid(absl::StrCat("The request body is not valid JSON: ", ec.message()));
  }
  const json::object* object = parsed.if_object();
  if (object == nullptr) {
    return Invalid("The request body must be a JSON object.");
  }

  ApiRequest request;
  if (const json::value* model = object->if_contains("model")) {
    if (!model->is_string()) {
      return Invalid("'model' must be a string");
    }
    request.model = std::string(View(model->get_string()));
  }
  std::optional<int64_t> number;
  if (absl::Status s = ReadPositive(*object, "max_tokens", &request.max_tokens); !s.ok()) return s;
  if (!request.max_tokens.has_value()) {
    if (absl::Status s = ReadPositive(*object, "max_completion_tokens", &request.max_tokens);
        !s.ok()) {
      return s;
    }
  }
  if (absl::Status s = ReadPositive(*object, "n", &number); !s.ok()) return s;
  request.n = number.value_or(1);
  if (request.n > 128) {
    return Invalid("'n' must be at most 128");
  }
  number.reset();
  if (absl::Status s = ReadPositive(*object, "best_of", &number); !s.ok()) return s;
  request.best_of = number.value_or(0);
  number.reset();
  if (absl::Status s = ReadPositive(*object, "dimensions", &number); !s.ok()) return s;
  request.dimensions = std::min<int64_t>(number.value_or(0), 4096);

  if (const json::value* stream = object->if_contains("stream");
      stream != nullptr && !stream->is_null()) {
    if (!stream->is_bool()) {
      return Invalid("'stream' must be a boolean");
    }
    request.stream = stream->get_bool();
  }
  if (const json::value* options = object->if_contains("stream_options");
      options != nullptr && options->is_object()) {
    const json::value* include = options->get_object().if_contains("include_usage");
    request.include_usage = include != nullptr && include->is_bool() && include->get_bool();
  }

  std::vector<absl::string_view> pieces;
  std::vector<std::string> scratch;  // text of multi-part chat messages
  int64_t token_arrays = 0;
  switch (op) {
    case Operation::kChatCompletions: {
      const json::value* messages = object->if_contains("messages");
      if (messages == nullptr || !messages->is_array() || messages->get_array().empty()) {
        return Invalid("'messages' is a required property and must be a non-empty array");
      }
      const json::array& list = messages->get_array();
      pieces.reserve(list.size());
      scratch.reserve(list.size());
      for (const json::value& message : list) {
        const json::object* m = message.if_object();
        if (m == nullptr) {
          return Invalid("each item of 'messages' must be an object");
        }
        absl::string_view text;
        if (const json::value* content = m->if_contains("content")) {
          scratch.emplace_back();
          MessageText(*content, &scratch.back(), &text);
        }
        pieces.push_back(text);
      }
      break;
    }
    case Operation::kCompletions: {
      const json::value* prompt = object->if_contains("prompt");
      if (prompt == nullptr) {
        return Invalid("'prompt' is a required property");
      }
      if (absl::Status s = CollectInputs(*prompt, "prompt", &pieces, &token_arrays, &request);
          !s.ok()) {
        return s;
      }
      request.input_hashes.clear();
      break;
    }
    case Operation::kEmbeddings: {
      const json::value* input = object->if_contains("input");
      if (input == nullptr) {
        return Invalid("'input' is a required property");
      }
      if (absl::Status s = CollectInputs(*input, "input", &pieces, &token_arrays, &request);
          !s.ok()) {
        return s;
      }
      request.stream = false;
      break;
    }
  }
  request.prompt_tokens = (pieces.empty() ? 0 : EstimatePromptTokens(pieces)) + token_arrays;
  request.prompt_tokens = std::max<int64_t>(1, request.prompt_tokens);
  uint64_t hash = kFnvOffset;
  for (const absl::string_view piece : pieces) {
    hash = Fnv1a(hash, piece);
    hash = Fnv1a(hash, "\x1e");  // record separator: ["ab"] and ["a","b"] differ
  }
  request.prompt_hash = hash;
  return request;
}

TokenPlan PlanTokens(Operation op, const ApiRequest& request, int64_t default_completion_tokens) {
  TokenPlan plan;
  if (op == Operation::kEmbeddings) {
    plan.choices = 0;
    plan.charge = request.prompt_tokens;
    plan.actual = request.prompt_tokens;
    return plan;
  }
  plan.choices = request.n;
  const int64_t budget = request.max_tokens.value_or(default_completion_tokens);
  plan.completion_tokens_per_choice = std::min(default_completion_tokens, budget);
  plan.truncated = budget < default_completion_tokens;
  const int64_t generations = std::max(request.n, request.best_of);
  plan.charge = request.prompt_tokens + budget * generations;
  plan.actual = request.prompt_tokens + plan.completion_tokens_per_choice * request.n;
  return plan;
}

}  // namespace spillway::mock
