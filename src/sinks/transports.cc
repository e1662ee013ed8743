// File/stdout, syslog (RFC 5424 + RFC 6587 octet counting, over TCP or TLS per RFC 5425) and HTTP
// (webhook JSON array, Splunk HEC; libcurl through http::Client) transports.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <deque>

#include "absl/strings/cord.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "http/client.h"
#include "net/tls_conn.h"
#include "sinks/json_writer.h"
#include "sinks/transport.h"
#include "util/status_macros.h"

namespace writ::sinks {
namespace {

constexpr char kHttpStatusUrl[] = "writ.sinks.HttpStatus";

// A receiver that answered, but not with 2xx (or not with HTTP at all).
absl::Status HttpStatusError(std::string msg) {
  absl::Status st = absl::UnavailableError(std::move(msg));
  st.SetPayload(kHttpStatusUrl, absl::Cord("1"));
  return st;
}

// ---- file / stdout ---------------------------------------------------------------------------

class FileTransport final : public Transport {
 public:
  explicit FileTransport(const SinkConfig& c) : c_(c) {}
  ~FileTransport() override { Close(); }

  absl::Status Open() {
    if (c_.path == "-") {
      fd_ = STDOUT_FILENO;
      return absl::OkStatus();
    }
    fd_ = ::open(c_.path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
    if (fd_ < 0) return ErrnoStatus(errno, absl::StrCat("open ", c_.path));
    struct stat st;
    if (::fstat(fd_, &st) == 0) size_ = static_cast<uint64_t>(st.st_size);
    return absl::OkStatus();
  }

  absl::Status Send(const std::vector<std::string>& lines) override {
    return net::WithFailure(Write(lines), net::Failure::kIo);
  }

  void Close() override {
    if (fd_ > STDERR_FILENO) ::close(fd_);
    fd_ = -1;
  }

 private:
  absl::Status Write(const std::vector<std::string>& lines) {
    if (fd_ < 0) RETURN_IF_ERROR(Open());
    buf_.clear();
    for (const auto& l : lines) {
      // Rotate before a write would take the file past max_bytes (never mid-line).
      if (c_.path != "-" && c_.max_bytes > 0 && size_ + buf_.size() > 0 &&
          size_ + buf_.size() + l.size() + 1 > c_.max_bytes) {
        RETURN_IF_ERROR(WriteAll());
        RETURN_IF_ERROR(Rotate());
      }
      buf_.append(l);
      buf_.push_back('\n');
    }
    RETURN_IF_ERROR(WriteAll());
    if (c_.fsync && c_.path != "-" && ::fsync(fd_) != 0) {
      return ErrnoStatus(errno, absl::StrCat("fsync ", c_.path));
    }
    return absl::OkStatus();
  }

  absl::Status WriteAll() {
    size_t off = 0;
    while (off < buf_.size()) {
      const ssize_t n = ::write(fd_, buf_.data() + off, buf_.size() - off);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        // Drop what was written from the batch's buffer so a retry does not duplicate it.
        buf_.erase(0, off);
        return ErrnoStatus(errno, absl::StrCat("write ", c_.path));
      }
      off += static_cast<size_t>(n);
      size_ += static_cast<uint64_t>(n);
    }
    buf_.clear();
    return absl::OkStatus();
  }

  // path.(N-1) -> path.N, ..., path -> path.1, then a fresh path.
  absl::Status Rotate() {
    if (c_.fsync) ::fsync(fd_);
    Close();
    for (int i = c_.max_files - 1; i >= 1; --i) {
      const std::string from = absl::StrCat(c_.path, ".", i);
      const std::string to = absl::StrCat(c_.path, ".", i + 1);
      if (::rename(from.c_str(), to.c_str()) != 0 && errno != ENOENT) {
        return ErrnoStatus(errno, absl::StrCat("rotate ", from));
      }
    }
    if (::rename(c_.path.c_str(), absl::StrCat(c_.path, ".1").c_str()) != 0 && errno != ENOENT) {
      return ErrnoStatus(errno, absl::StrCat("rotate ", c_.path));
    }
    size_ = 0;
    return Open();
  }

  const SinkConfig c_;
  int fd_ = -1;
  uint64_t size_ = 0;
  std::string buf_;
};

net::TlsOptions TlsOf(const TlsConfig& t) {
  net::TlsOptions o;
  o.enabled = t.enabled;
  o.ca_file = t.ca;
  o.cert = t.cert;
  o.key = t.key;
  o.verify = t.verify;
  return o;
}

// ---- syslog ----------------------------------------------------------------------------------

class SyslogTransport final : public Transport {
 public:
  SyslogTransport(const SinkConfig& c, std::string host, int port)
      : c_(c), host_(std::move(host)), port_(port) {
    char name[256] = {};
    if (::gethostname(name, sizeof(name) - 1) != 0 || name[0] == '\0') std::strcpy(name, "-");
    hostname_ = name;
    pid_ = static_cast<int>(::getpid());
  }

