// Protobuf `string` fields must hold UTF-8: proto3's parser refuses a message whose string field
// does not, so one byte a task chose (a file named "\xff", an argument) would make every message
// that carries it unreadable to its receiver: `writ tail` and `writ approvals` ending with
// "malformed control message", a state record no restart can read. Where writd's protos cross a
// process or a restart (control frames, tail frames, the state store), their strings go through
// here first: valid UTF-8 is kept as is, every byte that does not begin a valid sequence becomes
// the text
// "\xHH" (util/terminal_text.h's Utf8Safe). The sinks, journal and JSONL are not protos and keep
// the bytes as their encoders write them.
#pragma once

#include "google/protobuf/message.h"

namespace writ {

// Whether any string field of `m`, at any depth (repeated, maps, sub-messages), is not UTF-8.
bool HasInvalidUtf8(const google::protobuf::Message& m);
// Rewrites every such field with Utf8Safe; returns how many fields it changed.
int MakeUtf8Safe(google::protobuf::Message* m);

}  // namespace writ
