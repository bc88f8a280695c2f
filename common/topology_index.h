// Name -> entry lookups over the repeated fields of a Topology, shared by validation and
// the compile step. Pointers stay valid while the Topology is unchanged.
#pragma once

#include <string>

#include <google/protobuf/repeated_ptr_field.h>

#include "absl/container/flat_hash_map.h"

namespace spillway {

template <typename T>
using TopologyIndex = absl::flat_hash_map<std::string, const T*>;

// The first entry of each name wins (duplicates are validation's business).
template <typename T>
void IndexByName(const google::protobuf::RepeatedPtrField<T>& entries, TopologyIndex<T>& index) {
  for (const T& entry : entries) {
    index.try_emplace(entry.name(), &entry);
  }
}

}  // namespace spillway
