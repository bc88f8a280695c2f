// See commands.h. Local problems (an unreadable or invalid file) stop before any call; the
// server's refusals are printed verbatim because they name every offending entry.
#include "controlplane/cli/commands.h"

#include <iterator>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/topology_yaml.h"
#include "controlplane/cli/capacity_report.h"
#include "controlplane/cli/capacity_views.h"
#include "controlplane/cli/drill_views.h"
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
  const bool widened = response->since_unix_ms() != command.usage.since_unix_ms() ||
                       response->until_unix_ms() != command.usage.until_unix_ms();
  if (format == OutputFormat::kTable && response->granularity() != "minute" &&
      !response->granularity().empty() && widened) {
    // Minute rows past their retention are gone: the totals are whole hours or days. (Bounds
    // on whole days, answered from days, are exact: no note.)
    auto at = [](int64_t unix_ms) {
      return absl::FormatTime("%Y-%m-%dT%H:%MZ", absl::FromUnixMillis(unix_ms),
                              absl::UTCTimeZone());
    };
    io.err << "note: from " << (response->granularity() == "day" ? "daily" : "hourly")
           << " totals, " << at(response->since_unix_ms()) << " to "
           << (response->until_unix_ms() == 0 ? "now" : at(response->until_unix_ms()))
           << " (older minutes are past their retention)\n";
  }
  const std::vector<std::string> group_by(command.usage.group_by().begin(),
                                          command.usage.group_by().end());
  return PrintTable(UsageTable(*response, group_by), format, io);
}

int RunDrain(const Command& command, OutputFormat format, AdminClient& client, const Io& io) {
  if (command.verb == Verb::kDrain) {
    return PrintChange(client.Drain(command.drain), command, format, client, io);
  }
  v1::UndrainRequest request;
  request.set_scope(command.drain.scope());
  request.set_name(command.drain.name());
  request.set_dry_run(command.dry_run);
  return PrintChange(client.Undrain(request), command, format, client, io);
}

// Starts the drill, then follows it until the control plane stored its report. The drill's
// clock runs on the control plane: interrupting this command does not stop the drill.
int RunDrill(const Command& command, OutputFormat format, AdminClient& client, const Io& io) {
  absl::StatusOr<v1::Drill> drill = client.StartDrill(command.drill);
  if (!drill.ok()) {
    return ReportRpcError(drill.status(), client.options(), io.err);
  }
  if (drill->state() == v1::Drill::STATE_DRAINED) {
    io.err << "drill " << drill->id() << ": region " << drill->region() << " drained (version "
           << drill->drain_version() << "); restored in " << drill->duration_s()
           << " s by the control plane, report 3 s later\n";
    const absl::Time deadline =
        absl::Now() + absl::Seconds(drill->duration_s()) + absl::Seconds(120);
    v1::GetDrillRequest get;
    get.set_id(drill->id());
    while (drill->state() != v1::Drill::STATE_DONE && drill->state() != v1::Drill::STATE_ABORTED) {
      if (absl::Now() > deadline) {
        io.err << "spillwayctl: drill " << drill->id()
               << " has no report yet; see `spillwayctl drills`\n";
        return kExitServerError;
      }
      absl::SleepFor(absl::Milliseconds(500));
      absl::StatusOr<v1::Drill> polled = client.GetDrill(get);
      if (polled.ok()) {
        drill = std::move(polled);
      } else if (polled.status().code() != absl::StatusCode::kUnavailable) {
        return ReportRpcError(polled.status(), client.options(), io.err);
      }  // a control plane restarting mid-drill picks the drill up again: keep asking
    }
  }
  if (format == OutputFormat::kJson) {
    return PrintJson(*drill, /*all_fields=*/true, io);
  }
  if (drill->state() == v1::Drill::STATE_PLANNED) {
    io.out << "drill of region " << drill->region() << " (dry run, nothing changed): where new "
           << "requests go before and during it\n"
           << RenderTable(DrillPlanTable(*drill));
    return kExitOk;
  }
  io.out << RenderDrillReport(*drill);
  return drill->state() == v1::Drill::STATE_DONE ? kExitOk : kExitServerError;
}

int RunDrills(OutputFormat format, AdminClient& client, const Io& io) {
  absl::StatusOr<v1::ListDrillsResponse> response = client.ListDrills({});
  if (!response.ok()) {
    return ReportRpcError(response.status(), client.options(), io.err);
  }
  if (format == OutputFormat::kJson) {
    return PrintJson(*response, /*all_fields=*/true, io);
  }
  if (format == OutputFormat::kTable && response->drills_size() == 0) {
    io.err << "no drill has run\n";
    return kExitOk;
  }
  return PrintTable(DrillsTable(*response), format, io);
}

// The rates file is read before any call, so a bad one is a local error (exit 2).
int RunCapacity(const Command& command, OutputFormat format, AdminClient& client, const Io& io) {
  absl::StatusOr<std::vector<PtuRates>> rates = LoadRates(command.rates_file);
  if (!rates.ok()) {
    return LocalError(rates.status(), io);
  }
  absl::StatusOr<v1::GetResponse> topology = client.Get(v1::GetRequest());
  if (!topology.ok()) {
    return ReportRpcError(topology.status(), client.options(), io.err);
  }
  absl::StatusOr<v1::UsageQueryResponse> usage =
      client.QueryUsage(CapacityUsageQuery(command.capacity));
  if (!usage.ok()) {
    return ReportRpcError(usage.status(), client.options(), io.err);
  }
  absl::StatusOr<v1::CapacityReport> report =
      BuildCapacityReport(*usage, topology->topology(), *rates, command.capacity);
  if (!report.ok()) {
    io.err << "spillwayctl: " << report.status().message() << "\n";
    return kExitServerError;
  }
  if (format == OutputFormat::kJson) {
    return PrintJson(*report, /*all_fields=*/true, io);
  }
  PrintTable(CapacityTable(*report), format, io);
  if (format == OutputFormat::kTable) {
    io.out << "\n" << CapacityExplanations(*report);
  } else {
    for (const std::string& note : report->notes()) {
      io.err << "note: " << note << "\n";
    }
  }
  return kExitOk;
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
    case Verb::kDrain:
    case Verb::kUndrain:
      return RunDrain(command, format, client, io);
    case Verb::kDrill:
      return RunDrill(command, format, client, io);
    case Verb::kDrills:
      return RunDrills(format, client, io);
    case Verb::kCapacity:
      return RunCapacity(command, format, client, io);
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
