// Minimal allocation-free JSON writer shared by the native JSON and OCSF encoders. It appends to a
// caller-owned std::string, so once that string has capacity, encoding an event allocates nothing.
// Strings are escaped per RFC 8259; bytes that are not valid UTF-8 become \u00XX (the raw byte as a
// code point) because paths are arbitrary bytes and a SIEM must never receive invalid UTF-8.
#pragma once

#include <charconv>
#include <cstddef>
#include <cstdint>
#include <cstring>
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
    char buf[kKeyBuf];
    const size_t n = KeyPrefix(key, buf);
    if (n == 0) {  // a key too long for the buffer (none of the encoders' keys)
      Comma();
      out_->push_back('"');
      out_->append(key);
      out_->append("\":");
    } else {
      out_->append(buf, n);
    }
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

  // Convenience: members that are omitted when empty / zero / false. Each writes its key, separator
  // and the value's opening quote or digits with one append: on the event hot path the number of
  // string operations, not the bytes, is what encoding costs.
  void StrField(std::string_view key, std::string_view v) {
    if (v.empty()) return;
    char buf[kKeyBuf + 1];
    size_t n = KeyPrefix(key, buf);
    if (n == 0) {
      Key(key);
      String(v);
      return;
    }
    buf[n++] = '"';
    out_->append(buf, n);
    AppendJsonStringBody(v, out_);
    out_->push_back('"');
  }
  void UintField(std::string_view key, uint64_t v) {
    if (v != 0) NumberField(key, v);
  }
  void IntField(std::string_view key, int64_t v) {
    if (v != 0) NumberField(key, v);
  }
  // A member whose value is always written (0 included).
  template <typename T>
  void NumberField(std::string_view key, T v) {
    char buf[kKeyBuf + 24];
    size_t n = KeyPrefix(key, buf);
    if (n == 0) {
      Key(key);
      Comma();
      AppendNumber(v);
      return;
    }
    n = static_cast<size_t>(std::to_chars(buf + n, buf + sizeof(buf), v).ptr - buf);
    out_->append(buf, n);
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
  static constexpr size_t kKeyBuf = 64;

  // True when the next value needs a separating comma; consumes the pending-key state.
  bool TakeComma() {
    if (after_key_) {
      after_key_ = false;
      return false;
    }
    const bool comma = !first_[depth_];
    first_[depth_] = false;
    return comma;
  }
  void Comma() {
    if (TakeComma()) out_->push_back(',');
  }
  // Writes [,]"key": into buf (kKeyBuf bytes) and returns its length; 0 (nothing consumed) when the key
  // does not fit.
  size_t KeyPrefix(std::string_view key, char* buf) {
    if (key.size() + 4 > kKeyBuf) return 0;
    size_t n = 0;
    if (TakeComma()) buf[n++] = ',';
    buf[n++] = '"';
    std::memcpy(buf + n, key.data(), key.size());
    n += key.size();
    buf[n++] = '"';
    buf[n++] = ':';
    return n;
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
