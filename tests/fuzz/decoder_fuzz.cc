// Fuzzes the ring-buffer decoder, the only userspace code that reads kernel ABI structs: arbitrary
// bytes must be decoded or rejected (bad version/size/kind), never read out of bounds. Records that
// decode are also rendered as JSON, which must parse: a truncated or non-UTF-8 path from the kernel
// must still give a well-formed event.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "decode/decoder.h"
#include "fuzz/fuzz_common.h"
#include "nlohmann/json.hpp"
#include "sinks/json_encoder.h"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  writ::fuzz::QuietLogs();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static writ::decode::Decoder decoder(1'700'000'000'000'000'000LL, "fuzz");
  // The ring buffer hands the decoder exactly the record's bytes; copy them so ASan sees the end.
  std::string rec(reinterpret_cast<const char*>(data), size);
  writ::v1::Event ev;
  writ::decode::RecordInfo info;
  if (!decoder.Decode(rec.data(), rec.size(), &ev, &info).ok()) return 0;
  std::string out;
  writ::sinks::AppendJson(ev, &out);
  if (!nlohmann::json::accept(out)) abort();
  return 0;
}
