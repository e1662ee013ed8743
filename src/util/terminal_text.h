// Text from events (paths, argv, reasons) made safe to print on an operator's terminal.
//
// A task names its files and chooses its argv: printed raw, "\033[2J" clears the operator's screen
// and "\r" or "\n" forges a line of `writ tail` or `writ approvals` output. These functions show
// every such byte as a visible escape instead; valid UTF-8 text (accents, CJK, emoji) passes
// unchanged.
#pragma once

#include <string>

#include "absl/strings/string_view.h"

namespace writ {

// Appends `in` to `out` with:
//   '\\'                 -> "\\\\" (so an escape in the output is never the task's own text)
//   '\n', '\r', '\t'     -> "\\n", "\\r", "\\t"
//   other C0, DEL        -> "\\xHH" (ESC is "\\x1b")
//   C1 (U+0080..U+009F)  -> "\\u0080".."\\u009f" (CSI U+009B starts a sequence like ESC [ does)
//   bidirectional and line-layout controls (U+061C, U+200E, U+200F, U+2028..U+202E, U+2066..U+2069)
//                        -> "\\uXXXX" (they reorder or break what the operator reads)
//   a byte that does not begin valid UTF-8 (stray continuation, overlong form, surrogate, above
//   U+10FFFF, cut sequence) -> "\\xHH", and decoding resumes at the next byte
void AppendTerminalSafe(absl::string_view in, std::string* out);
std::string TerminalSafe(absl::string_view in);

// Whether `in` is valid UTF-8 (RFC 3629).
bool IsUtf8(absl::string_view in);
// `in` with every byte that does not begin a valid UTF-8 sequence replaced by the text "\xHH";
// valid text, control characters included, is kept as is (for protobuf string fields:
// util/proto_utf8.h).
std::string Utf8Safe(absl::string_view in);

}  // namespace writ
