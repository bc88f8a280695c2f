// spillway-mock-aoai: a stand-in for Azure OpenAI's data plane (deployments with TPM/RPM or PTU
// limits, streaming, faults on demand) that the gateway's integration tests run against.
#include <sys/resource.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/reflection.h"
#include "absl/flags/usage.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "common/command_line.h"
#include "tests/mock_aoai/config.h"
#include "tests/mock_aoai/faults.h"
#include "tests/mock_aoai/mock_server.h"

ABSL_FLAG(std::string, listen, "127.0.0.1:0",
          "host:port to serve on; port 0 binds a free port. Once bound, one line "
          "'spillway-mock-aoai listening on <host>:<port>' goes to stdout");
ABSL_FLAG(int, threads, 1, "I/O threads, each with its own event loop and SO_REUSEPORT acceptor");
ABSL_FLAG(std::string, region, "eastus2", "value of the x-ms-region response header");
ABSL_FLAG(std::string, api_keys, "",
          "comma-separated keys accepted in the api-key header; with --bearer-tokens also empty, "
          "no authentication is required");
ABSL_FLAG(std::string, bearer_tokens, "",
          "comma-separated tokens accepted as 'Authorization: Bearer <token>'");
ABSL_FLAG(std::string, deployments, "gpt-4o",
          "comma-separated deployments NAME[:key=value]... with keys model (default NAME), tpm "
          "(tokens per minute, default 1000000), rpm (default 6 per 1000 tpm), ptu (provisioned: "
          "limited by utilization instead of tpm; rpm enforced only when given). "
          "E.g. 'gpt4o:model=gpt-4o:tpm=30000,ptu1:ptu=50'");
ABSL_FLAG(double, tokens_per_ptu_minute, 2500,
          "tokens per minute one PTU serves: what 100% utilization means");
ABSL_FLAG(double, window_seconds, 10,
          "evaluation window of the limits: a bucket holds limit*window/60 and refills limit/60 "
          "per second; PTU utilization is measured over the last window");
ABSL_FLAG(int64_t, ttft_ms, 0, "time to first token: delay before the first byte of an answer");
ABSL_FLAG(double, ms_per_token, 0, "delay per output token after the first");
ABSL_FLAG(int64_t, completion_tokens, 16,
          "output tokens per choice, capped by max_tokens / max_completion_tokens");
ABSL_FLAG(std::string, tls_cert, "", "PEM certificate chain: serve HTTPS (needs --tls-key)");
ABSL_FLAG(std::string, tls_key, "", "PEM private key for --tls-cert");
ABSL_FLAG(uint64_t, body_limit, 16 * 1024 * 1024,
          "largest request body accepted, bytes (413 above)");
ABSL_FLAG(int64_t, idle_timeout_ms, 60000,
          "keep-alive idle timeout (and per-read deadline); HTTP/2: how long a connection may "
          "stay without an open stream");
ABSL_FLAG(bool, http2, true,
          "speak HTTP/2 (h2c by prior knowledge, h2 by ALPN); false: HTTP/1.1 only");
ABSL_FLAG(uint32_t, h2_max_concurrent_streams, 1000,
          "SETTINGS_MAX_CONCURRENT_STREAMS advertised on HTTP/2 connections");
ABSL_FLAG(std::string, entra_clients, "",
          "comma-separated service principals TENANT:CLIENT_ID:SECRET the client-credentials "
          "endpoint accepts (TENANT '*': any)");
ABSL_FLAG(std::string, managed_identity_client_ids, "",
          "comma-separated client ids of user-assigned managed identities the token endpoints "
          "know; empty: any client_id is accepted");
ABSL_FLAG(std::string, identity_header, "",
          "X-IDENTITY-HEADER value GET /msi/token requires (App Service / Container Apps "
          "managed identity); empty: that endpoint answers 404");
