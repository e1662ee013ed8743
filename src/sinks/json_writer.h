// Minimal allocation-free JSON writer shared by the native JSON and OCSF encoders. It appends to a
// caller-owned std::string, so once that string has capacity, encoding an event allocates nothing.
// Strings are escaped per RFC 8259; bytes that are not valid UTF-8 become \u00XX (the raw byte as a
// code point) because paths are arbitrary bytes and a SIEM must never receive invalid UTF-8.
//
// Writes go through a raw cursor into the string's own buffer (JsonOut), not through
// std::string::append: on the event hot path the number of string operations, not the bytes, was
// what encoding cost (~17 instructions per output byte). The string is grown in chunks ahead of the
// cursor and cut back to what was written when the writer goes out of scope (or Finish()), so a
// JsonOut or JsonWriter must be the only thing writing to its string while it lives.
#pragma once

#include <charconv>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <type_traits>

namespace writ::sinks {

// Appends `s` as a quoted, escaped JSON string.
void AppendJsonString(std::string_view s, std::string* out);
// Appends the escaped content of `s` without quotes (to build one string from several parts).
void AppendJsonStringBody(std::string_view s, std::string* out);

// Writes v in decimal at p (room for 20 bytes) and returns the end: the length first (from the bit
// length and one table compare), then two digits per step from the end, so nothing is reversed or
// copied. std::to_chars computed the length with a loop of divisions and cost ~130 instructions per
// 14-digit timestamp.
char* WriteDecimal(char* p, uint64_t v);
inline char* WriteDecimal(char* p, int64_t v) {
  if (v >= 0) return WriteDecimal(p, static_cast<uint64_t>(v));
  *p++ = '-';
  return WriteDecimal(p, 0 - static_cast<uint64_t>(v));  // INT64_MIN included
}

// Raw output cursor over a caller-owned std::string. The string's size runs ahead of the cursor by
// up to one chunk (zero-filled by std::string::resize, never exposed): Finish() (or the destructor)
// cuts it back to the bytes written.
class JsonOut {
 public:
  explicit JsonOut(std::string* s) : s_(s), p_(s->data() + s->size()), end_(p_) {}
  ~JsonOut() { Finish(); }
  JsonOut(const JsonOut&) = delete;
  JsonOut& operator=(const JsonOut&) = delete;

  // Cuts the string to what was written. Writing may continue afterwards.
  void Finish() {
    if (end_ != p_) {
      s_->resize(size());
      p_ = s_->data() + s_->size();
      end_ = p_;
    }
  }
  // Bytes written to the string so far (including what it held before).
  size_t size() const { return static_cast<size_t>(p_ - s_->data()); }
  // Room for n more bytes at the cursor; returns the cursor. Commit with Advance().
  char* Ensure(size_t n) {
    if (static_cast<size_t>(end_ - p_) < n) Grow(n);
    return p_;
  }
  void Advance(char* to) { p_ = to; }
  void Put(char c) {
    Ensure(1);
    *p_++ = c;
  }
  void Put(const char* d, size_t n) {
    Ensure(n);
    std::memcpy(p_, d, n);
    p_ += n;
  }
  void Put(std::string_view v) {
    if (!v.empty()) Put(v.data(), v.size());
  }
  // The escaped content of `s` (no quotes).
  void Escaped(std::string_view s);
  char back() const { return p_[-1]; }
  // Drops everything written after offset `n` (an earlier size()).
  void Truncate(size_t n) { p_ = s_->data() + n; }

 private:
  void Grow(size_t n);

  std::string* s_;
  char* p_;
  char* end_;
};

class JsonWriter {
 public:
  explicit JsonWriter(std::string* out) : o_(out) {}

  // Cuts the output string to what was written (the destructor does it too).
  void Finish() { o_.Finish(); }

  void BeginObject() { Open('{'); }
  void EndObject() { Close('}'); }
  void BeginArray() { Open('['); }
  void EndArray() { Close(']'); }

  // Object member key (call before the value). Keys are trusted literals: not escaped.
  void Key(std::string_view key) {
    o_.Advance(KeyPrefix(key, o_.Ensure(key.size() + 4)));
    after_key_ = true;
  }
  // Object member key from untrusted data (escaped like a string value).
  void KeyEscaped(std::string_view key) {
    Comma();
    QuotedString(key);
    o_.Put(':');
    after_key_ = true;
  }
  void String(std::string_view v) {
    Comma();
    QuotedString(v);
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
    if (v) {
      o_.Put("true", 4);
    } else {
      o_.Put("false", 5);
    }
  }
  // A pre-encoded JSON value (e.g. a nested record produced by another writer).
  void Raw(std::string_view json) {
    Comma();
    o_.Put(json);
  }
  // Pieces of one string value written in parts (after Raw("\"")): escaped content and raw bytes.
  // Neither writes a separator.
  void StringBody(std::string_view v) { o_.Escaped(v); }
  void RawChars(std::string_view v) { o_.Put(v); }

  // Convenience: members that are omitted when empty / zero / false. Each writes its key, separator
  // and the value's opening quote or digits through one cursor.
  void StrField(std::string_view key, std::string_view v) {
    if (v.empty()) return;
    char* p = KeyPrefix(key, o_.Ensure(key.size() + 5));
    *p++ = '"';
    o_.Advance(p);
    o_.Escaped(v);
    o_.Put('"');
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
    char* p = KeyPrefix(key, o_.Ensure(key.size() + 4 + kNumMax));
    o_.Advance(Decimal(p, v));
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
  Mark Save() const { return Mark{o_.size(), first_[depth_], depth_}; }
  // Returns true when the object was kept.
  bool EndObjectOrRollback(const Mark& m) {
    if (o_.back() == '{') {
      o_.Truncate(m.size);
      depth_ = m.depth;
      first_[depth_] = m.first;
      after_key_ = false;
      return false;
    }
    EndObject();
    return true;
  }

 private:
  static constexpr int kMaxDepth = 32;
  static constexpr size_t kNumMax = 24;  // digits of any 64-bit integer, sign included

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
    if (TakeComma()) o_.Put(',');
  }
  // Writes [,]"key": at p (room for key.size() + 4 bytes) and returns the end.
  char* KeyPrefix(std::string_view key, char* p) {
    if (TakeComma()) *p++ = ',';
    *p++ = '"';
    std::memcpy(p, key.data(), key.size());
    p += key.size();
    *p++ = '"';
    *p++ = ':';
    return p;
  }
  void QuotedString(std::string_view v) {
    o_.Put('"');
    o_.Escaped(v);
    o_.Put('"');
  }
  void Open(char c) {
    Comma();
    o_.Put(c);
    // Depth is bounded by the fixed schemas of the encoders; clamp rather than overflow.
    if (depth_ + 1 < kMaxDepth) ++depth_;
    first_[depth_] = true;
  }
  void Close(char c) {
    o_.Put(c);
    if (depth_ > 0) --depth_;
    after_key_ = false;
  }
  template <typename T>
  void AppendNumber(T v) {
    o_.Advance(Decimal(o_.Ensure(kNumMax), v));
  }
  template <typename T>
  static char* Decimal(char* p, T v) {
    static_assert(std::is_integral_v<T>, "JSON numbers here are integers");
    if constexpr (std::is_signed_v<T>) {
      return WriteDecimal(p, static_cast<int64_t>(v));
    } else {
      return WriteDecimal(p, static_cast<uint64_t>(v));
    }
  }

  JsonOut o_;
  int depth_ = 0;
  bool first_[kMaxDepth] = {true};
  bool after_key_ = false;
};

}  // namespace writ::sinks
