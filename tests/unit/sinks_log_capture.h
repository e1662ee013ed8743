// Test helper: captures what the "sinks" spdlog logger writes, to assert on log lines.
#pragma once

#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <memory>
#include <sstream>
#include <string>

namespace writ::sinks::testing {

class LogCapture {
 public:
  LogCapture() {
    logger_ = spdlog::get("sinks");
    if (!logger_) logger_ = spdlog::stderr_color_mt("sinks");  // as sinks/sink.cc would
    sink_ = std::make_shared<spdlog::sinks::ostream_sink_mt>(out_);
    logger_->sinks().push_back(sink_);
  }
  ~LogCapture() {
    auto& v = logger_->sinks();
    v.erase(std::remove(v.begin(), v.end(), sink_), v.end());
  }
  std::string text() {
    logger_->flush();
    return out_.str();
  }
  int Count(const std::string& needle) {
    const std::string t = text();
    int n = 0;
    for (size_t p = t.find(needle); p != std::string::npos; p = t.find(needle, p + 1)) ++n;
    return n;
  }

 private:
  std::ostringstream out_;
  std::shared_ptr<spdlog::logger> logger_;
  spdlog::sink_ptr sink_;
};

}  // namespace writ::sinks::testing