  absl::Status Send(const std::vector<std::string>& lines) override {
    if (conn_.connected() && conn_.PeerGone()) Broken();
    if (!conn_.connected()) {
      RETURN_IF_ERROR(conn_.Connect(host_, port_, TlsOf(c_.tls), c_.timeout));
    }
    buf_.clear();
    const absl::Time now = absl::Now();
    for (const auto& l : lines) AppendSyslogFrame(l, hostname_, "writ", pid_, now, &buf_);
    absl::Status st = conn_.WriteAll(buf_);
    if (!st.ok()) {
      Broken();
      return st;
    }
    // Syslog over TCP has no acknowledgement: remember what this connection carried recently, so a
    // later break re-sends it (duplicates carry the same event id). "Recently" is the resend
    // window, and never less than what the peer's TCP stack has not acknowledged yet: a receiver
    // that accepts and then stops reading leaves a full send queue that may be older than the
    // window.
    for (const auto& l : lines) {
      recent_.push_back({now, l});
      recent_bytes_ += l.size();
    }
    const absl::Time horizon = now - c_.resend_window;
    const size_t unacked = conn_.UnackedBytes();  // framed (and TLS) bytes >= the lines' bytes
    while (!recent_.empty() && (recent_.front().first < horizon || recent_.size() > 100000) &&
           recent_bytes_ - recent_.front().second.size() >= unacked) {
      recent_bytes_ -= recent_.front().second.size();
      recent_.pop_front();
    }
    return absl::OkStatus();
  }

  std::vector<std::string> TakeUnconfirmed() override {
    if (conn_.connected() && conn_.PeerGone()) Broken();
    std::vector<std::string> out;
    out.swap(unconfirmed_);
    return out;
  }

  void Close() override { conn_.Close(); }

 private:
  void Broken() {
    conn_.Close();
    for (auto& [t, l] : recent_) unconfirmed_.push_back(std::move(l));
    recent_.clear();
    recent_bytes_ = 0;
  }

  const SinkConfig c_;
  const std::string host_;
  const int port_;
  std::string hostname_;
  int pid_ = 0;
  net::Conn conn_;
  std::string buf_;
  std::deque<std::pair<absl::Time, std::string>> recent_;
  size_t recent_bytes_ = 0;
  std::vector<std::string> unconfirmed_;
};

// ---- HTTP webhook / Splunk HEC -------------------------------------------------------------

// Over http::Client (libcurl): the connection is kept between batches (HTTP/1.1 keep-alive, or one
// HTTP/2 connection where the receiver offers it), TLS always verified.
class HttpTransport final : public Transport {
 public:
  HttpTransport(const SinkConfig& c, const Url& url) : c_(c) {
    std::string path = url.path.empty() ? "/" : url.path;
    if (c_.type == "hec" && path == "/") path = "/services/collector/event";
    const bool v6 = url.host.find(':') != std::string::npos;
    where_ = absl::StrCat(v6 ? "[" : "", url.host, v6 ? "]" : "", ":", url.port, path);
    req_.method = "POST";
    req_.url = absl::StrCat(url.tls ? "https://" : "http://", where_);
    req_.ca_file = c_.tls.ca;
    req_.cert = c_.tls.cert;
    req_.key = c_.tls.key;
    req_.timeout = c_.timeout;
    req_.max_response_bytes = 64 * 1024;  // receivers answer with a short status document
    req_.headers = {{"Content-Type", "application/json"}};
    if (c_.type == "hec") {
      req_.headers.emplace_back("Authorization", absl::StrCat("Splunk ", c_.token));
    }
  }

  absl::Status Send(const std::vector<std::string>& lines) override {
    std::string& body = req_.body;
    body.clear();
    if (c_.type == "hec") {
      // HEC accepts concatenated event objects in one request.
      for (const auto& l : lines) {
        body.append(R"({"sourcetype":"writ:)");
        body.append(c_.format == Format::kOcsf ? "ocsf" : "json");
        body.append(R"(","source":"writd","event":)");
        body.append(l);
        body.append("}\n");
      }
    } else {
      body.push_back('[');
      for (size_t i = 0; i < lines.size(); ++i) {
        if (i > 0) body.push_back(',');
        body.append(lines[i]);
      }
      body.push_back(']');
    }
    absl::StatusOr<http::ClientResponse> resp = client_.Fetch(req_);
    if (!resp.ok()) {
      if (resp.status().code() == absl::StatusCode::kDataLoss) {
        return HttpStatusError(absl::StrCat("http ", where_, ": no HTTP response"));
      }
      return resp.status();  // tagged with its net::Failure kind
    }
    if (resp->status < 200 || resp->status > 299) {
      return HttpStatusError(absl::StrCat("http ", where_, ": status ", resp->status));
    }
    return absl::OkStatus();
  }

