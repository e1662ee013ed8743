#include "http/server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <pthread.h>

#include <atomic>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <list>
#include <optional>
#include <sstream>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "http/server_tls.h"
#include "spdlog/sinks/stdout_color_sinks.h"
#include "spdlog/spdlog.h"

namespace writ::http {

namespace net = boost::asio;
namespace bhttp = boost::beast::http;
using tcp = net::ip::tcp;
using error_code = boost::system::error_code;
using BeastRequest = bhttp::request<bhttp::string_body>;
using Parser = bhttp::request_parser<bhttp::string_body>;

namespace {

std::shared_ptr<spdlog::logger> Log() {
  static std::shared_ptr<spdlog::logger> logger = [] {
    auto l = spdlog::get("http");
    return l ? l : spdlog::stderr_color_mt("http");
  }();
  return logger;
}

std::string_view SV(boost::beast::string_view s) { return {s.data(), s.size()}; }
// Debian's Abseil has a string_view of its own.
absl::string_view AV(std::string_view s) { return {s.data(), s.size()}; }

std::optional<uint64_t> Std(const boost::optional<uint64_t>& v) {
  return v ? std::optional<uint64_t>(*v) : std::nullopt;
}

Response Error(int status, std::string_view msg) {
  Response r;
  r.status = status;
  r.body = absl::StrCat(AV(msg), "\n");
  return r;
}

// A header value for an error message: printable ASCII, bounded.
std::string Printable(std::string_view s) {
  std::string out;
  for (char c : s.substr(0, 120)) out.push_back(c >= 0x20 && c < 0x7f ? c : '?');
  if (s.size() > 120) out.append("...");
  return out;
}

// An IP literal (IPv6 bracketed) or "localhost".
bool ParseHost(const std::string& host, tcp::endpoint* ep) {
  std::string h = host == "localhost" ? "127.0.0.1" : host;
  if (h.size() > 2 && h.front() == '[' && h.back() == ']') h = h.substr(1, h.size() - 2);
  error_code ec;
  net::ip::address a = net::ip::make_address(h, ec);
  if (ec) return false;
  *ep = tcp::endpoint(a, 0);
  return true;
}

// Asio opens and accepts without SOCK_CLOEXEC. A process writd execs would keep the port: the
// guardian (forked after the server starts, and outliving a writd that dies) held it in LISTEN,
// so clients queued on a port nobody served and a restarted writd could not bind it.
void CloseOnExec(int fd) { fcntl(fd, F_SETFD, fcntl(fd, F_GETFD) | FD_CLOEXEC); }

int64_t SteadyNanos() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

std::chrono::steady_clock::duration ToChrono(absl::Duration d) {
  return std::chrono::duration_cast<std::chrono::steady_clock::duration>(
      absl::ToChronoNanoseconds(d));
}

// A connection's byte stream: the TCP socket, or TLS over it. Beast's read and write algorithms
// take it as their AsyncReadStream and AsyncWriteStream; the Session code is the same either way.
class Stream {
 public:
  using executor_type = tcp::socket::executor_type;
  using TlsStream = net::ssl::stream<tcp::socket>;

  Stream(tcp::socket socket, net::ssl::context* tls) {
    if (tls != nullptr) {
      tls_.emplace(std::move(socket), *tls);
    } else {
      tcp_.emplace(std::move(socket));
    }
  }
  executor_type get_executor() { return socket().get_executor(); }
  tcp::socket& socket() { return tls_ ? tls_->next_layer() : *tcp_; }
  TlsStream* tls() { return tls_ ? &*tls_ : nullptr; }

  template <class Buffers, class Handler>
  void async_read_some(const Buffers& b, Handler&& h) {
    if (tls_) {
      tls_->async_read_some(b, std::forward<Handler>(h));
    } else {
      tcp_->async_read_some(b, std::forward<Handler>(h));
    }
  }
  template <class Buffers, class Handler>
  void async_write_some(const Buffers& b, Handler&& h) {
    if (tls_) {
      tls_->async_write_some(b, std::forward<Handler>(h));
    } else {
      tcp_->async_write_some(b, std::forward<Handler>(h));
    }
  }

