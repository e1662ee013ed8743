// Fuzzes what writd parses itself around HTTP, behind Boost.Beast's parser (any local process,
// a task's agent included, can reach writd's HTTP port): bytes go through http::Server::ServeBytes
// — the parser and limits a connection uses, the Host check, the request target's %-decoding,
// routing — into the credential endpoints (form bodies; the bearer token of /introspect and
// /revoke: base64url, JSON, the ES256 check; JWKS; discovery). The server is never started: no
// socket, no thread.
//
// Inputs may name the token writd minted at start-up: "@TOKEN@" in the input is replaced by it and
// "@LEN@" by the length of what follows the header, so the fuzzer reaches the paths of an active
// token (claims, revocation) as well as a forged one.
//
// Invariants: every answer is an HTTP/1.1 status line with a 3-digit status (or nothing: a request
// that ends silently); UrlDecode(UrlEncode(x)) == x; a form re-encoded parses to the same map; a
// Host HostAllowed accepts is one of the server's names, with or without its port.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "creds/http_endpoints.h"
#include "creds/issuer.h"
#include "creds/keystore.h"
#include "creds/revocation_store.h"
#include "fuzz/fuzz_common.h"
#include "http/parse.h"
#include "http/server.h"

namespace {

using namespace writ;

struct World {
  std::string dir;
  std::unique_ptr<creds::KeyStore> keys;
  std::unique_ptr<creds::RevocationStore> revs;
  std::unique_ptr<creds::Issuer> issuer;
  std::unique_ptr<http::Server> server;
  std::string token;
};

World* MakeWorld() {
  auto* w = new World;
  // tmpfs where there is one: /revoke commits (and fsyncs) to SQLite.
  const std::string base = std::filesystem::exists("/dev/shm") ? "/dev/shm" : "/tmp";
  std::string tmpl = base + "/writ-fuzz-http-XXXXXX";
  w->dir = mkdtemp(tmpl.data());
  creds::KeyStoreOptions ko;
  ko.state_dir = w->dir;
  w->keys = std::move(*creds::KeyStore::Open(ko));
  w->revs = std::move(*creds::RevocationStore::Open(w->dir + "/revoked.db"));
  w->issuer = std::make_unique<creds::Issuer>(creds::IssuerOptions{"https://writ.local"},
                                              w->keys.get(), w->revs.get());
  http::ServerOptions o;
  o.address = "127.0.0.1:8181";
  o.allowed_hosts = {"writ.internal"};
  w->server = std::move(*http::Server::Create(o));
  creds::EndpointOptions eo;
  eo.base_url = "http://127.0.0.1:8181";
  creds::RegisterEndpoints(w->server.get(), w->issuer.get(), w->keys.get(), eo);
  w->server->AddRoute("GET", "/metrics", [](const http::Request& r) {
    http::Response resp;
    resp.body = absl::StrCat("writ_up 1\n# ", r.headers.size(), " headers\n");
    return resp;
  });
  creds::TaskClaims task{"t-fuzz",
                         "spiffe://example.org/agent/fuzz",
                         {"user:alice@example.org"},
                         "fuzz",
                         absl::Now() + absl::Hours(24)};
  w->token = w->issuer->Mint(task, {"https://db.example.org"})->token;
  static World* world = w;
  std::atexit([] {
    std::error_code ec;
    std::filesystem::remove_all(world->dir, ec);
  });
  return w;
}

void Check(bool ok) {
  if (!ok) abort();
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  writ::fuzz::QuietLogs();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static World* w = MakeWorld();
  std::string in(reinterpret_cast<const char*>(data), size);

  // Through the server, as a connection would.
  std::string req = absl::StrReplaceAll(in, {{"@TOKEN@", w->token}});
  if (size_t he = req.find("\r\n\r\n"); he != std::string::npos) {
    req = absl::StrReplaceAll(req, {{"@LEN@", std::to_string(req.size() - he - 4)}});
  }
  const std::string resp = w->server->ServeBytes(req);
  if (!resp.empty()) {
    Check(resp.rfind("HTTP/1.1 ", 0) == 0 && resp.size() >= 12);
    for (int i = 9; i < 12; ++i) Check(absl::ascii_isdigit(resp[i]));
  }

  // The parsers themselves, on the raw bytes.
  auto decoded = http::UrlDecode(in);
  Check(*http::UrlDecode(http::UrlEncode(in)) == in);
  if (decoded.ok()) Check(http::UrlEncode(*decoded).size() >= decoded->size());
  if (auto form = http::ParseForm(in); form.ok()) {
    std::string again;
    for (const auto& [k, v] : *form)
      absl::StrAppend(&again, again.empty() ? "" : "&", http::UrlEncode(k), "=",
                      http::UrlEncode(v));
    auto reparsed = http::ParseForm(again);
    Check(reparsed.ok() && *reparsed == *form);
  }
  const std::vector<std::string> names = {"127.0.0.1", "localhost", "writ.internal"};
  if (http::HostAllowed(in, names, 8181)) {
    std::string h = absl::AsciiStrToLower(in);
    if (size_t colon = h.rfind(':'); colon != std::string::npos) {
      const std::string port = h.substr(colon + 1);
      Check(!port.empty() && port.find_first_not_of("0123456789") == std::string::npos &&
            std::stoul(port) == 8181);
      h.resize(colon);
    }
    if (!h.empty() && h.back() == '.') h.pop_back();
    Check(h == "127.0.0.1" || h == "localhost" || h == "writ.internal");
  }
  return 0;
}