ABSL_FLAG(int64_t, token_lifetime_s, 3600, "lifetime of the Entra ID tokens issued, seconds");
ABSL_FLAG(int64_t, token_delay_ms, 0,
          "delay before every token endpoint answer (to hold a token fetch in flight)");
ABSL_FLAG(int64_t, background_ms, 200,
          "Responses API: how long a background response stays queued/in progress beyond its "
          "tokens' latency (--ttft-ms + --ms-per-token each) before it is completed");
ABSL_FLAG(uint64_t, responses_max_stored, 100000,
          "Responses API: stored responses kept per mock (also at most 256 MiB of them); the "
          "oldest are evicted first");
ABSL_FLAG(uint64_t, conversations_max_stored, 100000,
          "Conversations API: conversations kept per mock (also at most 256 MiB of them and "
          "their items); the oldest are evicted first");
ABSL_FLAG(uint64_t, conversations_max_items, 10000,
          "Conversations API: items kept per conversation; past it a conversation's oldest "
          "items are dropped");
ABSL_FLAG(uint64_t, upload_limit, uint64_t{512} << 20,
          "largest multipart/form-data body accepted on POST /files and the audio and image "
          "uploads, bytes (413 above); streamed, never held whole. Other bodies: --body-limit");
ABSL_FLAG(uint64_t, files_max_stored, 10000,
          "Files API: files kept per mock (their contents at most 256 MiB); the oldest are "
          "evicted first");
ABSL_FLAG(uint64_t, files_keep_bytes, 1 << 20,
          "Files API: a file's content is kept (for GET .../content) when it is at most this "
          "big; larger files keep only their size, SHA-256 and line count");
ABSL_FLAG(uint64_t, batches_max_stored, 10000,
          "Batch API: batches kept per mock; the oldest are evicted first");
ABSL_FLAG(uint64_t, vector_stores_max_stored, 10000,
          "Vector stores API: vector stores kept per mock; the oldest are evicted first");
ABSL_FLAG(int64_t, batch_ms, 200,
          "Batch API: how long a batch stays in_progress before it is completed");
ABSL_FLAG(uint64_t, assistants_max_stored, 100000,
          "Assistants API: assistants kept per mock (also at most 256 MiB of them); the oldest "
          "are evicted first");
ABSL_FLAG(uint64_t, threads_max_stored, 100000,
          "Assistants API: threads kept per mock (also at most 256 MiB of them and their "
          "messages); the oldest are evicted first");
ABSL_FLAG(uint64_t, threads_max_messages, 10000,
          "Assistants API: messages (and runs) kept per thread; past it a thread's oldest are "
          "dropped");
ABSL_FLAG(std::string, fault, "",
          "faults active from start-up, in the grammar described above (e.g. "
          "'status=503,count=5')");

