// Protobuf messages as the JSON twin of their YAML: the same keys, the same enum spellings,
// so a document printed as JSON loads back through ParseYamlInto (JSON is valid YAML).
#pragma once

#include <google/protobuf/message.h>

#include <boost/json/value.hpp>
#include <string>

namespace spillway {

// Fields that are set, in schema order, under their .proto names; enums in their
// (spillway.v1.yaml_name) spelling; numbers as JSON numbers.
boost::json::value MessageToJsonValue(const google::protobuf::Message& message);

// MessageToJsonValue printed with two-space indentation, ending in a newline.
std::string MessageToJson(const google::protobuf::Message& message);

}  // namespace spillway
