// The creds module's named logger. spdlog::get() returns null until someone registers the name, and
// the daemon may or may not have; create it once here.
#pragma once

#include <memory>

#include "spdlog/spdlog.h"

namespace writ::creds {
std::shared_ptr<spdlog::logger> Log();
}  // namespace writ::creds
