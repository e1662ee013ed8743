// Fuzzes the native JSON encoder: any Event protobuf that parses (arbitrary strings, numbers, enums
// outside the known range, repeated fields) must render as one well-formed JSON object.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "fuzz/fuzz_common.h"
#include "nlohmann/json.hpp"
#include "sinks/json_encoder.h"
#include "writ/v1/event.pb.h"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  writ::fuzz::QuietLogs();
  google::protobuf::SetLogHandler(nullptr);  // invalid UTF-8 in a string field is logged per parse
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  writ::v1::Event ev;
  if (!ev.ParseFromArray(data, static_cast<int>(size))) return 0;
  std::string out;
  writ::sinks::AppendJson(ev, &out);
  auto j = nlohmann::json::parse(out, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) abort();
  return 0;
}
