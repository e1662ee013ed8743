// OCSF 1.x encoding of writ.v1.Event (metadata.version kOcsfVersion), one record per event:
//   exec, fork -> Process Activity (1007) Launch;  exit -> Process Activity Terminate
//   open       -> File System Activity (1001) Open (14)
//   connect    -> Network Activity (4001) Open (1), network.host as dst_endpoint.hostname
//   dns        -> DNS Activity (4003) Query (1): query, answers, rcode, the resolver addressed
//   verdict "violation" (any kind) -> Detection Finding (2004) Create, the activity as evidence
//   anything else (task_start, task_end, action, approval_request, credential, ...) -> Base (0)
// The writ agent identity (SPIFFE ID, principal, delegation chain, task, intent) goes to
// `unmapped.writ` rather than guessing at the newer ai_agent/delegation objects. Writes no trailing
// newline.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "writ/v1/event.pb.h"

namespace writ::sinks {

inline constexpr std::string_view kOcsfVersion = "1.9.0";

void AppendOcsf(const writ::v1::Event& ev, std::string* out);

// RFC 3339 ("2025-01-02T03:04:05.123456789Z", offsets allowed) -> ms since the Unix epoch.
// Returns false when `s` is not RFC 3339.
bool Rfc3339ToUnixMillis(std::string_view s, int64_t* ms);

}  // namespace writ::sinks
