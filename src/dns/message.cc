#include "dns/message.h"

#include <arpa/inet.h>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace writ::dns {
namespace {

bool LabelByteOk(uint8_t c) { return absl::ascii_isalnum(c) || c == '-' || c == '_'; }

class Reader {
 public:
  explicit Reader(absl::Span<const uint8_t> w) : w_(w) {}
  size_t pos() const { return pos_; }
  bool U16(uint16_t* v) {
    if (w_.size() - pos_ < 2) return false;
    *v = static_cast<uint16_t>(w_[pos_] << 8 | w_[pos_ + 1]);
    pos_ += 2;
    return true;
  }
  bool U32(uint32_t* v) {
    uint16_t hi, lo;
    if (!U16(&hi) || !U16(&lo)) return false;
    *v = static_cast<uint32_t>(hi) << 16 | lo;
    return true;
  }
  bool Skip(size_t n) {
    if (w_.size() - pos_ < n) return false;
    pos_ += n;
    return true;
  }
  // Reads a possibly compressed name at the cursor. Each pointer must point before the start of the
  // label sequence that holds it, so following pointers strictly decreases the offset: no loops.
  absl::StatusOr<std::string> Name() {
    std::string out;
    size_t p = pos_;
    size_t floor = pos_;  // pointers must target offsets below this
    bool jumped = false;
    int jumps = 0;
    size_t wire_len = 0;
    for (;;) {
      if (p >= w_.size()) return absl::InvalidArgumentError("name runs past the message");
      uint8_t len = w_[p];
      if ((len & 0xC0) == 0xC0) {
        if (p + 1 >= w_.size()) return absl::InvalidArgumentError("truncated compression pointer");
        size_t target = static_cast<size_t>(len & 0x3F) << 8 | w_[p + 1];
        if (!jumped) pos_ = p + 2;
        jumped = true;
        if (++jumps > kMaxPointers)
          return absl::InvalidArgumentError("too many compression pointers");
        if (target >= floor)
          return absl::InvalidArgumentError("compression pointer loop or forward");
        floor = target;
        p = target;
        continue;
      }
      if ((len & 0xC0) != 0) return absl::InvalidArgumentError("reserved label type");
      if (len == 0) {
        if (!jumped) pos_ = p + 1;
        break;
      }
      if (p + 1 + len > w_.size()) return absl::InvalidArgumentError("label runs past the message");
      wire_len += len + 1;
      if (wire_len > kMaxName + 1) return absl::InvalidArgumentError("name longer than 253");
      if (!out.empty()) out.push_back('.');
      for (size_t i = 0; i < len; ++i) {
        uint8_t c = w_[p + 1 + i];
        if (!LabelByteOk(c))
          return absl::InvalidArgumentError("name has a byte outside [A-Za-z0-9_-]");
        out.push_back(absl::ascii_tolower(c));
      }
      p += 1 + len;
    }
    return out;
  }

 private:
  absl::Span<const uint8_t> w_;
  size_t pos_ = 0;
};

void Put16(std::vector<uint8_t>* o, uint16_t v) {
  o->push_back(v >> 8);
  o->push_back(v & 0xFF);
}
void Put32(std::vector<uint8_t>* o, uint32_t v) {
  Put16(o, v >> 16);
  Put16(o, v & 0xFFFF);
}
// The name must be normalized already (labels validated).
void PutName(std::vector<uint8_t>* o, absl::string_view name) {
  if (!name.empty()) {
    for (absl::string_view l : absl::StrSplit(name, '.')) {
      o->push_back(static_cast<uint8_t>(l.size()));
      o->insert(o->end(), l.begin(), l.end());
    }
  }
  o->push_back(0);
}

void PutHeader(std::vector<uint8_t>* o, const Header& h) {
  Put16(o, h.id);
  uint16_t f = (h.qr ? 0x8000 : 0) | (h.opcode & 0xF) << 11 | (h.aa ? 0x400 : 0) |
               (h.tc ? 0x200 : 0) | (h.rd ? 0x100 : 0) | (h.ra ? 0x80 : 0) | (h.rcode & 0xF);
  Put16(o, f);
  Put16(o, h.qdcount);
  Put16(o, h.ancount);
  Put16(o, h.nscount);
  Put16(o, h.arcount);
}

}  // namespace

