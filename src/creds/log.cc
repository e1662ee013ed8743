#include "creds/log.h"

#include <mutex>

#include "spdlog/sinks/stdout_color_sinks.h"

namespace writ::creds {
std::shared_ptr<spdlog::logger> Log() {
  static std::once_flag once;
  static std::shared_ptr<spdlog::logger> logger;
  std::call_once(once, [] {
    logger = spdlog::get("creds");
    if (!logger) {
      logger = spdlog::stderr_color_mt("creds");
    }
  });
  return logger;
}
}  // namespace writ::creds
