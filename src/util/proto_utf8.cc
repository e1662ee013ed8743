#include "util/proto_utf8.h"

#include <string>

#include "util/terminal_text.h"

namespace writ {
namespace {

using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using google::protobuf::Reflection;

// Walks every string (fix: rewrite it) and every message field of `m`. Returns the number of
// invalid strings seen.
int Walk(Message* m, const Message& cm, bool fix) {
  const Reflection* r = cm.GetReflection();
  std::vector<const FieldDescriptor*> fields;
  r->ListFields(cm, &fields);
  int n = 0;
  for (const FieldDescriptor* f : fields) {
    if (f->type() == FieldDescriptor::TYPE_STRING) {
      if (f->is_repeated()) {
        for (int i = 0; i < r->FieldSize(cm, f); ++i) {
          const std::string& s = r->GetRepeatedStringReference(cm, f, i, nullptr);
          if (IsUtf8(s)) continue;
          n++;
          if (fix) r->SetRepeatedString(m, f, i, Utf8Safe(s));
        }
      } else {
        std::string scratch;
        const std::string& s = r->GetStringReference(cm, f, &scratch);
        if (IsUtf8(s)) continue;
        n++;
        if (fix) r->SetString(m, f, Utf8Safe(s));
      }
    } else if (f->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
      if (f->is_repeated()) {
        for (int i = 0; i < r->FieldSize(cm, f); ++i) {
          if (fix) {
            Message* sub = r->MutableRepeatedMessage(m, f, i);
            n += Walk(sub, *sub, true);
          } else {
            n += Walk(nullptr, r->GetRepeatedMessage(cm, f, i), false);
          }
        }
      } else if (fix) {
        Message* sub = r->MutableMessage(m, f);
        n += Walk(sub, *sub, true);
      } else {
        n += Walk(nullptr, r->GetMessage(cm, f), false);
      }
    }
  }
  return n;
}

}  // namespace

bool HasInvalidUtf8(const google::protobuf::Message& m) { return Walk(nullptr, m, false) > 0; }

int MakeUtf8Safe(google::protobuf::Message* m) { return Walk(m, *m, true); }

}  // namespace writ
