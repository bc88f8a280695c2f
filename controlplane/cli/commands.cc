// See commands.h. Local problems (an unreadable or invalid file) stop before any call; the
// server's refusals are printed verbatim because they name every offending entry.
#include "controlplane/cli/commands.h"

#include <iterator>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/topology_yaml.h"
#include "controlplane/cli/views.h"

namespace spillway::cli {
namespace {

int LocalError(const absl::Status& status, const Io& io) {
  io.err << "spillwayctl: " << status.message() << "\n";
  return kExitUsage;
}

// Prints `message` as JSON, or fails like any other local problem (it cannot really happen).
int PrintJson(const google::protobuf::Message& message, bool all_fields, const Io& io) {
  absl::StatusOr<std::string> json = RenderJson(message, all_fields);
  if (!json.ok()) {
    return LocalError(json.status(), io);
  }
  io.out << *json;
  return kExitOk;
}

int PrintTable(const Table& table, OutputFormat format, const Io& io) {
  io.out << (format == OutputFormat::kCsv ? RenderCsv(table) : RenderTable(table));
  return kExitOk;
}

absl::StatusOr<v1::Topology> LoadEntries(const std::string& path, const Io& io) {
  if (path != "-") {
    return LoadTopologyFile(path);
  }
  const std::string text(std::istreambuf_iterator<char>(io.in), {});
  return ParseTopologyYaml(text, "<stdin>");
}

int PrintChange(const absl::StatusOr<v1::ApplyResponse>& response, const Command& command,
                OutputFormat format, AdminClient& client, const Io& io) {
  if (!response.ok()) {
    return ReportRpcError(response.status(), client.options(), io.err);
  }
  if (format == OutputFormat::kJson) {
    return PrintJson(*response, /*all_fields=*/true, io);
  }
  io.out << RenderDiff(*response, command.dry_run);
  return kExitOk;
}

int RunApplyOrCreate(const Command& command, OutputFormat format, AdminClient& client,
                     const Io& io) {
  absl::StatusOr<v1::Topology> entries = LoadEntries(command.file, io);
  if (!entries.ok()) {
    return LocalError(entries.status(), io);
  }
  if (command.verb == Verb::kApply) {
    v1::ApplyRequest request;
    *request.mutable_topology() = *std::move(entries);
    request.set_dry_run(command.dry_run);
    return PrintChange(client.Apply(request), command, format, client, io);
  }
  v1::CreateRequest request;
  *request.mutable_entries() = *std::move(entries);
  request.set_dry_run(command.dry_run);
  return PrintChange(client.Create(request), command, format, client, io);
}

int RunGet(const Command& command, OutputFormat format, AdminClient& client, const Io& io) {
  v1::GetRequest request;
  request.set_kind(command.kind);
  request.set_name(command.name);
  absl::StatusOr<v1::GetResponse> response = client.Get(request);
  if (!response.ok()) {
    return ReportRpcError(response.status(), client.options(), io.err);
  }
  switch (format) {
    case OutputFormat::kJson:
      // The topology alone, spelled as in YAML, so it applies back as is (JSON is YAML); the
      // version has no place in it that JSON could hide from the loader.
      io.out << TopologyToJson(response->topology());
      return kExitOk;
    case OutputFormat::kYaml:
      // A comment keeps the output re-appliable as is.
      io.out << "# topology version " << response->version() << "\n"
             << TopologyToYaml(response->topology());
      return kExitOk;
    case OutputFormat::kCsv:
      return PrintTable(KindTable(response->topology(), command.kind), format, io);
    case OutputFormat::kTable:
      break;
  }
  if (CountOfKind(response->topology(), command.kind) == 0) {
    // Said on stderr, as kubectl does, so a pipeline reading stdout sees no rows.
    if (command.kind == v1::KIND_UNSPECIFIED) {
      io.err << "the topology is empty (version " << response->version() << ")\n";
    } else {
      io.err << "no " << KindPlural(command.kind) << " found\n";
    }
    return kExitOk;
  }
  if (command.kind == v1::KIND_UNSPECIFIED) {
    io.out << RenderTopologyTables(response->topology());
    return kExitOk;
  }
  return PrintTable(KindTable(response->topology(), command.kind), format, io);
}

int RunDelete(const Command& command, OutputFormat format, AdminClient& client, const Io& io) {
  v1::DeleteRequest request;
  request.set_kind(command.kind);
  request.set_name(command.name);
  request.set_dry_run(command.dry_run);
  return PrintChange(client.Delete(request), command, format, client, io);
}

int RunKeys(const Command& command, OutputFormat format, AdminClient& client, const Io& io) {
  absl::StatusOr<v1::CreateKeyResponse> response;
  if (command.verb == Verb::kKeysRevoke) {
    v1::RevokeKeyRequest request;
    request.set_tenant(command.tenant);
    request.set_key_name(command.key_name);
    return PrintChange(client.RevokeKey(request), command, format, client, io);
  }
  if (command.verb == Verb::kKeysCreate) {
    v1::CreateKeyRequest request;
    request.set_tenant(command.tenant);
    request.set_key_name(command.key_name);
    response = client.CreateKey(request);
  } else {
    v1::RotateKeyRequest request;
    request.set_tenant(command.tenant);
    request.set_key_name(command.key_name);
    request.set_new_key_name(command.new_key_name);
    response = client.RotateKey(request);
  }
  if (!response.ok()) {
    return ReportRpcError(response.status(), client.options(), io.err);
  }
  // stdout carries only the key, so `KEY=$(spillwayctl keys create ...)` captures just that.
  io.err << "created key '" << response->key_name() << "' for tenant '" << response->tenant()
         << "' (version " << response->version() << ")\n"
         << "warning: this key will not be shown again; only its SHA-256 is stored\n";
  if (format == OutputFormat::kJson) {
    return PrintJson(*response, /*all_fields=*/true, io);
  }
  io.out << response->api_key() << "\n";
  return kExitOk;
}

int RunAgents(OutputFormat format, AdminClient& client, const Io& io) {
  absl::StatusOr<v1::ListAgentsResponse> response = client.ListAgents({});
  if (!response.ok()) {
    return ReportRpcError(response.status(), client.options(), io.err);
  }
  if (format == OutputFormat::kJson) {
    return PrintJson(*response, /*all_fields=*/true, io);
  }
  if (format == OutputFormat::kTable) {
    if (response->agents_size() == 0) {
      io.err << "no agents (current version " << response->current_version() << ")\n";
      return kExitOk;
    }
    io.out << "current version " << response->current_version() << "\n";
  }
  return PrintTable(AgentsTable(*response, io.now), format, io);
}

int RunHealth(OutputFormat format, AdminClient& client, const Io& io) {
  absl::StatusOr<v1::HealthOverlay> response = client.FleetHealth({});
  if (!response.ok()) {
    return ReportRpcError(response.status(), client.options(), io.err);
  }
  if (format == OutputFormat::kJson) {
    return PrintJson(*response, /*all_fields=*/true, io);
  }
  if (format == OutputFormat::kTable && response->backends_size() == 0) {
    io.err << "no backend is reported unhealthy or throttled\n";
    return kExitOk;
  }
  return PrintTable(HealthTable(*response, io.now), format, io);
}

int RunUsage(const Command& command, OutputFormat format, AdminClient& client, const Io& io) {
  absl::StatusOr<v1::UsageQueryResponse> response = client.QueryUsage(command.usage);
  if (!response.ok()) {
    return ReportRpcError(response.status(), client.options(), io.err);
  }
  if (format == OutputFormat::kJson) {
    return PrintJson(*response, /*all_fields=*/true, io);
  }
  if (format == OutputFormat::kTable && response->rows_size() == 0) {
    io.err << "no usage recorded in that period\n";
    return kExitOk;
  }
  const std::vector<std::string> group_by(command.usage.group_by().begin(),
                                          command.usage.group_by().end());
  return PrintTable(UsageTable(*response, group_by), format, io);
}

}  // namespace

int RunCommand(const Command& command, OutputFormat format, AdminClient& client, const Io& io) {
  switch (command.verb) {
    case Verb::kApply:
    case Verb::kCreate:
      return RunApplyOrCreate(command, format, client, io);
    case Verb::kGet:
      return RunGet(command, format, client, io);
    case Verb::kDelete:
      return RunDelete(command, format, client, io);
    case Verb::kKeysCreate:
    case Verb::kKeysRotate:
    case Verb::kKeysRevoke:
      return RunKeys(command, format, client, io);
    case Verb::kAgents:
      return RunAgents(format, client, io);
    case Verb::kHealth:
      return RunHealth(format, client, io);
    case Verb::kUsage:
      return RunUsage(command, format, client, io);
    case Verb::kHelp:
      break;
  }
  io.out << kUsage << "\n";
  return kExitOk;
}

int ReportRpcError(const absl::Status& status, const ConnectionOptions& options,
                   std::ostream& err) {
  const std::string code = absl::StatusCodeToString(status.code());
  if (status.code() == absl::StatusCode::kUnavailable) {
    err << "spillwayctl: cannot reach the control plane at " << options.server << ": " << code
        << ": " << status.message() << "\n";
    return kExitUnreachable;
  }
  if (status.code() == absl::StatusCode::kDeadlineExceeded) {
    err << "spillwayctl: no answer from the control plane at " << options.server << " within "
        << absl::FormatDuration(options.timeout) << ": " << code << ": " << status.message()
        << "\n";
    return kExitUnreachable;
  }
  err << "spillwayctl: " << code << ": " << status.message() << "\n";
  return kExitServerError;
}

}  // namespace spillway::cli