absl::StatusOr<Message> Parse(absl::Span<const uint8_t> wire, const ParseLimits& limits) {
  if (wire.size() > kMaxMessage) return absl::InvalidArgumentError("message larger than 65535");
  Reader r(wire);
  Message m;
  Header& h = m.header;
  uint16_t flags = 0;
  if (!r.U16(&h.id) || !r.U16(&flags) || !r.U16(&h.qdcount) || !r.U16(&h.ancount) ||
      !r.U16(&h.nscount) || !r.U16(&h.arcount)) {
    return absl::InvalidArgumentError("shorter than a DNS header");
  }
  h.qr = flags & 0x8000;
  h.opcode = (flags >> 11) & 0xF;
  h.aa = flags & 0x400;
  h.tc = flags & 0x200;
  h.rd = flags & 0x100;
  h.ra = flags & 0x80;
  h.rcode = flags & 0xF;
  if (h.qdcount > limits.max_questions) {
    return absl::InvalidArgumentError(
        absl::StrCat(h.qdcount, " questions (at most ", limits.max_questions, ")"));
  }
  if (h.ancount > limits.max_answers) {
    return absl::InvalidArgumentError(
        absl::StrCat(h.ancount, " answers (at most ", limits.max_answers, ")"));
  }
  for (int i = 0; i < h.qdcount; ++i) {
    Question q;
    auto n = r.Name();
    if (!n.ok())
      return absl::InvalidArgumentError(absl::StrCat("question: ", n.status().message()));
    q.name = *std::move(n);
    if (!r.U16(&q.type) || !r.U16(&q.klass))
      return absl::InvalidArgumentError("truncated question");
    m.questions.push_back(std::move(q));
  }
  for (int i = 0; i < h.ancount; ++i) {
    auto n = r.Name();
    if (!n.ok()) return absl::InvalidArgumentError(absl::StrCat("answer: ", n.status().message()));
    uint16_t type, klass, rdlen;
    uint32_t ttl;
    if (!r.U16(&type) || !r.U16(&klass) || !r.U32(&ttl) || !r.U16(&rdlen)) {
      return absl::InvalidArgumentError("truncated answer record");
    }
    const size_t rdata = r.pos();
    if (wire.size() - rdata < rdlen)
      return absl::InvalidArgumentError("answer data runs past the message");
    if (ttl > 0x7FFFFFFF) ttl = 0;  // RFC 2181 8: a TTL with the top bit set is zero
    Record rec;
    rec.name = *std::move(n);
    rec.type = type;
    rec.ttl = ttl;
    if (klass != kClassIn || (type != kTypeA && type != kTypeAaaa && type != kTypeCname)) {
      ++m.skipped_answers;
      r.Skip(rdlen);
      continue;
    }
    if (type == kTypeA || type == kTypeAaaa) {
      const size_t want = type == kTypeA ? 4 : 16;
      if (rdlen != want)
        return absl::InvalidArgumentError(
            absl::StrCat(TypeName(type), " record of ", rdlen, " bytes"));
      std::copy(wire.begin() + rdata, wire.begin() + rdata + want, rec.addr.begin());
      r.Skip(rdlen);
    } else {
      auto t = r.Name();
      if (!t.ok()) return absl::InvalidArgumentError(absl::StrCat("CNAME: ", t.status().message()));
      if (r.pos() != rdata + rdlen)
        return absl::InvalidArgumentError("CNAME length does not match its data");
      rec.target = *std::move(t);
    }
    m.answers.push_back(std::move(rec));
  }
  return m;
}

absl::StatusOr<std::string> NormalizeName(absl::string_view name) {
  if (!name.empty() && name.back() == '.') name.remove_suffix(1);
  if (name.empty()) return absl::InvalidArgumentError("empty name");
  if (name.size() > kMaxName) return absl::InvalidArgumentError("name longer than 253");
  std::string out;
  out.reserve(name.size());
  size_t label = 0;
  for (char c : name) {
    if (c == '.') {
      if (label == 0) return absl::InvalidArgumentError("empty label");
      label = 0;
    } else {
      if (!LabelByteOk(static_cast<uint8_t>(c))) {
        return absl::InvalidArgumentError(
            absl::StrCat("character '", std::string(1, c), "' in a name"));
      }
      if (++label > kMaxLabel) return absl::InvalidArgumentError("label longer than 63");
    }
    out.push_back(absl::ascii_tolower(c));
  }
  if (label == 0) return absl::InvalidArgumentError("empty label");
  return out;
}

absl::StatusOr<std::vector<uint8_t>> BuildQuery(uint16_t id, absl::string_view name,
                                                uint16_t type) {
  auto n = NormalizeName(name);
  if (!n.ok()) return n.status();
  std::vector<uint8_t> o;
  Header h;
  h.id = id;
  h.rd = true;
  h.qdcount = 1;
  PutHeader(&o, h);
  PutName(&o, *n);
  Put16(&o, type);
  Put16(&o, kClassIn);
  return o;
}

std::vector<uint8_t> BuildResponse(const Message& query, uint8_t rcode,
                                   const std::vector<Record>& answers, size_t max_size) {
  std::vector<uint8_t> o;
  Header h;
  h.id = query.header.id;
  h.qr = true;
  h.opcode = query.header.opcode;
  h.rd = query.header.rd;
  h.ra = true;
  h.rcode = rcode;
  h.qdcount = static_cast<uint16_t>(query.questions.size());
  std::vector<uint8_t> body;
  for (const Question& q : query.questions) {
    PutName(&body, q.name);
    Put16(&body, q.type);
    Put16(&body, q.klass);
  }
  uint16_t an = 0;
  for (const Record& r : answers) {
    std::vector<uint8_t> rr;
    PutName(&rr, r.name);
    Put16(&rr, r.type);
    Put16(&rr, kClassIn);
    Put32(&rr, r.ttl);
    if (r.type == kTypeCname) {
      std::vector<uint8_t> t;
      PutName(&t, r.target);
      Put16(&rr, static_cast<uint16_t>(t.size()));
      rr.insert(rr.end(), t.begin(), t.end());
    } else {
      const size_t n = r.type == kTypeA ? 4 : 16;
      Put16(&rr, static_cast<uint16_t>(n));
      rr.insert(rr.end(), r.addr.begin(), r.addr.begin() + n);
    }
    if (12 + body.size() + rr.size() > max_size) {
      h.tc = true;
      break;
    }
    body.insert(body.end(), rr.begin(), rr.end());
    ++an;
  }
  h.ancount = an;
  PutHeader(&o, h);
  o.insert(o.end(), body.begin(), body.end());
  return o;
}

std::string TypeName(uint16_t type) {
  switch (type) {
    case kTypeA:
      return "A";
    case kTypeAaaa:
      return "AAAA";
    case kTypeCname:
      return "CNAME";
    default:
      return absl::StrCat(type);
  }
}

std::string AddrText(const Record& r) {
  char buf[INET6_ADDRSTRLEN] = {};
  inet_ntop(r.type == kTypeA ? AF_INET : AF_INET6, r.addr.data(), buf, sizeof(buf));
  return buf;
}

}  // namespace writ::dns