namespace spillway::mock {
namespace {

constexpr char kUsage[] = R"(a stand-in for Azure OpenAI's data plane.

Speaks HTTP/1.1 and HTTP/2 on the same port: h2c by prior knowledge (a connection that
starts with the HTTP/2 preface) and, with --tls-cert, h2 by ALPN (h2 preferred when the
client offers it, else http/1.1). Every HTTP/2 stream is answered like an HTTP/1.1 request
(faults included: reset and cut reset the stream with INTERNAL_ERROR, not the connection);
/mock/stats counts connections by protocol under "connections": {"http1": N, "h2": N}.

Serves POST /openai/deployments/{d}/chat/completions|completions|embeddings?api-version=...
and POST /openai/v1/chat/completions|completions|embeddings (deployment = body's "model";
a dated api-version there is 400 "API version not supported"), with TPM/RPM token buckets
or PTU utilization per deployment, Azure-shaped errors and headers, streaming (SSE), and a
control endpoint on the same port (no auth):
  GET    /mock/stats    counts by status, usage reported, log of the last 10000 requests
                        (each with method, path, and the Responses and Conversations APIs'
                        response_id, previous_response_id and conversation_id),
                        "responses": {"stored": N, "evicted": N}, "conversations":
                        {"stored": N, "evicted": N, "items_evicted": N}
  POST   /mock/faults   add a fault (JSON below);  GET lists them;  DELETE clears them
  POST   /mock/reset    clear stats, buckets, faults, the prompt cache, stored responses and
                        conversations

The stateful Responses API, per mock (one mock is one Azure resource: ids created on one
are unknown to another), on /openai/v1/responses and on the preview
/openai/responses?api-version=2025-04-01-preview (deployment = body's "model" on both):
  POST   .../responses                   model, input (string or items), instructions,
         previous_response_id, store (default true), stream, background,
         max_output_tokens (plays max_tokens' role: "incomplete" when it cuts the answer)
  GET    .../responses/{id}[?stream=true[&starting_after=N]]   the stored response, or its
         events after sequence number N replayed as SSE
  DELETE .../responses/{id}              {"id":...,"object":"response","deleted":true}
  POST   .../responses/{id}/cancel       a background response not yet done: "cancelled";
         any other: 400 "Only responses created with background=true can be cancelled"
  GET    .../responses/{id}/input_items[?limit=20&order=desc&after=ID]
  An unknown previous_response_id is 400 code previous_response_not_found; an unknown id
  404 "Response with id '...' not found.". input_tokens include the previous turns' input
  and output. store:false keeps nothing (but background responses are always kept, up to
  --responses-max-stored). A background response answers "queued" at once, and completes
  --background-ms after its tokens would have (GET polls see queued, in_progress, then
  completed). Streams send response.created ... response.output_text.delta (one per
  token) ... response.completed, each with a sequence_number, and no [DONE]. Creates are
  charged, limited and faulted like chat completions; the other calls are faulted (by the
  stored response's deployment) but not charged.

The Conversations API, per mock like the responses, on /openai/v1/conversations only:
  POST   .../conversations                 {"items": [...] (up to 20), "metadata": {...}},
         both optional: {"id":"conv_<48 hex>","object":"conversation","created_at":...,
         "metadata":{...}}
  GET    .../conversations/{id}            the conversation;  POST: replace its metadata
  DELETE .../conversations/{id}            {"id":...,"object":"conversation.deleted",
         "deleted":true}
  GET    .../conversations/{id}/items[?limit=20&order=desc&after=ID]   its items
  POST   .../conversations/{id}/items      {"items": [...]}: the list of the items added
  GET    .../conversations/{id}/items/{item_id}   the item;  DELETE: remove it (answers the
         conversation)
  An unknown conversation is 404 "Conversation with id '...' not found." (param and code
  null), an unknown item 404 "Item with id '...' not found.". A response created with
  "conversation": "conv_..." (or {"id": ...}) on either Responses surface counts the
  conversation's items into its input_tokens (messages by their text, a response's output
  by its output tokens), adds its input items and its output message to the conversation
  when it is created, and shows "conversation": {"id": ...}; a conversation this mock does
  not hold is that 404, and "conversation" with previous_response_id is 400
  mutually_exclusive_parameters. Conversations belong to no deployment: they take auth and
  the faults given no deployment, never a limiter, and their answers carry no
  x-ratelimit-*. Bounded by --conversations-max-stored (the oldest evicted first),
  --conversations-max-items (a conversation's oldest items dropped first) and 256 MiB.

Files, batches and vector stores, per mock like the responses (an id made on one mock is
404 on another), on /openai/v1/... and /openai/...?api-version=...:
  POST   .../files                multipart/form-data: purpose (assistants, batch, fine-tune,
         vision, user_data, evals) and file: {"id":"file-<32 hex>","object":"file","bytes":N,
         "created_at":...,"filename":...,"purpose":...,"status":"processed"}
  GET    .../files[?purpose=P&limit=20&order=desc&after=ID]   {"object":"list","data":[...]}
  GET    .../files/{id};  DELETE: {"id":...,"object":"file","deleted":true}
  GET    .../files/{id}/content   the bytes, for files of at most --files-keep-bytes (larger
         ones: 400)
  POST   .../batches              {"input_file_id","endpoint","completion_window":"24h"}: the
         file must be this mock's (else 404) with purpose batch; request_counts.total is its
         number of non-blank lines; "validating", then in_progress, then completed after
         --batch-ms;  GET .../batches[/{id}];  POST .../batches/{id}/cancel
  POST   .../vector_stores        {"name","file_ids":[...],"metadata"} (each file this mock's,
         else 404);  GET (list), GET/POST (modify)/DELETE .../vector_stores/{id};
         POST/GET .../{id}/files, GET/DELETE .../{id}/files/{file_id};
         POST .../{id}/file_batches {"file_ids"}, GET .../{id}/file_batches/{batch_id}
  POST   /openai/deployments/{d}/audio/transcriptions|audio/translations|images/edits
         ?api-version=... and /openai/v1/audio/transcriptions|audio/translations|images/edits
         (deployment = the form's "model"): {"text":"transcribed N bytes"} (gpt-4o models add
         usage), {"created":...,"data":[{"b64_json":<1x1 PNG>}]}; limited like chat (one
         request, one token), unknown deployment 404 DeploymentNotFound.
  Multipart bodies (POST /files and the uploads above) are streamed up to --upload-limit:
  hashed (SHA-256) and counted as they arrive, kept only up to --files-keep-bytes. Each file
  part accepted goes to /mock/stats "uploads" (the last 100: path, field, filename, bytes,
  sha256, deployment) and "uploads_total"; "files", "batches" and "vector_stores" count what
  is stored ({"stored","evicted"}, files also "bytes").

The Assistants API (v2), per mock like the responses, on the dated surface Azure documents
(/openai/assistants?api-version=2024-05-01-preview, /openai/threads...) and on /openai/v1:
  POST/GET .../assistants   create ({"model": a deployment of this mock, "name",
         "instructions", "tools", "tool_resources", "metadata", ...}) / list
         (?limit=20&order=desc&after=ID&before=ID);  GET/POST/DELETE .../assistants/{id}
  POST .../threads ({"messages","metadata","tool_resources"});  GET/POST/DELETE
         .../threads/{id};  POST/GET .../threads/{id}/messages (?run_id=);
         GET/POST/DELETE .../threads/{id}/messages/{msg_id}
  POST .../threads/{id}/runs {"assistant_id", "stream"?, "model"?, "instructions"?,
         "additional_messages"?, "max_completion_tokens"?, ...};  POST .../threads/runs
         (with "thread");  GET .../runs, .../runs/{run_id}, .../runs/{run_id}/steps[/{id}];
         POST .../runs/{run_id} (metadata), .../runs/{run_id}/cancel
  A run completes at once ("completed", or "incomplete" when max_completion_tokens cuts it):
  its usage counts the thread's messages and the instructions as prompt tokens, and the
  reply "Message N of thread_...." joins the thread. It is charged, limited, faulted and
  metered (stats usage) on its model's deployment like a chat completion; streamed, it sends
  thread.run.created ... thread.message.delta (one per token) ... thread.run.completed (with
  usage), then "event: done" / "data: [DONE]". An unknown assistant, thread, message, run or
  step is 404 "No <kind> found with id '...'."; a model that is no deployment here 400
  model_not_found; cancel 400 "Cannot cancel run with status 'completed'.". The rest belongs to
  no deployment (auth and unaimed faults only). /mock/stats: "assistants": {"stored": N,
  "evicted": N}, "threads": {"stored": N, "evicted": N, "messages_evicted": N}. Bounded by
  --assistants-max-stored, --threads-max-stored, --threads-max-messages and 256 MiB.

Microsoft Entra ID token endpoints, on the same port (point the agent's --imds-endpoint and
--entra-authority here, or IDENTITY_ENDPOINT at /msi/token):
  GET  /metadata/identity/oauth2/token?api-version=2018-02-01&resource=R[&client_id=C]
       Azure IMDS managed identity: needs "Metadata: true"; answers access_token,
       expires_in, expires_on, ext_expires_in, not_before, resource, token_type (numbers as
       strings, as IMDS does); an unknown user-assigned client_id is "Identity not found"
  GET  /msi/token?api-version=2019-08-01&resource=R[&client_id=C]
       App Service / Container Apps: needs X-IDENTITY-HEADER (--identity-header); answers
       expires_on but no expires_in
  POST /{tenant}/oauth2/v2.0/token   (form: grant_type=client_credentials, client_id,
       client_secret, scope=https://cognitiveservices.azure.com/.default)
       checks them against --entra-clients: AADSTS900144 (missing parameter), 70003 (grant),
       1002012/500011 (scope), 90002 (tenant), 700016 (client), 7000215 (wrong secret, 401)
  Only the https://cognitiveservices.azure.com resource is issued tokens. Tokens are signed
  by this process and expire after --token-lifetime-s; the data plane accepts a valid one as
  "Authorization: Bearer <token>" next to --api-keys, and answers an expired or forged one
  with Azure's 401 "Access token is missing, invalid, audience is incorrect ... or have
  expired" (even when no key is required). /mock/stats counts them under "entra":
  tokens_issued per grant, token_requests_refused, bearer_rejected {expired, invalid}.

Faults (POST /mock/faults body, or --fault):
  {"mode": "status"|"reset"|"hang"|"slow_drip"|"cut"|"goaway"|"close",
   "status": 503, "count": N,
   "duration_ms": D, "deployment": "name", "retry_after_ms": 1000, "drip_ms": 100,
   "cut_after_chunks": 1, "code": "...", "message": "..."}
  mode defaults to "status" when status is given. A fault applies to the next `count`
  requests (default: unlimited) to `deployment` (default: any) and/or for `duration_ms`
  (default: until cleared); the oldest matching fault wins. Faults apply to requests that
  passed auth and named an existing deployment, before rate limiting (faulted requests are
  not charged).
    status     answer `status` with {"error":{"code":"<status>","message":...}}; a 429
               also carries retry-after(-ms) from retry_after_ms
    reset      close the connection with a TCP RST, unanswered (HTTP/2: RST_STREAM
               INTERNAL_ERROR on that stream only)
    hang       read the request, never answer, keep the connection (HTTP/2: the
               stream) open until the client gives up
    slow_drip  answer normally with drip_ms between SSE events (non-streamed: between
               64-byte pieces of the body)
    cut        send the headers and cut_after_chunks SSE events, then close (non-streamed:
               half of the body); HTTP/2 resets the stream instead of closing
    goaway     HTTP/2: GOAWAY(NO_ERROR) whose last-stream-id is the highest stream already
               taken; this stream and later ones are refused unprocessed, earlier ones
               finish, then the connection closes. HTTP/1.1: close unanswered
    close      HTTP/1.1: answer normally (keep-alive), then close the connection, as a
               backend's keep-alive timer would; HTTP/2 ignores it
  --fault takes the same keys as key=value pairs, comma-separated, several faults
  separated by ';': --fault='status=503,count=5;mode=hang,deployment=d2'

Model of the service:
  charge    prompt tokens (about 4 characters each, at least 1 per message) + max_tokens
            (or max_completion_tokens, else --completion-tokens) x max(n, best_of), taken
            up front; the unused part is refunded once the answer has been written
  limits    per deployment, buckets of limit x window/60 refilled at limit/60 per second;
            x-ratelimit-limit-* are per minute, x-ratelimit-remaining-* what the bucket
            still holds; 429s carry retry-after-ms (exact) and retry-after (seconds, up)
  PTU       utilization = tokens charged in the last window / (ptu x tokens-per-ptu-minute
            x window/60), in azure-openai-deployment-utilization; 429 above 100%
  caching   a prompt of 1024+ tokens seen before on the deployment reports its tokens,
            rounded down to 128, as usage.prompt_tokens_details.cached_tokens
  headers   x-request-id, apim-request-id and x-ms-region on every answer, x-ratelimit-*
            once the deployment is known (not on 401s or unknown deployments)
  latency   the first byte after --ttft-ms, each later token --ms-per-token after the one
            before; a non-streamed answer is sent when its last token is ready
  stats     usage counts what bodies reported (streams: only with include_usage)

Usage: spillway-mock-aoai [--flag=value]...   (flag names take '-' or '_')
)";

[[noreturn]] void Die(const std::string& reason) { DieWithReason("spillway-mock-aoai", reason); }

MockConfig ConfigFromFlags() {
  MockConfig config;
  auto listen = ParseHostPort(absl::GetFlag(FLAGS_listen));
  if (!listen.ok()) Die(absl::StrCat("--listen: ", listen.status().message()));
  config.listen = *listen;
  config.threads = absl::GetFlag(FLAGS_threads);
  if (config.threads < 1 || config.threads > 256) Die("--threads must be 1-256");
  config.region = absl::GetFlag(FLAGS_region);
  config.api_keys = SplitList(absl::GetFlag(FLAGS_api_keys));
  config.bearer_tokens = SplitList(absl::GetFlag(FLAGS_bearer_tokens));
  auto deployments = ParseDeploymentList(absl::GetFlag(FLAGS_deployments));
  if (!deployments.ok()) Die(absl::StrCat("--deployments: ", deployments.status().message()));
  config.deployments = *std::move(deployments);
  config.tokens_per_ptu_minute = absl::GetFlag(FLAGS_tokens_per_ptu_minute);
  if (!(config.tokens_per_ptu_minute > 0)) Die("--tokens-per-ptu-minute must be positive");
  const double window = absl::GetFlag(FLAGS_window_seconds);
  if (!(window > 0 && window <= 3600)) Die("--window-seconds must be in (0, 3600]");
  config.window = absl::Seconds(window);
  if (absl::GetFlag(FLAGS_ttft_ms) < 0) Die("--ttft-ms must not be negative");
  config.ttft = absl::Milliseconds(absl::GetFlag(FLAGS_ttft_ms));
  if (!(absl::GetFlag(FLAGS_ms_per_token) >= 0)) Die("--ms-per-token must not be negative");
  config.per_token = absl::Milliseconds(absl::GetFlag(FLAGS_ms_per_token));
  config.completion_tokens = absl::GetFlag(FLAGS_completion_tokens);
  if (config.completion_tokens < 1) Die("--completion-tokens must be at least 1");
  config.tls_cert = absl::GetFlag(FLAGS_tls_cert);
  config.tls_key = absl::GetFlag(FLAGS_tls_key);
  if (config.tls_cert.empty() != config.tls_key.empty()) {
    Die("--tls-cert and --tls-key go together");
  }
  config.body_limit = absl::GetFlag(FLAGS_body_limit);
  if (config.body_limit == 0) Die("--body-limit must be positive");
  if (absl::GetFlag(FLAGS_idle_timeout_ms) < 1) Die("--idle-timeout-ms must be positive");
  config.idle_timeout = absl::Milliseconds(absl::GetFlag(FLAGS_idle_timeout_ms));
  config.http2 = absl::GetFlag(FLAGS_http2);
  config.h2_max_concurrent_streams = absl::GetFlag(FLAGS_h2_max_concurrent_streams);
  if (config.h2_max_concurrent_streams < 1) Die("--h2-max-concurrent-streams must be at least 1");
  config.upload_limit = absl::GetFlag(FLAGS_upload_limit);
  if (config.upload_limit == 0) Die("--upload-limit must be positive");
  config.files_capacity = absl::GetFlag(FLAGS_files_max_stored);
  if (config.files_capacity < 1) Die("--files-max-stored must be at least 1");
  config.files_keep_bytes = absl::GetFlag(FLAGS_files_keep_bytes);
  config.batches_capacity = absl::GetFlag(FLAGS_batches_max_stored);
  if (config.batches_capacity < 1) Die("--batches-max-stored must be at least 1");
  config.vector_stores_capacity = absl::GetFlag(FLAGS_vector_stores_max_stored);
  if (config.vector_stores_capacity < 1) Die("--vector-stores-max-stored must be at least 1");
  if (absl::GetFlag(FLAGS_batch_ms) < 0) Die("--batch-ms must not be negative");
  config.batch_delay = absl::Milliseconds(absl::GetFlag(FLAGS_batch_ms));
  auto faults = ParseFaultFlag(absl::GetFlag(FLAGS_fault));
  if (!faults.ok()) Die(absl::StrCat("--fault: ", faults.status().message()));
  config.initial_faults = *std::move(faults);
  auto clients = ParseEntraClientList(absl::GetFlag(FLAGS_entra_clients));
  if (!clients.ok()) Die(absl::StrCat("--entra-clients: ", clients.status().message()));
  config.entra.clients = *std::move(clients);
  config.entra.managed_identity_client_ids =
      SplitList(absl::GetFlag(FLAGS_managed_identity_client_ids));
  config.entra.identity_header = absl::GetFlag(FLAGS_identity_header);
  if (absl::GetFlag(FLAGS_token_lifetime_s) < 1) Die("--token-lifetime-s must be at least 1");
  config.entra.token_lifetime = absl::Seconds(absl::GetFlag(FLAGS_token_lifetime_s));
  if (absl::GetFlag(FLAGS_token_delay_ms) < 0) Die("--token-delay-ms must not be negative");
  config.entra.answer_delay = absl::Milliseconds(absl::GetFlag(FLAGS_token_delay_ms));
  if (absl::GetFlag(FLAGS_background_ms) < 0) Die("--background-ms must not be negative");
  config.background_delay = absl::Milliseconds(absl::GetFlag(FLAGS_background_ms));
  config.responses_capacity = absl::GetFlag(FLAGS_responses_max_stored);
  if (config.responses_capacity < 1) Die("--responses-max-stored must be at least 1");
  config.conversations_capacity = absl::GetFlag(FLAGS_conversations_max_stored);
  if (config.conversations_capacity < 1) Die("--conversations-max-stored must be at least 1");
  config.conversation_max_items = absl::GetFlag(FLAGS_conversations_max_items);
  if (config.conversation_max_items < 1) Die("--conversations-max-items must be at least 1");
  config.assistants_capacity = absl::GetFlag(FLAGS_assistants_max_stored);
  if (config.assistants_capacity < 1) Die("--assistants-max-stored must be at least 1");
  config.threads_capacity = absl::GetFlag(FLAGS_threads_max_stored);
  if (config.threads_capacity < 1) Die("--threads-max-stored must be at least 1");
  config.thread_max_messages = absl::GetFlag(FLAGS_threads_max_messages);
  if (config.thread_max_messages < 1) Die("--threads-max-messages must be at least 1");
  return config;
}

// Room for many thousands of concurrent slow streams.
int Main(int argc, char** argv) {
  ParseCommandLine(argc, argv, {"spillway-mock-aoai", kUsage, "mock_aoai/main.cc"});
  MockConfig config = ConfigFromFlags();

  absl::StatusOr<std::unique_ptr<MockServer>> server = MockServer::Create(config);
  if (!server.ok()) {
    Die(std::string(server.status().message()));
  }
  (*server)->Run([&] {
    std::printf("spillway-mock-aoai listening on %s:%d\n", config.listen.host.c_str(),
                (*server)->port());
    std::fflush(stdout);
  });
  return 0;
}

}  // namespace
}  // namespace spillway::mock

int main(int argc, char** argv) { return spillway::mock::Main(argc, argv); }
