// Native writ JSON: one writ.v1.Event as one JSON object (no trailing newline), field names exactly
// the proto's snake_case names. Hand written rather than protobuf's JsonPrinter: that is slow, uses
// reflection and renders uint64 as strings, which SIEM field extraction then treats as text.
//
// Omitted: empty strings, zero numbers, false bools, empty lists and empty sub-messages, except
// file.result, network.result, network.dst_port and process.pid, which are always present when
// their parent object is present (0 is a meaningful value there).
#pragma once

#include <string>

#include "sinks/json_writer.h"
#include "writ/v1/event.pb.h"

namespace writ::sinks {

// Appends the JSON object for `ev` to `*out`. Allocates nothing once `out` has enough capacity.
void AppendJson(const writ::v1::Event& ev, std::string* out);

// The "agent", "action", "approval", "credential" and "dns" objects (each omitted when empty) and
// "tool", shared by the native JSON encoder and the OCSF encoder's unmapped.writ: a field added
// here shows in both.
void WriteAgent(const writ::v1::Agent& a, JsonWriter& w);
void WriteAction(const writ::v1::Action& a, JsonWriter& w);
void WriteApproval(const writ::v1::Approval& a, JsonWriter& w);
void WriteCredential(const writ::v1::Credential& c, JsonWriter& w);
void WriteTool(const writ::v1::Tool& t, JsonWriter& w);
void WriteDns(const writ::v1::Dns& d, JsonWriter& w);

}  // namespace writ::sinks
