// Secret redaction for argv/env values and log text before they leave the host in events: JWTs,
// Authorization/Bearer values, AWS access key ids, passwords in URLs, and password/token/secret-like
// key=value pairs become "[REDACTED]". Linear scans for fixed anchors (no regex), one allocation per call
// when something matched and none otherwise.
#pragma once

#include <string>

namespace writ::creds {

inline constexpr char kRedacted[] = "[REDACTED]";

void RedactSecrets(std::string* s);

}  // namespace writ::creds
