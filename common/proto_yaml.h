// Maps YAML onto protobuf messages through reflection, so the schema in proto/ is the one
// definition of what operators may write. Errors name the file, line, column and field path.
#pragma once

#include <google/protobuf/message.h>

#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace spillway {

// Parses `text` (named `source_name` in errors) into `message`, which is cleared first.
// Keys are field names or their (spillway.v1.yaml_alias) aliases; enum values are their
// (spillway.v1.yaml_name) spelling or the full enum value name, case-insensitively.
// Unknown keys, wrong types, out-of-range numbers, duplicate keys and two members of one
// oneof are errors such as `topology.yaml:12:5: deployments[2].sku: unknown value ...`.
absl::Status ParseYamlInto(absl::string_view text, absl::string_view source_name,
                           google::protobuf::Message* message);

// The inverse: fields that are set, in schema order, enums in their YAML spelling.
std::string MessageToYaml(const google::protobuf::Message& message);

// How an enum value is written in YAML: its (spillway.v1.yaml_name), or its name without one.
const std::string& EnumYamlName(const google::protobuf::EnumValueDescriptor* value);

}  // namespace spillway
