// Transports: the blocking "send this batch" half of a sink, run only on the sink's own thread.
// AsyncSink (async_sink.h) supplies queueing, retry, backoff and the spool.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "sinks/sink.h"

namespace writ::sinks {

class Transport {
 public:
  virtual ~Transport() = default;
  // Sends all of `lines` or fails. On failure the transport resets its connection; the caller
  // retries the same batch later.
  virtual absl::Status Send(const std::vector<std::string>& lines) = 0;
  // Lines written on a connection that has since broken and might not have been read by the peer
  // (syslog has no acknowledgement). AsyncSink re-sends them first. Default: none.
  virtual std::vector<std::string> TakeUnconfirmed() { return {}; }
  virtual void Close() {}
};

// The cause of a failed Send(), for SinkStats::errors.
SinkError ClassifySendError(const absl::Status& st);

absl::StatusOr<std::unique_ptr<Transport>> MakeFileTransport(const SinkConfig& c);
absl::StatusOr<std::unique_ptr<Transport>> MakeSyslogTransport(const SinkConfig& c);
absl::StatusOr<std::unique_ptr<Transport>> MakeHttpTransport(const SinkConfig& c);
// JetStream publisher (nats_transport.cc): one PubAck per line; each carries Nats-Msg-Id =
// NatsMsgId(line), so a batch retried after a partial failure is de-duplicated by the stream.
absl::StatusOr<std::unique_ptr<Transport>> MakeNatsTransport(const SinkConfig& c);
// The message id of an encoded line: lowercase hex SHA-256 of its bytes (deterministic; a JSON and
// an OCSF line of one event differ, so two sinks of different formats never dedupe each other).
std::string NatsMsgId(std::string_view line);

// RFC 5424 message with RFC 6587 octet-counting framing: "LEN SP <PRI>1 TIMESTAMP HOST APP PROCID
// MSGID - MSG". Exposed for tests.
void AppendSyslogFrame(std::string_view msg, std::string_view hostname, std::string_view app,
                       int procid, absl::Time now, std::string* out);

// Minimal URL split for http(s)://host[:port][/path].
struct Url {
  bool tls = false;
  std::string host;
  int port = 0;
  std::string path;
};
absl::StatusOr<Url> ParseUrl(const std::string& url);

}  // namespace writ::sinks
