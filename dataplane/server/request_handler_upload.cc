// RequestHandler::HandleUpload (request_handler.h): uploads are routed on their head (or, on
// /openai/v1, on the form's "model" field read ahead) and streamed to one backend
// (docs/uploads.md), so a 100 MB file costs the agent one chunk.
#include <algorithm>
#include <boost/beast/http/buffer_body.hpp>

#include "absl/strings/str_cat.h"
#include "dataplane/http/expect_continue.h"
#include "dataplane/http/http_head.h"
#include "dataplane/proxy/upload_body.h"
#include "dataplane/routing/multipart_field.h"
#include "dataplane/server/body_reservation.h"
#include "dataplane/server/model_list.h"
#include "dataplane/server/object_routing.h"
#include "dataplane/server/request_handler.h"

namespace spillway {
namespace {

// `route` is null while a form's model is unread: the agent's limit applies.
ErrorReply TooLarge(uint64_t bytes, const SnapshotRoute* route, uint64_t limit) {
  return ErrorReply{413, "RequestEntityTooLarge",
                    absl::StrCat("The upload of ", bytes, " bytes exceeds ",
                                 route != nullptr ? absl::StrCat("route '", route->name, "''s")
                                                  : "this gateway's",
                                 " limit of ", limit, " bytes.")};
}

// A form's fields before its model are held within the buffered-body limit (SDKs often put the
// file first; Azure takes audio of at most 25 MB).
int64_t ReadAheadLimit(const AgentContext& context) {
  return static_cast<int64_t>(std::min(context.body_limit, context.max_upload_bytes));
}

}  // namespace

uint64_t RequestHandler::UploadLimit(const SnapshotRoute* route) const {
  return route != nullptr && route->max_upload_bytes > 0 ? route->max_upload_bytes
                                                         : context_.max_upload_bytes;
}

std::optional<ErrorReply> RequestHandler::RouteUpload(const HeadAdmission& admission,
                                                      ProxyRequest& proxy_request) const {
  switch (admission.path.operation->source) {
    case RouteSource::kPathRoute: {
      // The suffix, in the head's copy the proxy reads: the parsed head goes to the body's
      // parser.
      const absl::string_view target = View(proxy_request.client_request->target());
      proxy_request.route = admission.route;
      proxy_request.upstream_suffix = target.substr(target.size() - admission.path.suffix.size());
      return std::nullopt;
    }
    case RouteSource::kFormModel:
      proxy_request.v1_surface = true;  // routed once the form's model is read
      return std::nullopt;
    default:
      // A file: on the tenant's default route, pinned to the backend that took it.
      proxy_request.v1_surface = true;
      proxy_request.creates = admission.path.operation->creates;
      proxy_request.route = DefaultRoute(*admission.snapshot, admission.tenant);
      if (proxy_request.route == nullptr) {
        return ErrorReply{404, "DeploymentNotFound",
                          "No route of this gateway may be used with this key."};
      }
      return std::nullopt;
  }
}

asio::awaitable<std::optional<ErrorReply>> RequestHandler::ReadFormModel(
    const Request<http::string_body>& request, const HeadAdmission& admission, UploadBody& upload,
    ProxyRequest& proxy_request) {
  absl::StatusOr<std::string> boundary =
      MultipartBoundary(View(request[http::field::content_type]));
  if (!boundary.ok()) {
    co_return ErrorReply{400, "BadRequest", std::string(boundary.status().message())};
  }
  const auto max_ahead = static_cast<std::size_t>(ReadAheadLimit(context_));
  MultipartFieldFinder finder(*boundary, "model");
  for (;;) {
    absl::StatusOr<std::optional<MultipartFieldFinder::Found>> found = finder.Scan(upload.prefix());
    if (!found.ok()) {
      co_return ErrorReply{400, "BadRequest",
                           absl::StrCat(found.status().message(),
                                        ": uploads to /openai/v1 name the route in the form's "
                                        "\"model\" field")};
    }
    if (found->has_value()) {
      const std::string model(upload.prefix().substr((*found)->offset, (*found)->size));
      if (std::optional<ErrorReply> refusal = FindRoute(model, admission, proxy_request.route)) {
        co_return refusal;
      }
      upload.ReplaceInPrefix((*found)->offset, (*found)->size);
      co_return std::nullopt;
    }
    if (upload.done()) {
      co_return ErrorReply{400, "BadRequest", "The upload ended before its \"model\" field."};
    }
    if (co_await upload.ReadAhead(max_ahead)) {
      // The client left, or its body was refused (UploadBody::client_error).
      co_return upload.client_error();
    }
  }
}

asio::awaitable<bool> RequestHandler::HandleUpload(beast::tcp_stream& client,
                                                   beast::flat_buffer& buffer,
                                                   RequestParser<http::string_body>& head_parser,
                                                   const HeadAdmission& admission) {
  // The head, copied for the proxy (the target, the headers it forwards), while the body goes
  // through a parser of its own.
  const Request<http::string_body> request(head_parser.get().base());
  const SnapshotTenant* tenant = admission.tenant;
  AccessRecord record;
  record.method = View(request.method_string());
  record.tenant = tenant != nullptr ? absl::string_view(tenant->name) : "";
  record.priority = tenant != nullptr ? tenant->priority : v1::PRIORITY_UNSPECIFIED;
  record.metered = true;
  ProxyRequest proxy_request;
  proxy_request.client_request = &request;
  proxy_request.snapshot = admission.snapshot.get();
  proxy_request.priority = tenant != nullptr ? tenant->priority : v1::PRIORITY_STANDARD;
  proxy_request.client_keep_alive = request.keep_alive() && !context_.draining.load();
  std::optional<ErrorReply> refusal = RouteUpload(admission, proxy_request);
  const uint64_t announced = head_parser.content_length().value_or(0);
  if (!refusal.has_value() && announced > UploadLimit(proxy_request.route)) {
    refusal = TooLarge(announced, proxy_request.route, UploadLimit(proxy_request.route));
  }
  if (refusal.has_value()) {
    co_await Reply(client, *std::move(refusal), false, record, admission.start);
    co_return false;
  }
  const beast::error_code continue_ec =
      co_await AnswerExpectContinue(client, request, buffer, context_.proxy.client_write_timeout);
  if (continue_ec) {
    co_return false;
  }
  RequestParser<http::buffer_body> body_parser(std::move(head_parser));
  body_parser.body_limit(UploadLimit(proxy_request.route));
  UploadBody upload(client, buffer, body_parser, context_.client_idle_timeout);
  proxy_request.upload = &upload;
  // What is read ahead counts against --body-memory-limit like a buffered body, for as long as
  // the upload holds it.
  std::optional<BodyReservation> read_ahead;
  if (admission.path.operation->source == RouteSource::kFormModel) {
    read_ahead.emplace(context_, ReadAheadLimit(context_));
    if (!read_ahead->held(ReadAheadLimit(context_))) {
      refusal = BodyBudgetExhausted();
    } else {
      refusal = co_await ReadFormModel(request, admission, upload, proxy_request);
    }
    if (!refusal.has_value() && proxy_request.route != nullptr &&
        announced > UploadLimit(proxy_request.route)) {
      refusal = TooLarge(announced, proxy_request.route, UploadLimit(proxy_request.route));
    }
  }
  // Transcriptions and image edits count against the tenant's request rate; a file costs none.
  QuotaClaim quota;
  if (!refusal.has_value() && tenant != nullptr && proxy_request.creates.empty()) {
    refusal = ClaimQuota(request, *tenant, proxy_request, quota);
  }
  if (refusal.has_value()) {
    co_await Reply(client, *std::move(refusal), false, record, admission.start);
    co_return false;
  }
  if (upload.client_left()) {
    co_return false;
  }
  record.route = proxy_request.route->name;

  context_.requests_in_flight.fetch_add(1, std::memory_order_relaxed);
  ProxyOutcome outcome = co_await proxy_.Forward(client, proxy_request, pool_, random_);
  context_.requests_in_flight.fetch_sub(1, std::memory_order_relaxed);
  quota.Settle(outcome.status, !outcome.backend_id.empty(), outcome.usage, SteadyClock::now());
  if (upload.client_error().has_value()) {
    // The client's body was refused midway (too large, too slow, malformed): it is told why.
    co_await Reply(client, *upload.client_error(), false, record, admission.start);
    co_return false;
  }
  if (context_.pins != nullptr) {
    UpdatePins(*context_.pins, admission.path, View(request.method_string()), proxy_request,
               outcome, tenant, context_.pin_retention);
  }
  Record(outcome, admission.start, record);
  // A body left unread (the backend answered before taking it all) would be read as the next
  // request.
  co_return outcome.keep_alive&& upload.done();
}

}  // namespace spillway