 private:
  const SinkConfig c_;
  std::string where_;        // host:port/path, for messages
  http::ClientRequest req_;  // the same request each time, body replaced
  http::Client client_;
};

}  // namespace

const char* SinkErrorName(SinkError e) {
  switch (e) {
    case SinkError::kConnect:
      return "connect";
    case SinkError::kTlsVerify:
      return "tls_verify";
    case SinkError::kTls:
      return "tls";
    case SinkError::kTimeout:
      return "timeout";
    case SinkError::kIo:
      return "io";
    case SinkError::kHttpStatus:
      return "http_status";
    case SinkError::kOther:
      return "other";
  }
  return "other";
}

SinkError ClassifySendError(const absl::Status& st) {
  if (st.GetPayload(kHttpStatusUrl).has_value()) return SinkError::kHttpStatus;
  switch (net::FailureOf(st)) {
    case net::Failure::kResolve:
    case net::Failure::kConnect:
      return SinkError::kConnect;
    case net::Failure::kTlsVerify:
      return SinkError::kTlsVerify;
    case net::Failure::kTls:
      return SinkError::kTls;
    case net::Failure::kTimeout:
      return SinkError::kTimeout;
    case net::Failure::kIo:
      return SinkError::kIo;
    case net::Failure::kNone:
      break;
  }
  return SinkError::kOther;
}

void AppendSyslogFrame(std::string_view msg, std::string_view hostname, std::string_view app,
                       int procid, absl::Time now, std::string* out) {
  // PRI 134 = facility local0 (16) * 8 + severity informational (6). MSGID "event", no SD.
  const std::string header = absl::StrCat(
      "<134>1 ", absl::FormatTime("%Y-%m-%dT%H:%M:%E6SZ", now, absl::UTCTimeZone()), " ",
      hostname.empty() ? absl::string_view("-")
                       : absl::string_view(hostname.data(), hostname.size()),
      " ", absl::string_view(app.data(), app.size()), " ", procid, " event - ");
  absl::StrAppend(out, header.size() + msg.size(), " ", header);
  out->append(msg.data(), msg.size());
}

absl::StatusOr<Url> ParseUrl(const std::string& url) {
  Url u;
  absl::string_view rest = url;
  if (absl::ConsumePrefix(&rest, "https://")) {
    u.tls = true;
    u.port = 443;
  } else if (absl::ConsumePrefix(&rest, "http://")) {
    u.port = 80;
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("expected http:// or https:// URL, got '", url, "'"));
  }
  const size_t slash = rest.find('/');
  absl::string_view hostport = rest.substr(0, slash);
  u.path = slash == absl::string_view::npos ? "/" : std::string(rest.substr(slash));
  if (hostport.empty()) return absl::InvalidArgumentError("URL has no host");
  const size_t colon = hostport.rfind(':');
  if (colon != absl::string_view::npos && hostport.back() != ']') {
    int port = 0;
    const char* b = hostport.data() + colon + 1;
    const char* e = hostport.data() + hostport.size();
    if (std::from_chars(b, e, port).ptr != e || port <= 0 || port > 65535) {
      return absl::InvalidArgumentError(absl::StrCat("bad port in URL '", url, "'"));
    }
    u.port = port;
    hostport = hostport.substr(0, colon);
  }
  if (hostport.size() > 2 && hostport.front() == '[')
    hostport = hostport.substr(1, hostport.size() - 2);
  u.host = std::string(hostport);
  return u;
}

absl::StatusOr<std::unique_ptr<Transport>> MakeFileTransport(const SinkConfig& c) {
  auto t = std::make_unique<FileTransport>(c);
  RETURN_IF_ERROR(t->Open());  // fail at configuration time on an unwritable path
  return std::unique_ptr<Transport>(std::move(t));
}

absl::StatusOr<std::unique_ptr<Transport>> MakeSyslogTransport(const SinkConfig& c) {
  std::string host;
  int port = 0;
  RETURN_IF_ERROR(net::SplitHostPort(c.address, &host, &port));
  return std::unique_ptr<Transport>(new SyslogTransport(c, host, port));
}

absl::StatusOr<std::unique_ptr<Transport>> MakeHttpTransport(const SinkConfig& c) {
  ASSIGN_OR_RETURN(Url u, ParseUrl(c.url));
  if (!c.tls.verify) {
    return absl::InvalidArgumentError(
        absl::StrCat("sink ", c.name, ": tls.verify: false is not available for ", c.type,
                     " sinks (https is always verified; give the receiver's CA in tls.ca)"));
  }
  SinkConfig cc = c;
  if (u.tls) cc.tls.enabled = true;
  return std::unique_ptr<Transport>(new HttpTransport(cc, u));
}

}  // namespace writ::sinks
