// DNS wire format (RFC 1035, 3596): parse and build the messages the stub resolver exchanges with a
// task and with upstream resolvers. Only what the stub needs is decoded: the header, the questions
// and the answer section's A, AAAA and CNAME records (other answer types are skipped, authority and
// additional sections are not read). Every input is untrusted: sizes, counts, label and name
// lengths and compression pointers are bounded, and pointers must point strictly backwards, so a
// loop or a forward chain is a parse error, never a hang. Names come out lower-case, dot-separated,
// with no trailing dot; a label holding a byte outside [A-Za-z0-9_-] is refused (it could spoof a
// dot).
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"

namespace writ::dns {

enum Type : uint16_t { kTypeA = 1, kTypeCname = 5, kTypeAaaa = 28 };
enum Rcode : uint8_t {
  kNoError = 0,
  kFormErr = 1,
  kServFail = 2,
  kNxDomain = 3,
  kNotImp = 4,
  kRefused = 5
};
constexpr uint16_t kClassIn = 1;
constexpr size_t kMaxMessage = 65535;  // TCP framing bound; UDP replies to a task use kMaxUdpReply
constexpr size_t kMaxUdpReply = 512;   // no EDNS0 advertised: classic UDP limit, TC set beyond it
constexpr size_t kMaxName = 253;       // text form, no trailing dot
constexpr size_t kMaxLabel = 63;
constexpr int kMaxPointers = 16;  // compression jumps per name

struct Question {
  std::string name;
  uint16_t type = 0;
  uint16_t klass = kClassIn;
};

struct Record {
  std::string name;
  uint16_t type = 0;  // kTypeA, kTypeAaaa or kTypeCname (others are skipped when parsing)
  uint32_t ttl = 0;
  std::array<uint8_t, 16> addr{};  // A: first 4 bytes; AAAA: 16
  std::string target;              // CNAME
};

struct Header {
  uint16_t id = 0;
  bool qr = false;  // response
  uint8_t opcode = 0;
  bool aa = false;
  bool tc = false;  // truncated
  bool rd = false;
  bool ra = false;
  uint8_t rcode = 0;
  uint16_t qdcount = 0, ancount = 0, nscount = 0, arcount = 0;
};

struct Message {
  Header header;
  std::vector<Question> questions;
  std::vector<Record> answers;   // A/AAAA/CNAME only, in wire order
  uint16_t skipped_answers = 0;  // answer records of other types
};

struct ParseLimits {
  size_t max_questions = 1;  // the stub refuses anything but one question
  size_t max_answers = 64;   // more answer records (of any type) is an error, not a truncation
};

// Parses a whole message. Errors say what was wrong (for counting and the dns event's reason).
absl::StatusOr<Message> Parse(absl::Span<const uint8_t> wire, const ParseLimits& limits = {});

// Lower-cases and checks a text name (labels 1..63 of [a-z0-9_-], total <= 253, no trailing dot).
absl::StatusOr<std::string> NormalizeName(absl::string_view name);

// Builds a standard query (RD set) for one name.
absl::StatusOr<std::vector<uint8_t>> BuildQuery(uint16_t id, absl::string_view name, uint16_t type);

// Builds a response to `query` (its id, RD and question echoed) with the given rcode and answers.
// RA is set. When the result would exceed `max_size`, answers are dropped and TC is set (the client
// retries over TCP), as RFC 1035 4.2.1 says.
std::vector<uint8_t> BuildResponse(const Message& query, uint8_t rcode,
                                   const std::vector<Record>& answers,
                                   size_t max_size = kMaxMessage);

// "A", "AAAA", "CNAME" or the number.
std::string TypeName(uint16_t type);
// Text form of an A/AAAA record's address.
std::string AddrText(const Record& r);

}  // namespace writ::dns
