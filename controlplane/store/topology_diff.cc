// Entry-level operations on a Topology. The nine repeated fields are reached through two
// small visitors so that every operation handles every kind the same way.
#include "controlplane/store/topology_diff.h"

#include <map>
#include <optional>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/drain_names.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/io/zero_copy_stream_impl_lite.h"

namespace spillway {
namespace {

std::string QualifiedName(const v1::Deployment& deployment) {
  return absl::StrCat(deployment.instance(), "/", deployment.name());
}

std::string QualifiedName(const v1::Route& route) {
  return absl::StrCat(route.stamp(), "/", route.name());
}

std::string QualifiedName(const v1::Drain& drain) { return DrainId(drain); }

template <typename T>
std::string QualifiedName(const T& entry) {
  return entry.name();
}

// Calls f(kind, field) for each repeated field of the topology, in Kind order.
template <typename F>
void ForEachKind(const v1::Topology& topology, F&& f) {
  f(v1::KIND_STAMP, topology.stamps());
  f(v1::KIND_REGION, topology.regions());
  f(v1::KIND_SUBSCRIPTION, topology.subscriptions());
  f(v1::KIND_INSTANCE, topology.instances());
  f(v1::KIND_DEPLOYMENT, topology.deployments());
  f(v1::KIND_POOL, topology.pools());
  f(v1::KIND_ROUTE, topology.routes());
  f(v1::KIND_TENANT, topology.tenants());
  f(v1::KIND_DRAIN, topology.drains());
}

// f(mutable field of `kind`); false for an unknown kind.
template <typename F>
bool WithField(v1::Topology& topology, v1::Kind kind, F&& f) {
  switch (kind) {
    case v1::KIND_STAMP:
      return f(*topology.mutable_stamps());
    case v1::KIND_REGION:
      return f(*topology.mutable_regions());
    case v1::KIND_SUBSCRIPTION:
      return f(*topology.mutable_subscriptions());
    case v1::KIND_INSTANCE:
      return f(*topology.mutable_instances());
    case v1::KIND_DEPLOYMENT:
      return f(*topology.mutable_deployments());
    case v1::KIND_POOL:
      return f(*topology.mutable_pools());
    case v1::KIND_ROUTE:
      return f(*topology.mutable_routes());
    case v1::KIND_TENANT:
      return f(*topology.mutable_tenants());
    case v1::KIND_DRAIN:
      return f(*topology.mutable_drains());
    default:
      return false;
  }
}

// The index of the entry called `name` in `field`, if any.
template <typename T>
std::optional<int> IndexOf(const google::protobuf::RepeatedPtrField<T>& field,
                           absl::string_view name) {
  for (int i = 0; i < field.size(); ++i) {
    if (QualifiedName(field.Get(i)) == name) {
      return i;
    }
  }
  return std::nullopt;
}

v1::DiffEntry MakeDiffEntry(const EntryKey& key, v1::DiffEntry::Change change) {
  v1::DiffEntry entry;
  entry.set_kind(static_cast<v1::Kind>(key.first));
  entry.set_name(key.second);
  entry.set_change(change);
  return entry;
}

}  // namespace

absl::string_view KindName(v1::Kind kind) {
  switch (kind) {
    case v1::KIND_STAMP:
      return "stamp";
    case v1::KIND_REGION:
      return "region";
    case v1::KIND_SUBSCRIPTION:
      return "subscription";
    case v1::KIND_INSTANCE:
      return "instance";
    case v1::KIND_DEPLOYMENT:
      return "deployment";
    case v1::KIND_POOL:
      return "pool";
    case v1::KIND_ROUTE:
      return "route";
    case v1::KIND_TENANT:
      return "tenant";
    case v1::KIND_DRAIN:
      return "drain";
    default:
      return "";
  }
}

std::vector<TopologyEntry> TopologyEntries(const v1::Topology& topology) {
  std::vector<TopologyEntry> entries;
  ForEachKind(topology, [&](v1::Kind kind, const auto& field) {
    for (const auto& entry : field) {
      entries.push_back({kind, QualifiedName(entry), &entry});
    }
  });
  return entries;
}

std::string EntryBytes(const google::protobuf::Message& message) {
  std::string bytes;
  {
    google::protobuf::io::StringOutputStream string_stream(&bytes);
    google::protobuf::io::CodedOutputStream coded(&string_stream);
    coded.SetSerializationDeterministic(true);
    message.SerializeToCodedStream(&coded);
  }  // the coded stream flushes into `bytes` when it goes
  return bytes;
}

EntryMap EntriesByKey(const v1::Topology& topology) {
  EntryMap entries;
  // Position counts within a kind; TopologyEntries lists kind by kind.
  int position = 0;
  int kind = -1;
  for (const TopologyEntry& entry : TopologyEntries(topology)) {
    position = entry.kind == kind ? position + 1 : 0;
    kind = entry.kind;
    entries.try_emplace(EntryKey(entry.kind, entry.name),
                        EntryRecord{position, EntryBytes(*entry.message)});
  }
  return entries;
}

std::vector<v1::DiffEntry> DiffTopologies(const v1::Topology& from, const v1::Topology& to) {
  return DiffEntries(EntriesByKey(from), EntriesByKey(to));
}

std::vector<v1::DiffEntry> DiffEntries(const EntryMap& before, const EntryMap& after) {
  std::vector<v1::DiffEntry> diff;
  auto b = before.begin();
  auto a = after.begin();
  // Both maps are sorted by (kind, name): one merge pass yields the diff in that order.
  while (b != before.end() || a != after.end()) {
    if (a == after.end() || (b != before.end() && b->first < a->first)) {
      diff.push_back(MakeDiffEntry(b->first, v1::DiffEntry::CHANGE_REMOVED));
      ++b;
    } else if (b == before.end() || a->first < b->first) {
      diff.push_back(MakeDiffEntry(a->first, v1::DiffEntry::CHANGE_ADDED));
      ++a;
    } else {
      if (a->second.bytes != b->second.bytes) {
        diff.push_back(MakeDiffEntry(a->first, v1::DiffEntry::CHANGE_CHANGED));
      }
      ++a;
      ++b;
    }
  }
  return diff;
}

std::string FormatDiff(const std::vector<v1::DiffEntry>& diff) {
  std::string text;
  for (const v1::DiffEntry& entry : diff) {
    absl::string_view change = "changed";
    if (entry.change() == v1::DiffEntry::CHANGE_ADDED) {
      change = "added";
    } else if (entry.change() == v1::DiffEntry::CHANGE_REMOVED) {
      change = "removed";
    }
    absl::StrAppend(&text, change, " ", KindName(entry.kind()), " ", entry.name(), "\n");
  }
  return text;
}

void MergeEntries(const v1::Topology& entries, v1::Topology& topology) {
  for (const TopologyEntry& entry : TopologyEntries(entries)) {
    WithField(topology, entry.kind, [&](auto& field) {
      std::optional<int> index = IndexOf(field, entry.name);
      // CopyFrom(const Message&) checks the message type at run time.
      if (index.has_value()) {
        field.Mutable(*index)->CopyFrom(*entry.message);
      } else {
        field.Add()->CopyFrom(*entry.message);
      }
      return true;
    });
  }
}

bool RemoveEntry(v1::Kind kind, absl::string_view name, v1::Topology& topology) {
  return WithField(topology, kind, [&](auto& field) {
    std::optional<int> index = IndexOf(field, name);
    if (!index.has_value()) {
      return false;
    }
    field.erase(field.begin() + *index);  // keeps the order of the others
    return true;
  });
}

bool AppendEntryBytes(v1::Kind kind, absl::string_view bytes, v1::Topology& topology) {
  return WithField(topology, kind, [&](auto& field) {
    auto* entry = field.Add();
    if (entry->ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
      return true;
    }
    field.RemoveLast();
    return false;
  });
}

}  // namespace spillway
