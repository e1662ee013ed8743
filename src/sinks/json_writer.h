// Minimal allocation-free JSON writer shared by the native JSON and OCSF encoders. It appends to a
// caller-owned std::string, so once that string has capacity, encoding an event allocates nothing.
// Strings are escaped per RFC 8259; bytes that are not valid UTF-8 become \u00XX (the raw byte as a
// code point) because paths are arbitrary bytes and a SIEM must never receive invalid UTF-8.
#pragma once

#include <charconv>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace writ::sinks {

// Appends `s` as a quoted, escaped JSON string.
void AppendJsonString(std::string_view s, std::string* out);
// Appends the escaped content of `s` without quotes (to build one string from several parts).
void AppendJsonStringBody(std::string_view s, std::string* out);

class JsonWriter {
 public:
  explicit JsonWriter(std::string* out) : out_(out) {}

  void BeginObject() { Open('{'); }
  void EndObject() { Close('}'); }
  void BeginArray() { Open('['); }
  void EndArray() { Close(']'); }

  // Object member key (call before the value). Keys are trusted literals: not escaped.
  void Key(std::string_view key) {
    Comma();
    out_->push_back('"');
    out_->append(key);
    out_->append("\":");
    after_key_ = true;
  }
  // Object member key from untrusted data (escaped like a string value).
  void KeyEscaped(std::string_view key) {
    Comma();
    AppendJsonString(key, out_);
    out_->push_back(':');
    after_key_ = true;
  }
  void String(std::string_view v) {
    Comma();
    AppendJsonString(v, out_);
  }
  void Uint(uint64_t v) {
    Comma();
    AppendNumber(v);
  }
  void Int(int64_t v) {
    Comma();
    AppendNumber(v);
  }
  void Bool(bool v) {
    Comma();
    out_->append(v ? "true" : "false");
  }
  // A pre-encoded JSON value (e.g. a nested record produced by another writer).
  void Raw(std::string_view json) {
    Comma();
    out_->append(json);
  }

  // Convenience: members that are omitted when empty / zero / false.
  void StrField(std::string_view key, std::string_view v) {
    if (!v.empty()) {
      Key(key);
      String(v);
    }
  }
  void UintField(std::string_view key, uint64_t v) {
    if (v != 0) {
      Key(key);
      Uint(v);
    }
  }
  void IntField(std::string_view key, int64_t v) {
    if (v != 0) {
      Key(key);
      Int(v);
    }
  }
  void BoolField(std::string_view key, bool v) {
    if (v) {
      Key(key);
      Bool(true);
    }
  }
  template <typename List>
  void StrListField(std::string_view key, const List& list) {
    if (list.empty()) return;
    Key(key);
    BeginArray();
    for (const auto& s : list) String(s);
    EndArray();
  }

  // Object scopes that disappear when nothing was written inside them: Mark() before Key(), then
  // EndObjectOrRollback(mark) removes `"key":{}` (and its comma) when the object stayed empty.
  struct Mark {
    size_t size;
    bool first;
    int depth;
  };
  Mark Save() const { return Mark{out_->size(), first_[depth_], depth_}; }
  // Returns true when the object was kept.
  bool EndObjectOrRollback(const Mark& m) {
    if (out_->back() == '{') {
      out_->resize(m.size);
      depth_ = m.depth;
      first_[depth_] = m.first;
      after_key_ = false;
      return false;
    }
    EndObject();
    return true;
  }

  std::string* out() { return out_; }

 private:
  static constexpr int kMaxDepth = 32;

  void Comma() {
    if (after_key_) {
      after_key_ = false;
      return;
    }
    if (!first_[depth_]) out_->push_back(',');
    first_[depth_] = false;
  }
  void Open(char c) {
    Comma();
    out_->push_back(c);
    // Depth is bounded by the fixed schemas of the encoders; clamp rather than overflow.
    if (depth_ + 1 < kMaxDepth) ++depth_;
    first_[depth_] = true;
  }
  void Close(char c) {
    out_->push_back(c);
    if (depth_ > 0) --depth_;
    after_key_ = false;
  }
  template <typename T>
  void AppendNumber(T v) {
    char buf[24];
    auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), v);
    out_->append(buf, static_cast<size_t>(end - buf));
  }

  std::string* out_;
  int depth_ = 0;
  bool first_[kMaxDepth] = {true};
  bool after_key_ = false;
};

}  // namespace writ::sinks
