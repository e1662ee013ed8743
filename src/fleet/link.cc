#include "fleet/link.h"

#include <unistd.h>

#include <algorithm>
#include <string_view>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "util/status_macros.h"
#include "util/util.h"

namespace writ::fleet {
namespace {

auto& Log() {
  static auto l = Logger("fleet");
  return l;
}

// libnats' words for "no server took the connection", which would hide the reason a server gave
// (Authorization Violation) when the connection is then closed or re-made.
bool Generic(const char* err) {
  return err == nullptr || *err == '\0' ||
         std::string_view(err) == natsStatus_GetText(NATS_NO_SERVER) ||
         std::string_view(err) == natsStatus_GetText(NATS_NOT_YET_CONNECTED);
}

absl::Status Check(natsStatus s, const std::string& what) {
  return s == NATS_OK ? absl::OkStatus() : NatsError(s, what);
}

absl::Status Readable(const std::string& path, const char* field) {
  if (path.empty()) return absl::OkStatus();
  if (::access(path.c_str(), R_OK) != 0) {
    return ErrnoStatus(errno, absl::StrCat(field, " ", path));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status NatsError(natsStatus s, const std::string& what) {
  natsStatus ls = NATS_OK;
  const char* detail = nats_GetLastError(&ls);
  std::string msg = absl::StrCat("nats: ", what, ": ", natsStatus_GetText(s));
  if (detail != nullptr && *detail != '\0' && ls == s) absl::StrAppend(&msg, " (", detail, ")");
  return absl::UnavailableError(msg);
}

absl::StatusOr<std::unique_ptr<Link>> Link::Open(const LinkOptions& options) {
  if (options.servers.empty()) return absl::InvalidArgumentError("fleet: no servers");
  int creds = !options.creds_file.empty() + !options.nkey_seed_file.empty() + !options.user.empty();
  if (creds > 1) {
    return absl::InvalidArgumentError(
        "fleet: creds_file, nkey_seed_file and user are alternatives: give one");
  }
  for (const auto& [path, field] : {std::pair{options.creds_file, "creds_file"},
                                    {options.nkey_seed_file, "nkey_seed_file"},
                                    {options.tls.ca, "tls.ca"},
                                    {options.tls.cert, "tls.cert"},
                                    {options.tls.key, "tls.key"}}) {
    if (auto st = Readable(path, field); !st.ok()) return st;
  }
  std::unique_ptr<Link> link(new Link(options));
  Link* self = link.get();
  natsOptions* o = nullptr;
  if (auto st = Check(natsOptions_Create(&o), "options"); !st.ok()) return st;
  link->opts_ = o;
  std::vector<const char*> urls;
  for (const auto& s : options.servers) urls.push_back(s.c_str());
  absl::Status st = Check(natsOptions_SetServers(o, urls.data(), static_cast<int>(urls.size())),
                          absl::StrCat("servers ", absl::StrJoin(options.servers, ",")));
  if (st.ok() && !options.name.empty())
    st = Check(natsOptions_SetName(o, options.name.c_str()), "name");
  if (st.ok()) {
    st = Check(natsOptions_SetTimeout(o, absl::ToInt64Milliseconds(options.connect_timeout)),
               "timeout");
  }
  if (st.ok()) st = Check(natsOptions_SetMaxReconnect(o, -1), "max reconnect");
  if (st.ok()) {
    st = Check(natsOptions_SetReconnectWait(o, absl::ToInt64Milliseconds(options.reconnect_wait)),
               "reconnect wait");
  }
  if (st.ok())
    st = Check(natsOptions_SetRetryOnFailedConnect(o, true, &OnConnected, self), "retry");
  if (st.ok()) st = Check(natsOptions_SetDisconnectedCB(o, &OnDisconnected, self), "callback");
  if (st.ok()) st = Check(natsOptions_SetReconnectedCB(o, &OnReconnected, self), "callback");
  if (st.ok()) st = Check(natsOptions_SetClosedCB(o, &OnClosed, self), "callback");
  if (st.ok()) st = Check(natsOptions_SetErrorHandler(o, &OnError, self), "callback");
  if (st.ok() && !options.creds_file.empty()) {
    st = Check(natsOptions_SetUserCredentialsFromFiles(o, options.creds_file.c_str(), nullptr),
               absl::StrCat("creds_file ", options.creds_file));
  }
  if (st.ok() && !options.nkey_seed_file.empty()) {
    st = Check(natsOptions_SetNKeyFromSeed(o, nullptr, options.nkey_seed_file.c_str()),
               absl::StrCat("nkey_seed_file ", options.nkey_seed_file));
  }
  if (st.ok() && !options.user.empty()) {
    st = Check(natsOptions_SetUserInfo(o, options.user.c_str(), options.password.c_str()), "user");
  }
  if (st.ok() && options.tls.enabled()) {
    st = Check(natsOptions_SetSecure(o, true), "tls");
    if (st.ok() && !options.tls.ca.empty()) {
      st = Check(natsOptions_LoadCATrustedCertificates(o, options.tls.ca.c_str()),
                 absl::StrCat("tls.ca ", options.tls.ca));
    }
    if (st.ok() && !options.tls.cert.empty()) {
      st = Check(
          natsOptions_LoadCertificatesChain(o, options.tls.cert.c_str(), options.tls.key.c_str()),
          absl::StrCat("tls.cert ", options.tls.cert));
    }
  }
  if (!st.ok()) return st;
  {
    absl::MutexLock lock(&link->mu_);
    link->counters_.servers = options.servers;
  }
  {
    absl::WriterMutexLock lock(&link->use_mu_);
    if (auto cst = link->Connect(); !cst.ok()) return cst;
  }
  link->reviver_ = std::thread([self] { self->Reviver(); });
  return link;
}

absl::Status Link::Connect() {
  // With retry-on-failed-connect and a connected callback, Connect returns NATS_NOT_YET_CONNECTED
  // at once when no server answers and goes on trying in libnats' thread.
  closed_.store(false, std::memory_order_release);
  natsStatus s = natsConnection_Connect(&conn_, opts_);
  if (s == NATS_OK) {
    Up(conn_);
  } else if (s == NATS_NOT_YET_CONNECTED) {
    const char* err = nullptr;
    natsConnection_GetLastError(conn_, &err);
    absl::MutexLock lock(&mu_);
    if (!Generic(err) || counters_.last_error.empty()) {
      counters_.last_error =
          absl::StrCat("not connected yet: ", Generic(err) ? natsStatus_GetText(s) : err);
    }
    if (counters_.reopened == 0) {  // the reviver does not log every second
      Log()->warn("fleet: no NATS server reachable yet ({}); retrying in the background",
                  absl::StrJoin(options_.servers, ","));
    }
  } else {
    return NatsError(s, absl::StrCat("connect ", absl::StrJoin(options_.servers, ",")));
  }
  jsOptions jo;
  jsOptions_Init(&jo);
  if (options_.js_options) options_.js_options(&jo);
  return Check(natsConnection_JetStream(&js_, conn_, &jo), "jetstream");
}

void Link::Reviver() {
  const absl::Duration every = std::max(options_.reconnect_wait, absl::Seconds(1));
  for (;;) {
    {
      absl::MutexLock lock(&mu_);
      if (mu_.AwaitWithTimeout(absl::Condition(&stop_), every)) return;
    }
    if (!closed_.load(std::memory_order_acquire)) continue;
    absl::WriterMutexLock lock(&use_mu_);
    if (js_ != nullptr) jsCtx_Destroy(js_);
    js_ = nullptr;
    if (conn_ != nullptr) natsConnection_Destroy(conn_);
    conn_ = nullptr;
    {
      absl::MutexLock l(&mu_);
      counters_.reopened++;
    }
    if (auto st = Connect(); !st.ok()) {
      NoteError(std::string(st.message()));
      closed_.store(true, std::memory_order_release);  // try again next period
    }
  }
}

absl::Status Link::Use(const std::function<absl::Status(natsConnection*, jsCtx*)>& fn) const {
  absl::ReaderMutexLock lock(&use_mu_);
  if (conn_ == nullptr || js_ == nullptr) {
    return absl::UnavailableError("nats: no connection (being re-made)");
  }
  return fn(conn_, js_);
}

Link::~Link() {
  {
    absl::MutexLock lock(&mu_);
    stop_ = true;
  }
  if (reviver_.joinable()) reviver_.join();
  absl::WriterMutexLock lock(&use_mu_);
  if (js_ != nullptr) jsCtx_Destroy(js_);
  if (conn_ != nullptr) {
    natsConnection_Close(conn_);
    natsConnection_Destroy(conn_);
  }
  if (opts_ != nullptr) natsOptions_Destroy(opts_);
}

LinkState Link::state() const {
  absl::MutexLock lock(&mu_);
  LinkState s = counters_;
  s.connected = connected();
  if (!s.connected) s.connected_url.clear();
  return s;
}

void Link::NoteError(const std::string& error) {
  absl::MutexLock lock(&mu_);
  counters_.last_error = error;
}

void Link::Up(natsConnection* nc) {
  char url[256] = {0};
  natsConnection_GetConnectedUrl(nc, url, sizeof(url));
  {
    absl::MutexLock lock(&mu_);
    close_logged_ = false;
    counters_.connects++;
    counters_.connected_url = url;
  }
  connected_.store(true, std::memory_order_release);
  Log()->info("fleet: connected to {}", url);
}

void Link::OnConnected(natsConnection* nc, void* self) { static_cast<Link*>(self)->Up(nc); }
void Link::OnReconnected(natsConnection* nc, void* self) { static_cast<Link*>(self)->Up(nc); }

void Link::OnDisconnected(natsConnection* nc, void* self) {
  auto* link = static_cast<Link*>(self);
  const bool was = link->connected_.exchange(false, std::memory_order_acq_rel);
  const char* err = nullptr;
  natsConnection_GetLastError(nc, &err);
  bool stopping = false;
  {
    absl::MutexLock lock(&link->mu_);
    stopping = link->stop_;
    if (was) link->counters_.disconnects++;
    if (!Generic(err) || link->counters_.last_error.empty()) {
      link->counters_.last_error = err != nullptr ? err : "";
    }
  }
  if (was && !stopping) {
    Log()->warn("fleet: disconnected ({}); reconnecting", err != nullptr ? err : "");
  }
}

void Link::OnClosed(natsConnection* nc, void* self) {
  auto* link = static_cast<Link*>(self);
  const bool was = link->connected_.exchange(false, std::memory_order_acq_rel);
  link->closed_.store(true, std::memory_order_release);
  const char* err = nullptr;
  natsConnection_GetLastError(nc, &err);
  std::string why;
  bool log = false;
  {
    absl::MutexLock lock(&link->mu_);
    if (was) link->counters_.disconnects++;
    if (!Generic(err)) link->counters_.last_error = err;
    // Once per loss of the link, not at every re-made connection nor at our own close.
    log = !link->stop_ && !link->close_logged_;
    link->close_logged_ = true;
    why = link->counters_.last_error;
  }
  if (log)
    Log()->warn("fleet: libnats gave the connection up ({}); making a new one every second", why);
}

void Link::OnError(natsConnection* nc, natsSubscription* sub, natsStatus err, void* self) {
  auto* link = static_cast<Link*>(self);
  const char* text = nullptr;
  natsConnection_GetLastError(nc, &text);
  std::string msg = text != nullptr && *text != '\0' ? text : natsStatus_GetText(err);
  {
    absl::MutexLock lock(&link->mu_);
    link->counters_.errors++;
    link->counters_.last_error = msg;
  }
  Log()->warn("fleet: {}", msg);
}

}  // namespace writ::fleet
