#include "intent/yaml_proto.h"

#include <cstdint>
#include <limits>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/reflection.h"

namespace writ::intent {
namespace {

using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using google::protobuf::Reflection;

void Error(YamlParseState& st, const YAML::Node& n, const std::string& path,
           const std::string& msg) {
  st.errors->push_back(absl::StrCat(st.file, ":", YamlLine(n), ": ", path, ": ", msg));
}

const char* TypeName(const YAML::Node& n) {
  switch (n.Type()) {
    case YAML::NodeType::Map:
      return "a mapping";
    case YAML::NodeType::Sequence:
      return "a list";
    case YAML::NodeType::Scalar:
      return "a scalar";
    case YAML::NodeType::Null:
      return "null";
    default:
      return "nothing";
  }
}

// The only camelCase key users see (Kubernetes habit); every other key is the proto name.
std::string DisplayName(const FieldDescriptor* f) {
  return f->name() == "api_version" ? "apiVersion" : f->name();
}

bool IsInternal(const FieldDescriptor* f) {
  return f->name() == "source" || absl::EndsWith(f->name(), "_present");
}

// Sets one non-repeated scalar value (or adds to a repeated one).
void SetScalar(const YAML::Node& n, Message* msg, const FieldDescriptor* f, const std::string& path,
               YamlParseState& st) {
  const Reflection* r = msg->GetReflection();
  if (!n.IsScalar()) {
    Error(st, n, path, absl::StrCat("expected a ", f->cpp_type_name(), ", got ", TypeName(n)));
    return;
  }
  const std::string& v = n.Scalar();
  const bool rep = f->is_repeated();
  switch (f->cpp_type()) {
    case FieldDescriptor::CPPTYPE_STRING:
      rep ? r->AddString(msg, f, v) : r->SetString(msg, f, v);
      return;
    case FieldDescriptor::CPPTYPE_BOOL: {
      std::string l = absl::AsciiStrToLower(v);
      bool b;
      if (l == "true" || l == "yes") {
        b = true;
      } else if (l == "false" || l == "no") {
        b = false;
      } else {
        Error(st, n, path, absl::StrCat("expected true or false, got \"", v, "\""));
        return;
      }
      rep ? r->AddBool(msg, f, b) : r->SetBool(msg, f, b);
      return;
    }
    case FieldDescriptor::CPPTYPE_INT32:
    case FieldDescriptor::CPPTYPE_INT64:
    case FieldDescriptor::CPPTYPE_UINT32:
    case FieldDescriptor::CPPTYPE_UINT64: {
      int64_t i;
      if (!absl::SimpleAtoi(v, &i)) {
        Error(st, n, path, absl::StrCat("expected an integer, got \"", v, "\""));
        return;
      }
      const bool u = f->cpp_type() == FieldDescriptor::CPPTYPE_UINT32 ||
                     f->cpp_type() == FieldDescriptor::CPPTYPE_UINT64;
      const bool is32 = f->cpp_type() == FieldDescriptor::CPPTYPE_INT32 ||
                        f->cpp_type() == FieldDescriptor::CPPTYPE_UINT32;
      const int64_t lo = u ? 0 : (is32 ? std::numeric_limits<int32_t>::min() : INT64_MIN);
      const int64_t hi = is32 ? (u ? int64_t{UINT32_MAX} : int64_t{INT32_MAX}) : INT64_MAX;
      if (i < lo || i > hi) {
        Error(st, n, path, absl::StrCat("integer ", v, " out of range [", lo, ", ", hi, "]"));
        return;
      }
      switch (f->cpp_type()) {
        case FieldDescriptor::CPPTYPE_INT32:
          rep ? r->AddInt32(msg, f, i) : r->SetInt32(msg, f, i);
          break;
        case FieldDescriptor::CPPTYPE_INT64:
          rep ? r->AddInt64(msg, f, i) : r->SetInt64(msg, f, i);
          break;
        case FieldDescriptor::CPPTYPE_UINT32:
          rep ? r->AddUInt32(msg, f, i) : r->SetUInt32(msg, f, i);
          break;
        default:
          rep ? r->AddUInt64(msg, f, i) : r->SetUInt64(msg, f, i);
          break;
      }
      return;
    }
    default:
      Error(st, n, path, "unsupported field type");
  }
}

void ParseField(const YAML::Node& v, Message* msg, const FieldDescriptor* f,
                const std::string& path, YamlParseState& st) {
  const Reflection* r = msg->GetReflection();
  (*st.lines)[path] = YamlLine(v);
  if (f->is_map()) {
    if (v.IsNull()) return;
    if (!v.IsMap()) {
      Error(st, v, path, absl::StrCat("expected a mapping, got ", TypeName(v)));
      return;
    }
    const FieldDescriptor* kf = f->message_type()->map_key();
    const FieldDescriptor* vf = f->message_type()->map_value();
    for (const auto& kv : v) {
      const std::string key = kv.first.Scalar();
      const std::string sub = absl::StrCat(path, ".", key);
      (*st.lines)[sub] = YamlLine(kv.first);
      Message* entry = r->AddMessage(msg, f);
      entry->GetReflection()->SetString(entry, kf, key);
      if (vf->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
        ParseYamlMessage(kv.second, entry->GetReflection()->MutableMessage(entry, vf), sub, st);
      } else {
        SetScalar(kv.second, entry, vf, sub, st);
      }
    }
    return;
  }
  if (f->is_repeated()) {
    if (const FieldDescriptor* pf = msg->GetDescriptor()->FindFieldByName(f->name() + "_present");
        pf != nullptr && pf->cpp_type() == FieldDescriptor::CPPTYPE_BOOL) {
      r->SetBool(msg, pf, true);
    }
    if (v.IsNull()) return;  // `key:` with nothing = present and empty
    if (!v.IsSequence()) {
      Error(st, v, path, absl::StrCat("expected a list, got ", TypeName(v)));
      return;
    }
    for (size_t i = 0; i < v.size(); ++i) {
      const std::string sub = absl::StrCat(path, "[", i, "]");
      (*st.lines)[sub] = YamlLine(v[i]);
      if (f->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
        ParseYamlMessage(v[i], r->AddMessage(msg, f), sub, st);
      } else {
        SetScalar(v[i], msg, f, sub, st);
      }
    }
    return;
  }
  if (f->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
    ParseYamlMessage(v, r->MutableMessage(msg, f), path, st);  // null = present, all defaults
    return;
  }
  if (v.IsNull()) {
    Error(st, v, path, "expected a value, got nothing");
    return;
  }
  SetScalar(v, msg, f, path, st);
}

}  // namespace

int YamlLine(const YAML::Node& node) { return node.Mark().line + 1; }

void ParseYamlMessage(const YAML::Node& node, Message* msg, const std::string& path,
                      YamlParseState& st) {
  if (node.IsNull()) return;
  const std::string where = path.empty() ? "(document)" : path;
  if (!node.IsMap()) {
    Error(st, node, where, absl::StrCat("expected a mapping, got ", TypeName(node)));
    return;
  }
  const auto* d = msg->GetDescriptor();
  absl::flat_hash_map<std::string, int> seen;
  for (const auto& kv : node) {
    if (!kv.first.IsScalar()) {
      Error(st, kv.first, where, "keys must be plain strings");
      continue;
    }
    const std::string key = kv.first.Scalar();
    const FieldDescriptor* f = d->FindFieldByName(key);
    if (f == nullptr) {
      for (int i = 0; i < d->field_count(); ++i) {
        if (d->field(i)->json_name() == key && d->field(i)->json_name() != d->field(i)->name()) {
          f = d->field(i);
        }
      }
    }
    const std::string name = f ? DisplayName(f) : key;
    const std::string sub = path.empty() ? name : absl::StrCat(path, ".", name);
    if (auto [it, fresh] = seen.try_emplace(name, YamlLine(kv.first)); !fresh) {
      Error(st, kv.first, sub, absl::StrCat("duplicate key (first at line ", it->second, ")"));
      continue;
    }
    if (f == nullptr || IsInternal(f)) {
      std::string known;
      for (int i = 0; i < d->field_count(); ++i) {
        if (IsInternal(d->field(i))) continue;
        absl::StrAppend(&known, known.empty() ? "" : ", ", d->field(i)->name());
      }
      Error(st, kv.first, sub,
            absl::StrCat("unknown key \"", key, "\" (expected one of: ", known, ")"));
      continue;
    }
    ParseField(kv.second, msg, f, sub, st);
  }
}

}  // namespace writ::intent
