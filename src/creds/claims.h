// TaskClaims: what a task is, as far as credentials care. The daemon's task registry owns tasks;
// creds only needs the identity, the chain of principals it acts for, the intent (scope) and the
// deadline.
#pragma once

#include <string>
#include <vector>

#include "absl/time/time.h"

namespace writ::creds {

struct TaskClaims {
  std::string task_id;
  std::string spiffe_id;  // e.g. spiffe://example.org/agent/reviewer
  // Oldest first: the human principal, then each delegating agent. The last entry is the most
  // recent delegate and becomes the outermost RFC 8693 `act` claim.
  std::vector<std::string> principal_chain;
  std::string intent;
  absl::Time deadline = absl::InfiniteFuture();
};

}  // namespace writ::creds