 private:
  std::optional<tcp::socket> tcp_;
  std::optional<TlsStream> tls_;
};

}  // namespace

class Session;

// Everything behind the Server interface. Member order is destruction order in reverse: the
// io_contexts (whose queued handlers own the sessions) go before the registry sessions leave on
// destruction.
struct Server::Impl {
  explicit Impl(ServerOptions o) : options(std::move(o)) {
    for (int i = 0; i < options.workers; ++i) iocs.push_back(std::make_unique<net::io_context>(1));
  }

  // What a connection does with a parsed request header: nullopt to go on reading the body, or the
  // error response that ends the connection. Sets *body_limit.
  std::optional<Response> CheckHeader(const BeastRequest& h, bool chunked,
                                      std::optional<uint64_t> content_length, size_t header_bytes,
                                      uint64_t* body_limit);
  // Routes a complete request to its handler (or 404/405); never throws.
  Response Dispatch(BeastRequest&& msg, const std::string& peer, const PeerCertificate& cert);
  // Maps a read error to the response a connection sends before it closes (nullopt: close
  // silently).
  std::optional<Response> ReadError(const error_code& ec, bool timed_out, bool got_bytes,
                                    bool first);
  Handler Lookup(const std::string& method, const std::string& path, std::string* allow) const;

  void Accept();
  void OnAccept(const error_code& ec, tcp::socket socket);
  void Register(Session* s);
  void Unregister(Session* s);

  const ServerOptions options;
  std::string host;  // as in the address, e.g. "127.0.0.1", "[::1]", "localhost"
  std::atomic<int> port{0};
  std::vector<std::string> host_names;  // accepted in Host, lower-case

  mutable absl::Mutex routes_mu;
  std::map<std::pair<std::string, std::string>, Handler> routes ABSL_GUARDED_BY(routes_mu);

  absl::Mutex sessions_mu;
  std::list<Session*> sessions ABSL_GUARDED_BY(sessions_mu);

  struct Counters {
    std::atomic<uint64_t> accepted{0}, evicted{0}, refused{0}, requests{0}, timeouts{0},
        too_large{0}, bad_requests{0}, host_refused{0}, handler_errors{0}, tls_failures{0};
  } counters;

  std::unique_ptr<net::ssl::context> tls;  // null: plain HTTP
  std::atomic<bool> stopping{false};
  bool started = false;
  // One io_context per worker thread, connections dealt round-robin: a connection's handlers all
  // run on one thread (no strand, no cross-thread hand-off per event), as libmicrohttpd's thread
  // pool does. A slow handler delays only the connections of its own thread.
  std::vector<std::unique_ptr<net::io_context>> iocs;
  size_t next_ioc = 0;  // acceptor's thread only
  // Keep each thread's io_context running while it has no connection; released by Stop().
  std::vector<net::executor_work_guard<net::io_context::executor_type>> idle_guards;
  std::optional<tcp::acceptor> acceptor;
  std::optional<net::steady_timer> accept_retry;
  std::vector<std::thread> threads;
  std::atomic<int> running{0};
  absl::Notification all_returned;
};

namespace {

// Every response leaves through here: the same headers on each, keep-alive as decided.
void BuildResponse(Response&& r, bool keep_alive, bhttp::response<bhttp::string_body>* out) {
  *out = {};
  out->version(11);
  // A handler's status outside 100..599 is a bug of ours; Beast would throw on it.
  out->result(r.status >= 100 && r.status <= 599 ? static_cast<unsigned>(r.status) : 500u);
  out->set(bhttp::field::content_type, r.content_type);
  out->set(bhttp::field::cache_control, "no-store");
  out->set("X-Content-Type-Options", "nosniff");
  for (auto& [k, v] : r.headers) out->insert(k, v);
  out->body() = std::move(r.body);
  out->keep_alive(keep_alive);
  out->prepare_payload();
}

}  // namespace

// One connection. Its socket and timer belong to one worker's io_context, run by that one thread:
// every handler here runs there, so nothing here needs a lock (Close() posts to it from elsewhere).
class Session : public std::enable_shared_from_this<Session> {
 public:
  static constexpr size_t kReadChunk = 4096;

  Session(Server::Impl* srv, tcp::socket socket, std::string peer)
      : srv_(srv),
        stream_(std::move(socket), srv->tls.get()),
        timer_(stream_.get_executor()),
        buffer_(srv->options.max_header_bytes + 8192),
        peer_(std::move(peer)) {}
  ~Session() { srv_->Unregister(this); }

