// A topology seen as a list of entries, each identified by kind and qualified name, and the
// diff of two topologies in those terms: what Apply reports and what the store rewrites.
#pragma once

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/string_view.h"
#include "google/protobuf/message.h"
#include "spillway/v1/admin.pb.h"
#include "spillway/v1/topology.pb.h"

namespace spillway {

// One entry of a topology. `name` is qualified where names repeat: "<instance>/<name>" for
// deployments, "<stamp>/<name>" for routes; the plain name otherwise.
struct TopologyEntry {
  v1::Kind kind;
  std::string name;
  const google::protobuf::Message* message;  // points into the topology it came from
};

// "stamp", "region", ... "tenant" (the words ValidateTopology uses); "" for an unknown kind.
absl::string_view KindName(v1::Kind kind);

// Every entry, kind by kind in Kind order, in the topology's order within a kind.
std::vector<TopologyEntry> TopologyEntries(const v1::Topology& topology);

// The entry's bytes with deterministic serialization: equal entries give equal bytes, so
// bytes are what the store keeps and what the diff compares.
std::string EntryBytes(const google::protobuf::Message& message);

// Every entry by (kind, qualified name): its position within its kind and its EntryBytes.
// Names declared twice (which validation refuses) count once, by their first declaration.
// Computed once per topology, it serves both the diff and the store's write.
struct EntryRecord {
  int position = 0;
  std::string bytes;
};
using EntryKey = std::pair<int, std::string>;  // kind, qualified name
using EntryMap = std::map<EntryKey, EntryRecord>;
EntryMap EntriesByKey(const v1::Topology& topology);

// What turns `from` into `to`: ADDED, CHANGED (bytes differ) and REMOVED entries, ordered by
// kind, then by qualified name. Order within a kind is not a change.
std::vector<v1::DiffEntry> DiffTopologies(const v1::Topology& from, const v1::Topology& to);
std::vector<v1::DiffEntry> DiffEntries(const EntryMap& from, const EntryMap& to);

// One line per entry, e.g. "added route us/gpt-4o", for the topology history.
std::string FormatDiff(const std::vector<v1::DiffEntry>& diff);

// Adds each entry of `entries` to `topology`: one with the same kind and qualified name is
// replaced where it stands, any other is appended to its kind.
void MergeEntries(const v1::Topology& entries, v1::Topology& topology);

// Removes the entry of `kind` called `name` (qualified); false when there is none.
bool RemoveEntry(v1::Kind kind, absl::string_view name, v1::Topology& topology);

// Appends an entry of `kind` parsed from EntryBytes(); false on an unknown kind or bytes that
// do not parse.
bool AppendEntryBytes(v1::Kind kind, absl::string_view bytes, v1::Topology& topology);

}  // namespace spillway
