// The `nats` sink's transport: each line is one JetStream message on the sink's subject, with a
// Nats-Msg-Id header derived from the line, published asynchronously and acknowledged (PubAck)
// before Send() returns. A failed or timed-out batch fails whole; AsyncSink retries it (or spools
// it) and the stream drops the messages it already stored by their ids (its duplicate window,
// 2 minutes by default). The connection is the sink's own fleet::Link: it reconnects in libnats'
// thread forever, and while it is down Send() fails at once (cause `connect`) so lines spool.
#include <nats/nats.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "fleet/link.h"
#include "net/tls_conn.h"
#include "sinks/transport.h"
#include "util/status_macros.h"
#include "util/util.h"

namespace writ::sinks {
namespace {

constexpr jsErrCode kStreamNotFound = static_cast<jsErrCode>(10059);

class NatsTransport final : public Transport {
 public:
  explicit NatsTransport(const SinkConfig& c) : c_(c) {}
  // The link first: its contexts may still call OnAck, which uses the members below it.
  ~NatsTransport() override { link_.reset(); }

  // The ack handler goes into every JetStream context the link makes (also when it re-makes a
  // connection libnats closed).
  void FillJsOptions(jsOptions* o) {
    o->PublishAsync.AckHandler = &NatsTransport::OnAck;
    o->PublishAsync.AckHandlerClosure = this;
    o->PublishAsync.MaxPending = static_cast<int64_t>(c_.batch_max) * 2;
    o->Wait = absl::ToInt64Milliseconds(c_.timeout);
  }
  void SetLink(std::unique_ptr<fleet::Link> link) { link_ = std::move(link); }

  absl::Status Send(const std::vector<std::string>& lines) override {
    if (!link_->connected()) {
      const fleet::LinkState ls = link_->state();
      return net::WithFailure(absl::UnavailableError(absl::StrCat(
                                  "nats ", absl::StrJoin(ls.servers, ","), ": not connected",
                                  ls.last_error.empty() ? "" : ": ", ls.last_error)),
                              net::Failure::kConnect);
    }
    return link_->Use([&](natsConnection*, jsCtx* js) { return SendOn(js, lines); });
  }

  void Close() override {}

 private:
  absl::Status SendOn(jsCtx* js, const std::vector<std::string>& lines) {
    if (js != published_on_) published_ = false;  // a new context: the link re-made it
    published_on_ = js;
    if (!stream_ok_) RETURN_IF_ERROR(EnsureStream(js));
    {
      absl::MutexLock lock(&mu_);
      acked_ = failed_ = 0;
      first_error_.clear();
    }
    jsPubOptions po;
    jsPubOptions_Init(&po);
    po.MaxWait = absl::ToInt64Milliseconds(c_.timeout);
    for (const std::string& line : lines) {
      natsMsg* m = nullptr;
      natsStatus s = natsMsg_Create(&m, c_.nats.subject.c_str(), nullptr, line.data(),
                                    static_cast<int>(line.size()));
      const std::string id = NatsMsgId(line);
      if (s == NATS_OK) s = natsMsgHeader_Set(m, "Nats-Msg-Id", id.c_str());
      if (s == NATS_OK) s = js_PublishMsgAsync(js, &m, &po);
      if (s == NATS_OK) published_ = true;
      natsMsg_Destroy(m);  // no-op when the library took it
      if (s != NATS_OK) {
        DropPending(js);
        return Fail(s, "publish");
      }
    }
    natsStatus s = js_PublishAsyncComplete(js, &po);
    if (s != NATS_OK) {
      DropPending(js);
      return Fail(s, absl::StrCat("waiting for ", lines.size(), " acks"));
    }
    absl::MutexLock lock(&mu_);
    if (failed_ > 0) {
      return net::WithFailure(
          absl::UnavailableError(absl::StrCat("nats stream ", c_.nats.stream, ": ", failed_, " of ",
                                              lines.size(), " not stored: ", first_error_)),
          first_timeout_ ? net::Failure::kTimeout : net::Failure::kNone);
    }
    return absl::OkStatus();
  }

  static void OnAck(jsCtx*, natsMsg* msg, jsPubAck* pa, jsPubAckErr* pae, void* closure) {
    auto* self = static_cast<NatsTransport*>(closure);
    {
      absl::MutexLock lock(&self->mu_);
      if (pa != nullptr) {
        self->acked_++;
      } else {
        if (self->failed_++ == 0) {
          self->first_timeout_ = pae != nullptr && pae->Err == NATS_TIMEOUT;
          self->first_error_ = pae == nullptr ? "no ack"
                               : pae->ErrText != nullptr && *pae->ErrText != '\0'
                                   ? pae->ErrText
                                   : natsStatus_GetText(pae->Err);
        }
      }
    }
    natsMsg_Destroy(msg);
  }