  void Start() {
    srv_->Register(this);
    net::post(stream_.get_executor(), [self = shared_from_this()] {
      if (self->stream_.tls()) return self->Handshake();
      self->ReadHeader();
    });
  }

  // From any thread: close the connection (eviction, shutdown).
  void Close() {
    closing_.store(true);
    net::post(stream_.get_executor(), [self = shared_from_this()] { self->Shut(); });
  }

  bool busy() const { return busy_.load(); }
  bool closing() const { return closing_.load(); }
  int64_t waiting_since() const { return waiting_since_.load(); }
  std::list<Session*>::iterator registry_pos;

 private:
  void Arm(absl::Duration d) {
    timed_out_ = false;
    timer_.expires_after(ToChrono(d));
    timer_.async_wait([self = shared_from_this()](const error_code& ec) {
      // Cancelled, or re-armed after this expiry was already queued.
      if (ec || self->timer_.expiry() > std::chrono::steady_clock::now()) return;
      self->timed_out_ = true;
      error_code ignored;
      self->stream_.socket().cancel(ignored);
    });
  }

  // TLS: the handshake runs inside the first request's deadline, so a client that stalls or
  // trickles it is cut off like a slowloris one. A failed handshake closes silently (there is no
  // channel to answer on); it is counted.
  void Handshake() {
    if (closing_.load() || srv_->stopping.load()) return Shut();
    Arm(srv_->options.io_timeout);
    stream_.tls()->async_handshake(net::ssl::stream_base::server, [self = shared_from_this()](
                                                                      const error_code& ec) {
      if (ec) {
        (self->timed_out_ ? self->srv_->counters.timeouts : self->srv_->counters.tls_failures)++;
        return self->Shut();
      }
      self->cert_ = VerifiedPeer(self->stream_.tls()->native_handle());
      self->ReadHeader(/*arm=*/false);
    });
  }

  // `arm` false: the deadline armed for the handshake goes on covering the first request.
  void ReadHeader(bool arm = true) {
    if (closing_.load() || srv_->stopping.load()) return Shut();
    busy_.store(false);
    waiting_since_.store(SteadyNanos());
    const ServerOptions& o = srv_->options;
    parser_.emplace();
    parser_->header_limit(static_cast<uint32_t>(std::min(o.max_header_bytes, o.max_request_bytes)));
    parser_->body_limit(o.max_request_bytes);
    if (arm) Arm(o.io_timeout);  // the whole request, header and body, within one deadline
    // Room for a whole ordinary request in one read (into an empty buffer Beast reads 512 bytes,
    // and a request with a token needs two reads then): kReadChunk per connection, idle or not.
    buffer_.reserve(kReadChunk);
    bhttp::async_read_header(
        stream_, buffer_, *parser_,
        [self = shared_from_this()](const error_code& ec, size_t n) { self->OnHeader(ec, n); });
  }

  void OnHeader(const error_code& ec, size_t header_bytes) {
    if (ec) return OnReadError(ec);
    uint64_t body_limit = 0;
    std::optional<Response> refused =
        srv_->CheckHeader(parser_->get(), parser_->chunked(), Std(parser_->content_length()),
                          header_bytes, &body_limit);
    if (refused) return Write(std::move(*refused), /*keep_alive=*/false, /*drain=*/true);
    parser_->body_limit(body_limit);
    if (!parser_->is_done() &&
        absl::EqualsIgnoreCase(AV(SV(parser_->get()[bhttp::field::expect])), "100-continue")) {
      auto cont =
          std::make_shared<bhttp::response<bhttp::empty_body>>(bhttp::status::continue_, 11);
      bhttp::async_write(stream_, *cont,
                         [self = shared_from_this(), cont](const error_code& ec, size_t) {
                           if (ec) return self->OnReadError(ec);
                           self->ReadBody();
                         });
      return;
    }
    ReadBody();
  }

  void ReadBody() {
    bhttp::async_read(stream_, buffer_, *parser_,
                      [self = shared_from_this()](const error_code& ec, size_t) {
                        if (ec) return self->OnReadError(ec);
                        self->Handle();
                      });
  }

  void OnReadError(const error_code& ec) {
    if (closing_.load()) return Shut();
    std::optional<Response> r =
        srv_->ReadError(ec, timed_out_, buffer_.size() > 0 || parser_->got_some(), first_);
    if (!r) return Shut();
    // After a timeout the client may be gone or stuck: the reply gets a short deadline of its own.
    Write(std::move(*r), /*keep_alive=*/false, /*drain=*/!timed_out_);
  }

