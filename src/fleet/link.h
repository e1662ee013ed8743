// fleet::Link: one connection to a NATS cluster (and its JetStream context), the base of writd's
// fleet features (docs/fleet.md). Open() never waits for a server: a cluster that is down or
// refuses the credentials leaves the Link disconnected, retrying in libnats' own thread forever,
// and its state (connected, counters, the last error) says so. Callers that need the server check
// connected() and fail fast rather than queue into libnats' reconnect buffer.
#pragma once

#include <nats/nats.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace writ::fleet {

struct TlsFiles {
  std::string ca;    // PEM bundle the server certificate must chain to; empty = system store
  std::string cert;  // client certificate (mutual TLS), with key
  std::string key;
  bool enabled() const { return !ca.empty() || !cert.empty(); }
};

struct LinkOptions {
  std::vector<std::string> servers;  // nats://host:port or tls://host:port
  std::string name;                  // this host's name in the fleet (the connection name)
  // Credentials: at most one of creds_file (JWT + NKey seed, a NATS .creds file), nkey_seed_file
  // (an NKey user) or user/password. TLS client certificates may go with any.
  std::string creds_file;
  std::string nkey_seed_file;
  std::string user;
  std::string password;
  TlsFiles tls;
  absl::Duration connect_timeout = absl::Seconds(2);
  absl::Duration reconnect_wait = absl::Milliseconds(500);
  // Fills the options of the Link's JetStream context (e.g. the event sink's ack handler); called
  // for every new connection. Optional.
  std::function<void(jsOptions*)> js_options;
};

struct LinkState {
  bool connected = false;
  std::vector<std::string> servers;
  std::string connected_url;  // the server of the current connection, "" when down
  uint64_t connects = 0;      // successful connects, the first and every reconnect
  uint64_t disconnects = 0;
  uint64_t errors = 0;    // asynchronous errors libnats reported (auth refused, slow consumer, ...)
  uint64_t reopened = 0;  // connections libnats closed for good (refused credentials), made anew
  std::string last_error;
};

class Link {
 public:
  // Validates the options and starts connecting. Fails only on what retrying cannot fix: no
  // servers, an unreadable credentials or certificate file, a malformed URL.
  static absl::StatusOr<std::unique_ptr<Link>> Open(const LinkOptions& options);
  ~Link();
  Link(const Link&) = delete;
  Link& operator=(const Link&) = delete;

  bool connected() const { return connected_.load(std::memory_order_acquire); }
  LinkState state() const;
  const LinkOptions& options() const { return options_; }
  // Runs fn with the current connection and its JetStream context, which stay valid until fn
  // returns (a closed connection is replaced only between uses). libnats calls are thread-safe.
  absl::Status Use(const std::function<absl::Status(natsConnection*, jsCtx*)>& fn) const;

  // Records an error a user of the link met (a refused publish), for state().last_error.
  void NoteError(const std::string& error);

 private:
  explicit Link(LinkOptions options) : options_(std::move(options)) {}
  static void OnConnected(natsConnection* nc, void* self);
  static void OnDisconnected(natsConnection* nc, void* self);
  static void OnReconnected(natsConnection* nc, void* self);
  static void OnClosed(natsConnection* nc, void* self);
  static void OnError(natsConnection* nc, natsSubscription* sub, natsStatus err, void* self);
  void Up(natsConnection* nc);
  // Connect (never waiting for a server) and make the JetStream context; under use_mu_ or before
  // the Link is shared.
  absl::Status Connect();
  // libnats closes a connection for good after the same server refused its credentials twice
  // (3.4.1 has no option against it); this thread replaces such a connection every
  // max(reconnect_wait, 1 s), so credentials fixed on the server side are picked up without a
  // restart.
  void Reviver();

  const LinkOptions options_;
  std::atomic<bool> connected_{false};
  std::atomic<bool> closed_{false};  // libnats closed the current connection
  mutable absl::Mutex mu_;
  LinkState counters_ ABSL_GUARDED_BY(mu_);
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  bool close_logged_ ABSL_GUARDED_BY(mu_) = false;
  // Readers: Use(); the writer: the reviver swapping a closed connection. Destroyed in this order
  // by ~Link: the reviver, the context, the connection (its callbacks end), the options.
  mutable absl::Mutex use_mu_;
  natsOptions* opts_ = nullptr;
  natsConnection* conn_ ABSL_GUARDED_BY(use_mu_) = nullptr;
  jsCtx* js_ ABSL_GUARDED_BY(use_mu_) = nullptr;
  std::thread reviver_;
};

// "nats: <what>: <libnats status text> (<last error>)" as an absl::Status tagged Unavailable.
absl::Status NatsError(natsStatus s, const std::string& what);

}  // namespace writ::fleet