  // Takes back every message still waiting for its ack (their acks, if they come, are ignored).
  void DropPending(jsCtx* js) {
    if (!published_) return;  // libnats 3.4.1 crashes on a context that never published async
    natsMsgList pending;
    if (js_PublishAsyncGetPendingList(&pending, js) == NATS_OK) natsMsgList_Destroy(&pending);
  }

  absl::Status Fail(natsStatus s, const std::string& what) {
    absl::Status st = fleet::NatsError(s, absl::StrCat("stream ", c_.nats.stream, ": ", what));
    link_->NoteError(std::string(st.message()));
    net::Failure f = net::Failure::kNone;
    if (s == NATS_TIMEOUT) f = net::Failure::kTimeout;
    if (s == NATS_CONNECTION_CLOSED || s == NATS_CONNECTION_DISCONNECTED ||
        s == NATS_NOT_YET_CONNECTED || s == NATS_NO_SERVER) {
      f = net::Failure::kConnect;
    }
    if (s == NATS_IO_ERROR) f = net::Failure::kIo;
    return net::WithFailure(st, f);
  }

  // The stream must exist (or be created when create_stream says so) before the first publish:
  // without it JetStream answers no one and every line would time out.
  absl::Status EnsureStream(jsCtx* js) {
    jsStreamInfo* si = nullptr;
    jsErrCode jerr = static_cast<jsErrCode>(0);
    natsStatus s = js_GetStreamInfo(&si, js, c_.nats.stream.c_str(), nullptr, &jerr);
    if (s == NATS_OK) {
      jsStreamInfo_Destroy(si);
      stream_ok_ = true;
      return absl::OkStatus();
    }
    if (jerr != kStreamNotFound && s != NATS_NOT_FOUND) return Fail(s, "stream info");
    if (!c_.nats.create_stream) {
      return absl::FailedPreconditionError(
          absl::StrCat("nats stream ", c_.nats.stream,
                       " does not exist (create it, or set create_stream: true)"));
    }
    jsStreamConfig sc;
    jsStreamConfig_Init(&sc);
    sc.Name = c_.nats.stream.c_str();
    const char* subjects[] = {c_.nats.subject.c_str()};
    sc.Subjects = subjects;
    sc.SubjectsLen = 1;
    sc.Storage = js_FileStorage;
    sc.Replicas = c_.nats.replicas;
    s = js_AddStream(&si, js, &sc, nullptr, &jerr);
    if (s != NATS_OK) return Fail(s, "create stream");
    jsStreamInfo_Destroy(si);
    writ::Logger("fleet")->info("nats sink {}: created stream {} ({} replicas, subject {})",
                                c_.name, c_.nats.stream, c_.nats.replicas, c_.nats.subject);
    stream_ok_ = true;
    return absl::OkStatus();
  }

  const SinkConfig c_;
  // Set once by MakeNatsTransport; reset first by the destructor.
  std::unique_ptr<fleet::Link> link_;
  bool stream_ok_ = false;
  bool published_ = false;  // something was published async on published_on_
  jsCtx* published_on_ = nullptr;
  absl::Mutex mu_;
  uint64_t acked_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t failed_ ABSL_GUARDED_BY(mu_) = 0;
  bool first_timeout_ ABSL_GUARDED_BY(mu_) = false;
  std::string first_error_ ABSL_GUARDED_BY(mu_);
};

}  // namespace

std::string NatsMsgId(std::string_view line) {
  return Sha256Hex(absl::string_view(line.data(), line.size()));
}

absl::StatusOr<std::unique_ptr<Transport>> MakeNatsTransport(const SinkConfig& c) {
  if (!c.tls.verify) {
    return absl::InvalidArgumentError(absl::StrCat(
        "sink ", c.name, ": tls.verify: false is not available for nats sinks (give tls.ca)"));
  }
  fleet::LinkOptions o;
  o.servers = c.nats.servers;
  o.name = absl::StrCat("writd ", c.name);
  o.creds_file = c.nats.creds_file;
  o.nkey_seed_file = c.nats.nkey_seed_file;
  o.user = c.nats.user;
  o.password = c.nats.password;
  if (c.tls.enabled) o.tls = {c.tls.ca, c.tls.cert, c.tls.key};
  o.connect_timeout = c.timeout;
  auto t = std::make_unique<NatsTransport>(c);
  NatsTransport* tp = t.get();
  o.js_options = [tp](jsOptions* jo) { tp->FillJsOptions(jo); };
  ASSIGN_OR_RETURN(std::unique_ptr<fleet::Link> link, fleet::Link::Open(o));
  t->SetLink(std::move(link));
  return std::unique_ptr<Transport>(std::move(t));
}

}  // namespace writ::sinks