  void Handle() {
    busy_.store(true);
    timer_.cancel();
    const bool keep = parser_->get().keep_alive() && !srv_->stopping.load();
    Response r = srv_->Dispatch(parser_->release(), peer_, cert_);
    parser_.reset();
    first_ = false;
    Write(std::move(r), keep, /*drain=*/true);
  }

  void Write(Response r, bool keep_alive, bool drain) {
    busy_.store(true);
    BuildResponse(std::move(r), keep_alive, &res_);
    Arm(timed_out_ ? std::min(srv_->options.io_timeout, absl::Milliseconds(500))
                   : srv_->options.io_timeout);
    bhttp::async_write(
        stream_, res_,
        [self = shared_from_this(), keep_alive, drain](const error_code& ec, size_t) {
          self->res_ = {};  // an idle connection keeps no response
          if (ec || self->closing_.load()) return self->Shut();
          if (!keep_alive) return drain ? self->Drain() : self->Shut();
          // The buffer of a large request is not kept through the idle time that follows.
          if (self->buffer_.size() == 0 && self->buffer_.capacity() > 2 * kReadChunk) {
            self->buffer_.shrink_to_fit();
          }
          self->ReadHeader();
        });
  }

  // After an early error reply the client may still be sending; closing with unread data makes the
  // kernel send RST, which can destroy the reply before the client reads it. Half-close and read a
  // bounded amount for a bounded time first. Over TLS the half-close is a close_notify, and OpenSSL
  // reads what the client still sends (discarding it) until the client's own close_notify or EOF.
  void Drain() {
    Arm(absl::Milliseconds(500));
    if (Stream::TlsStream* tls = stream_.tls()) {
      tls->async_shutdown([self = shared_from_this()](const error_code&) { self->Shut(); });
      return;
    }
    error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
    drained_ = 0;
    DrainSome();
  }
  void DrainSome() {
    if (!drain_buf_) drain_buf_ = std::make_unique<std::array<char, 8192>>();
    stream_.socket().async_read_some(
        net::buffer(*drain_buf_), [self = shared_from_this()](const error_code& ec, size_t n) {
          self->drained_ += n;
          if (ec || self->drained_ > (1u << 20) || self->closing_.load()) return self->Shut();
          self->DrainSome();
        });
  }

  void Shut() {
    error_code ignored;
    timer_.cancel();
    tcp::socket& socket = stream_.socket();
    if (socket.is_open()) {
      socket.shutdown(tcp::socket::shutdown_both, ignored);
      socket.close(ignored);
    }
  }

