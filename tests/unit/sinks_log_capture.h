// Test helper: captures what the "sinks" spdlog logger writes, to assert on log lines.
#pragma once

#include <spdlog/sinks/base_sink.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <memory>
#include <mutex>
#include <string>

namespace writ::sinks::testing {

// A sink whose text is read under the same mutex spdlog writes it under (an ostringstream read
// while a delivery thread logs is a data race).
class StringSink : public spdlog::sinks::base_sink<std::mutex> {
 public:
  std::string Text() {
    std::lock_guard<std::mutex> l(this->mutex_);
    return text_;
  }

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    spdlog::memory_buf_t buf;
    this->formatter_->format(msg, buf);
    text_.append(buf.data(), buf.size());
  }
  void flush_() override {}

 private:
  std::string text_;
};

class LogCapture {
 public:
  LogCapture() {
    logger_ = spdlog::get("sinks");
    if (!logger_) logger_ = spdlog::stderr_color_mt("sinks");  // as sinks/sink.cc would
    sink_ = std::make_shared<StringSink>();
    logger_->sinks().push_back(sink_);
  }
  ~LogCapture() {
    auto& v = logger_->sinks();
    v.erase(std::remove(v.begin(), v.end(), sink_), v.end());
  }
  std::string text() {
    logger_->flush();
    return sink_->Text();
  }
  int Count(const std::string& needle) {
    const std::string t = text();
    int n = 0;
    for (size_t p = t.find(needle); p != std::string::npos; p = t.find(needle, p + 1)) ++n;
    return n;
  }

 private:
  std::shared_ptr<spdlog::logger> logger_;
  std::shared_ptr<StringSink> sink_;
};

}  // namespace writ::sinks::testing
