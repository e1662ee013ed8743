// Generic YAML → protobuf parsing by reflection, with the line of every field recorded, so that the
// semantic checks after it can still say "FILE:LINE: field.path: message".
#pragma once

#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "google/protobuf/message.h"
#include "yaml-cpp/yaml.h"

namespace writ::intent {

struct YamlParseState {
  std::string file;
  std::vector<std::string>* errors;              // "FILE:LINE: path: message"
  absl::flat_hash_map<std::string, int>* lines;  // field path -> 1-based line
};

// Fills `msg` from a YAML mapping. Unknown keys, wrong types and out-of-range numbers are errors at
// every level. Field names are the proto names; a field's json_name (e.g. apiVersion) is accepted
// too. For a repeated field `x` with a sibling `bool x_present`, the flag is set when the key
// appears;
// `*_present` fields and the `source` field are never accepted as keys.
void ParseYamlMessage(const YAML::Node& node, google::protobuf::Message* msg,
                      const std::string& path, YamlParseState& st);

int YamlLine(const YAML::Node& node);  // 1-based

}  // namespace writ::intent