  Server::Impl* const srv_;
  Stream stream_;
  net::steady_timer timer_;
  boost::beast::flat_buffer buffer_;
  std::optional<Parser> parser_;
  bhttp::response<bhttp::string_body> res_;
  std::unique_ptr<std::array<char, 8192>> drain_buf_;
  size_t drained_ = 0;
  const std::string peer_;
  PeerCertificate cert_;  // TLS: the client certificate the handshake verified
  bool first_ = true;
  bool timed_out_ = false;
  std::atomic<bool> busy_{false};
  std::atomic<bool> closing_{false};
  // From construction, not from the first ReadHeader (posted to the worker): a session registered
  // but not yet started must not look like the one that has waited longest, or a flood of new
  // connections evicts every newcomer before it is read.
  std::atomic<int64_t> waiting_since_{SteadyNanos()};
};

std::string Request::Header(std::string_view name) const {
  std::string want = absl::AsciiStrToLower(absl::string_view(name.data(), name.size()));
  for (const auto& [k, v] : headers) {
    if (k == want) return v;
  }
  return "";
}

// ---- Server::Impl
// ---------------------------------------------------------------------------------

std::optional<Response> Server::Impl::CheckHeader(const BeastRequest& h, bool chunked,
                                                  std::optional<uint64_t> content_length,
                                                  size_t header_bytes, uint64_t* body_limit) {
  auto refuse = [](std::atomic<uint64_t>& counter, int status, std::string_view msg) {
    counter++;
    return Error(status, msg);
  };
  // Host first: a request for another server is refused before anything else about it is looked at.
  const size_t hosts = h.count(bhttp::field::host);
  if (hosts > 1) return refuse(counters.bad_requests, 400, "more than one Host header");
  if (hosts == 0 && h.version() >= 11) {
    return refuse(counters.bad_requests, 400, "missing Host header (required in HTTP/1.1)");
  }
  if (hosts == 1) {
    std::string_view v = SV(h[bhttp::field::host]);
    if (!HostAllowed(v, host_names, port.load())) {
      return refuse(
          counters.host_refused, 421,
          absl::StrCat("Host '", Printable(v), "' is not a name of this server (accepted: ",
                       absl::StrJoin(host_names, ", "), ", with or without port ", port.load(),
                       "; more names: http_hosts in writd.yaml)"));
    }
  }
  if (chunked)
    return refuse(counters.bad_requests, 411,
                  "chunked bodies are not accepted; send Content-Length");
  const uint64_t max = options.max_request_bytes;
  if (header_bytes > max || content_length.value_or(0) > max - header_bytes) {
    return refuse(counters.too_large, 413, "request too large");
  }
  *body_limit = max - header_bytes;
  return std::nullopt;
}

std::optional<Response> Server::Impl::ReadError(const error_code& ec, bool timed_out,
                                                bool got_bytes, bool first) {
  if (timed_out) {
    counters.timeouts++;
    // A keep-alive connection that simply stayed idle is closed; a request that did not arrive in
    // time is told so.
    if (got_bytes || first) return Error(408, "request timeout");
    return std::nullopt;
  }
  if (ec == bhttp::error::header_limit || ec == net::error::no_buffer_space ||
      ec == bhttp::error::buffer_overflow) {
    counters.too_large++;
    return Error(431, "request header fields too large");
  }
  if (ec == bhttp::error::body_limit) {
    counters.too_large++;
    return Error(413, "request too large");
  }
  // end_of_stream: closed between requests; partial_message: closed mid-request. Any other error of
  // the parser's category is a malformed request; anything else (reset, cancelled) ends silently.
  static const boost::system::error_category& parser_errors =
      bhttp::make_error_code(bhttp::error::need_more).category();
  if (ec.category() == parser_errors && ec != bhttp::error::end_of_stream &&
      ec != bhttp::error::partial_message) {
    counters.bad_requests++;
    return Error(400, absl::StrCat("malformed request: ", ec.message()));
  }
  return std::nullopt;
}

Handler Server::Impl::Lookup(const std::string& method, const std::string& path,
                             std::string* allow) const {
  absl::MutexLock l(&routes_mu);
  Handler found;
  for (const auto& [key, h] : routes) {
    if (key.second != path) continue;
    absl::StrAppend(allow, allow->empty() ? "" : ", ", key.first);
    if (key.first == method) found = h;
  }
  return found;
}

Response Server::Impl::Dispatch(BeastRequest&& msg, const std::string& peer,
                                const PeerCertificate& cert) {
  Request req;
  req.method = std::string(SV(msg.method_string()));
  std::string_view target = SV(msg.target());
  if (target.empty() || target.front() != '/') {
    counters.bad_requests++;
    return Error(400, "request target must be a path (origin-form)");
  }
  const size_t q = target.find('?');
  auto path = UrlDecode(target.substr(0, q), /*plus_is_space=*/false);
  if (!path.ok()) {
    counters.bad_requests++;
    return Error(400, "malformed path");
  }
  req.path = std::move(*path);
  if (q != std::string_view::npos) req.query = std::string(target.substr(q + 1));
  for (const auto& f : msg) {
    std::string_view name = SV(f.name_string());
    req.headers.emplace_back(absl::AsciiStrToLower(absl::string_view(name.data(), name.size())),
                             std::string(SV(f.value())));
  }
  req.body = std::move(msg.body());
  req.peer = peer;
  req.client_verified = cert.verified;
  req.client_identity = cert.identity;
  counters.requests++;
  std::string allow;
  Handler h = Lookup(req.method, req.path, &allow);
  if (!h) {
    if (allow.empty()) return Error(404, "not found");
    Response r = Error(405, "method not allowed");
    r.headers.emplace_back("Allow", allow);
    return r;
  }
  try {
    return h(req);
  } catch (const std::exception& e) {
    counters.handler_errors++;
    Log()->error("http: {} {}: handler failed: {}", req.method, req.path, e.what());
    return Error(500, "internal error");
  }
}

void Server::Impl::Register(Session* s) {
  absl::MutexLock l(&sessions_mu);
  sessions.push_front(s);
  s->registry_pos = sessions.begin();
}

void Server::Impl::Unregister(Session* s) {
  absl::MutexLock l(&sessions_mu);
  sessions.erase(s->registry_pos);
}

void Server::Impl::Accept() {
  net::io_context& target = *iocs[next_ioc++ % iocs.size()];
  acceptor->async_accept(target, [this](const error_code& ec, tcp::socket socket) {
    OnAccept(ec, std::move(socket));
  });
}

void Server::Impl::OnAccept(const error_code& ec, tcp::socket socket) {
  if (stopping.load() || !acceptor->is_open()) return;
  if (ec) {
    // Out of descriptors or memory: count it and pause rather than spin on the error.
    counters.refused++;
    static std::atomic<int64_t> last_log{0};
    if (SteadyNanos() - last_log.load() > 10'000'000'000) {
      last_log.store(SteadyNanos());
      Log()->warn("http: accept failed: {} (writ_http_connections_refused_total counts them)",
                  ec.message());
    }
    accept_retry->expires_after(std::chrono::milliseconds(100));
    accept_retry->async_wait([this](const error_code& e) {
      if (!e && !stopping.load()) Accept();
    });
    return;
  }
  counters.accepted++;
  // At the cap, the connection that has waited longest for a request makes room. Connections whose
  // handler runs are never chosen; there are at most `workers` of them. The victim is closed (and
  // possibly destroyed, which takes sessions_mu) outside the lock.
  std::shared_ptr<Session> victim;
  {
    absl::MutexLock l(&sessions_mu);
    size_t live = 0;
    Session* oldest = nullptr;
    for (Session* s : sessions) {
      if (s->closing()) continue;
      live++;
      if (!s->busy() && (!oldest || s->waiting_since() < oldest->waiting_since())) oldest = s;
    }
    if (live >= options.max_connections && oldest) victim = oldest->weak_from_this().lock();
  }
  if (victim) {
    victim->Close();
    counters.evicted++;
    victim.reset();
  }
  error_code pe;
  tcp::endpoint remote = socket.remote_endpoint(pe);
  std::string peer = pe ? "?" : absl::StrCat(remote.address().to_string(), ":", remote.port());
  CloseOnExec(socket.native_handle());
  std::make_shared<Session>(this, std::move(socket), std::move(peer))->Start();
  Accept();
}

// ---- Server
// ---------------------------------------------------------------------------------------

Server::Server(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

absl::StatusOr<std::unique_ptr<Server>> Server::Create(ServerOptions options) {
  if (options.workers < 1 || options.workers > 64) {
    return absl::InvalidArgumentError(
        absl::StrCat("http: workers must be 1..64, got ", options.workers));
  }
  if (options.max_connections < static_cast<size_t>(options.workers) + 8 ||
      options.max_connections > 65536) {
    return absl::InvalidArgumentError(absl::StrCat(
        "http: max_connections must be workers + 8 .. 65536, got ", options.max_connections));
  }
  if (options.max_header_bytes < 1024 || options.max_request_bytes < options.max_header_bytes) {
    return absl::InvalidArgumentError(
        "http: max_header_bytes must be at least 1024 and at most max_request_bytes");
  }
  if (options.io_timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("http: io_timeout must be positive");
  }
  const std::string a = options.address;
  size_t colon = a.rfind(':');
  int port = 0;
  if (colon == std::string::npos || !absl::SimpleAtoi(a.substr(colon + 1), &port) || port < 0 ||
      port > 65535) {
    return absl::InvalidArgumentError(absl::StrCat("http: address '", a, "' is not host:port"));
  }
  std::string host = a.substr(0, colon);
  tcp::endpoint ep;
  if (!ParseHost(host, &ep)) {
    return absl::InvalidArgumentError(
        absl::StrCat("http: address '", a, "' is not an IP address (or localhost) and port"));
  }
  // Tokens cross this port (introspection, revocation): in clear only where no other host listens.
  if (!ep.address().is_loopback() && !options.tls.enabled()) {
    return absl::InvalidArgumentError(
        absl::StrCat("http: address '", a,
                     "' is not a loopback address: serving other hosts needs TLS (tls.cert and "
                     "tls.key)"));
  }
  std::unique_ptr<net::ssl::context> tls;
  if (options.tls.enabled()) {
    auto made = MakeServerTlsContext(options.tls);
    if (!made.ok()) return made.status();
    tls = std::move(*made);
  }
  std::vector<std::string> names = {
      absl::AsciiStrToLower(ep.address().is_v6() ? absl::StrCat("[", ep.address().to_string(), "]")
                                                 : ep.address().to_string()),
      "localhost"};
  for (const auto& n : options.allowed_hosts) {
    if (n.empty() || n.find_first_of(":/ \t@") != std::string::npos) {
      return absl::InvalidArgumentError(absl::StrCat(
          "http: allowed host '", Printable(n), "' is not a host name (no port, scheme or path)"));
    }
    names.push_back(absl::AsciiStrToLower(n));
  }
  auto impl = std::make_unique<Impl>(std::move(options));
  impl->host = host;
  impl->port = port;
  impl->host_names = std::move(names);
  impl->tls = std::move(tls);
  return std::unique_ptr<Server>(new Server(std::move(impl)));
}

Server::~Server() { Stop(); }

int Server::port() const { return impl_->port.load(); }

bool Server::tls() const { return impl_->tls != nullptr; }

std::string Server::address() const { return absl::StrCat(impl_->host, ":", impl_->port.load()); }

void Server::AddRoute(std::string method, std::string path, Handler handler) {
  absl::MutexLock l(&impl_->routes_mu);
  impl_->routes[{std::move(method), std::move(path)}] = std::move(handler);
}

absl::Status Server::Start() {
  Impl& s = *impl_;
  if (s.started) return absl::FailedPreconditionError("http: server already started");
  tcp::endpoint ep;
  ParseHost(s.host, &ep);
  ep.port(static_cast<uint16_t>(s.port.load()));
  error_code ec;
  s.acceptor.emplace(*s.iocs[0]);
  s.acceptor->open(ep.protocol(), ec);
  if (!ec) CloseOnExec(s.acceptor->native_handle());
  if (!ec) s.acceptor->set_option(net::socket_base::reuse_address(true), ec);
  if (!ec) s.acceptor->bind(ep, ec);
  if (ec) {
    s.acceptor.reset();
    return absl::UnavailableError(
        absl::StrCat("http: bind ", s.options.address, ": ", ec.message()));
  }
  s.acceptor->listen(512, ec);
  if (ec)
    return absl::UnavailableError(
        absl::StrCat("http: listen ", s.options.address, ": ", ec.message()));
  s.port = s.acceptor->local_endpoint().port();
  s.accept_retry.emplace(s.acceptor->get_executor());
  s.started = true;
  s.Accept();
  for (auto& ioc : s.iocs) s.idle_guards.emplace_back(ioc->get_executor());
  s.running = s.options.workers;
  for (int i = 0; i < s.options.workers; ++i) {
    s.threads.emplace_back([&s, i] {
      pthread_setname_np(pthread_self(), "writ-http");
      s.iocs[i]->run();
      if (--s.running == 0) s.all_returned.Notify();
    });
  }
  Log()->info("http: listening on {} ({})", address(),
              s.tls ? (s.options.tls.client_ca_file.empty() ? "TLS" : "TLS, client certificates")
                    : "plain HTTP");
  return absl::OkStatus();
}

void Server::Stop() {
  Impl& s = *impl_;
  if (!s.started || s.stopping.exchange(true)) return;
  net::post(s.acceptor->get_executor(), [&s] {
    error_code ignored;
    s.acceptor->close(ignored);
    s.accept_retry->cancel();
  });
  std::vector<std::shared_ptr<Session>> open;  // closed outside the lock their destructors take
  {
    absl::MutexLock l(&s.sessions_mu);
    for (Session* x : s.sessions) {
      if (auto sp = x->weak_from_this().lock()) open.push_back(std::move(sp));
    }
  }
  for (auto& sp : open) sp->Close();
  open.clear();
  for (auto& g : s.idle_guards) g.reset();
  // With the acceptor and every connection closed the threads run out of work; a handler still
  // running gets a grace period before the rest is abandoned.
  if (!s.all_returned.WaitForNotificationWithTimeout(absl::Seconds(3))) {
    for (auto& ioc : s.iocs) ioc->stop();
  }
  for (auto& t : s.threads) t.join();
  s.threads.clear();
}

ServerStats Server::stats() const {
  const auto& c = impl_->counters;
  ServerStats st;
  st.connections_accepted = c.accepted.load();
  st.connections_evicted = c.evicted.load();
  st.connections_refused = c.refused.load();
  st.requests = c.requests.load();
  st.timeouts = c.timeouts.load();
  st.too_large = c.too_large.load();
  st.bad_requests = c.bad_requests.load();
  st.host_refused = c.host_refused.load();
  st.handler_errors = c.handler_errors.load();
  st.tls_failures = c.tls_failures.load();
  absl::MutexLock l(&impl_->sessions_mu);
  st.connections_open = impl_->sessions.size();
  return st;
}

std::string Server::MetricsText() const {
  const ServerStats s = stats();
  std::string out;
  auto counter = [&out](const char* name, const char* help, uint64_t v) {
    absl::StrAppend(&out, "# HELP ", name, " ", help, "\n# TYPE ", name, " counter\n", name, " ", v,
                    "\n");
  };
  counter("writ_http_connections_accepted_total", "HTTP connections accepted.",
          s.connections_accepted);
  counter("writ_http_connections_evicted_total",
          "HTTP connections closed at max_connections to make room for a new one.",
          s.connections_evicted);
  counter("writ_http_connections_refused_total",
          "HTTP accepts that failed (e.g. out of descriptors).", s.connections_refused);
  counter("writ_http_requests_total", "HTTP requests routed (including 404 and 405).", s.requests);
  absl::StrAppend(&out,
                  "# HELP writ_http_requests_refused_total HTTP requests refused before routing.\n"
                  "# TYPE writ_http_requests_refused_total counter\n",
                  "writ_http_requests_refused_total{reason=\"timeout\"} ", s.timeouts, "\n",
                  "writ_http_requests_refused_total{reason=\"too_large\"} ", s.too_large, "\n",
                  "writ_http_requests_refused_total{reason=\"bad_request\"} ", s.bad_requests, "\n",
                  "writ_http_requests_refused_total{reason=\"host\"} ", s.host_refused, "\n");
  counter("writ_http_handler_errors_total", "HTTP handlers that failed (500).", s.handler_errors);
  counter("writ_http_tls_handshake_failures_total",
          "TLS handshakes that failed (not TLS, no common version or cipher, a client certificate "
          "the client CA does not vouch for).",
          s.tls_failures);
  absl::StrAppend(&out,
                  "# HELP writ_http_connections_open HTTP connections open now.\n"
                  "# TYPE writ_http_connections_open gauge\nwrit_http_connections_open ",
                  s.connections_open, "\n");
  return out;
}

std::string Server::ServeBytes(std::string_view bytes, const std::string& peer) {
  Impl& s = *impl_;
  const ServerOptions& o = s.options;
  Parser p;
  p.header_limit(static_cast<uint32_t>(std::min(o.max_header_bytes, o.max_request_bytes)));
  p.body_limit(o.max_request_bytes);
  p.eager(false);
  error_code ec;
  size_t off = 0;
  // Parses the header (whole = false) or the rest of the message; need_more = the bytes ran out.
  auto feed = [&](bool whole) {
    while (!p.is_done() && (whole || !p.is_header_done())) {
      if (off == bytes.size()) {
        ec = bhttp::error::need_more;
        return;
      }
      const size_t n = p.put(net::buffer(bytes.data() + off, bytes.size() - off), ec);
      off += n;
      if (ec == bhttp::error::need_more && n > 0) ec = {};
      if (ec) return;
    }
  };
  std::optional<Response> resp;
  feed(false);
  if (!ec) {
    uint64_t body_limit = 0;
    resp = s.CheckHeader(p.get(), p.chunked(), Std(p.content_length()), off, &body_limit);
    if (!resp) {
      p.body_limit(body_limit);
      p.eager(true);
      feed(true);
    }
  }
  bool keep = false;
  if (!resp && ec) {
    resp = s.ReadError(ec, /*timed_out=*/ec == bhttp::error::need_more, off > 0, /*first=*/true);
    if (!resp) return "";
  } else if (!resp) {
    keep = p.get().keep_alive();
    resp = s.Dispatch(p.release(), peer, PeerCertificate{});
  }
  bhttp::response<bhttp::string_body> res;
  BuildResponse(std::move(*resp), keep, &res);
  std::ostringstream os;
  os << res;
  return os.str();
}

}  // namespace writ::http
