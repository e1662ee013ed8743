#include "daemon/config.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <functional>
#include <optional>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "creds/http_endpoints.h"
#include "dns/resolver.h"
#include "intent/bundle.h"
#include "journal/journal.h"
#include "util/status_macros.h"
#include "util/util.h"

namespace writ::daemon {

absl::Status ValidateMode(const std::string& mode) {
  if (mode == "record" || mode == "monitor" || mode == "enforce") return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat("mode \"", mode, "\" is not one of record, monitor, enforce"));
}

absl::Status ValidateConsoleListen(const std::string& listen) {
  auto ss = dns::ParseServer(listen, 0, /*any_port=*/true);
  bool loopback = false;
  if (ss.ok() && ss->ss_family == AF_INET) {
    loopback = (ntohl(reinterpret_cast<const sockaddr_in*>(&*ss)->sin_addr.s_addr) >> 24) == 127;
  } else if (ss.ok() && ss->ss_family == AF_INET6) {
    loopback = IN6_IS_ADDR_LOOPBACK(&reinterpret_cast<const sockaddr_in6*>(&*ss)->sin6_addr);
  }
  const bool has_port =
      ss.ok() &&
      (ss->ss_family == AF_INET ? listen.find(':') != std::string::npos
                                : listen.front() == '[' && listen.find("]:") != std::string::npos);
  if (!loopback || !has_port) {
    return absl::InvalidArgumentError(absl::StrCat(
        "must be a loopback address and port (127.0.0.1:8484 or [::1]:8484; port 0: any free "
        "port), not \"",
        listen, "\": approvers on other machines reach it through an SSH tunnel or a proxy"));
  }
  return absl::OkStatus();
}

namespace {

std::string Where(const std::string& file, const YAML::Node& n, const std::string& field) {
  return absl::StrCat(file, ":", n.Mark().line + 1, ": ", field, ": ");
}

absl::Status Scalar(const std::string& file, const YAML::Node& n, const std::string& field,
                    std::string* out) {
  if (!n.IsScalar()) return absl::InvalidArgumentError(Where(file, n, field) + "must be a string");
  *out = n.Scalar();
  return absl::OkStatus();
}

// credentials: {revocation_alert_after: DURATION, providers: [{name, type, grants: [...],
// <param>: <string>...}]}. Every provider is
// built once here (MakeProvider, no connection) so a bad one is reported with its line.
absl::Status ParseCredentials(const std::string& file, const YAML::Node& v, Config* c) {
  if (!v.IsMap())
    return absl::InvalidArgumentError(Where(file, v, "credentials") + "must be a mapping");
  for (auto it = v.begin(); it != v.end(); ++it) {
    const std::string key = it->first.as<std::string>();
    const YAML::Node list = it->second;
    if (key == "revocation_alert_after") {
      std::string s;
      RETURN_IF_ERROR(Scalar(file, list, "credentials." + key, &s));
      auto d = ParseDuration(s);
      if (!d.ok() || *d < absl::ZeroDuration()) {
        return absl::InvalidArgumentError(Where(file, list, "credentials." + key) +
                                          "must be a duration (e.g. 5m; 0s disables the finding)");
      }
      c->revocation_alert_after = *d;
      continue;
    }
    if (key != "providers") {
      return absl::InvalidArgumentError(Where(file, it->first, "credentials." + key) +
                                        "unknown key");
    }
    if (!list.IsSequence()) {
      return absl::InvalidArgumentError(Where(file, list, "credentials.providers") +
                                        "must be a list");
    }
    for (size_t i = 0; i < list.size(); ++i) {
      const YAML::Node p = list[i];
      const std::string field = absl::StrCat("credentials.providers[", i, "]");
      if (!p.IsMap())
        return absl::InvalidArgumentError(Where(file, p, field) + "must be a mapping");
      creds::ProviderConfig pc;
      for (auto f = p.begin(); f != p.end(); ++f) {
        const std::string k = f->first.as<std::string>();
        const YAML::Node fv = f->second;
        const std::string sub = absl::StrCat(field, ".", k);
        if (k == "grants") {
          if (!fv.IsSequence())
            return absl::InvalidArgumentError(Where(file, fv, sub) + "must be a list");
          for (size_t g = 0; g < fv.size(); ++g) {
            std::string grant;
            RETURN_IF_ERROR(Scalar(file, fv[g], absl::StrCat(sub, "[", g, "]"), &grant));
            pc.grants.push_back(grant);
          }
          continue;
        }
        std::string s;
        RETURN_IF_ERROR(Scalar(file, fv, sub, &s));
        if (k == "name") {
          pc.name = s;
        } else if (k == "type") {
          pc.type = s;
        } else {
          pc.params[k] = s;
        }
      }
      if (pc.name.empty())
        return absl::InvalidArgumentError(Where(file, p, field + ".name") + "missing");
      for (const auto& other : c->credential_providers) {
        if (other.name == pc.name) {
          return absl::InvalidArgumentError(
              Where(file, p, field + ".name") +
              absl::StrCat("provider name \"", pc.name, "\" is used twice"));
        }
      }
      if (auto made = creds::MakeProvider(pc); !made.ok()) {
        return absl::InvalidArgumentError(Where(file, p, field) +
                                          std::string(made.status().message()));
      }
      c->credential_providers.push_back(std::move(pc));
    }
  }
  return absl::OkStatus();
}

absl::Status Bool(const std::string& file, const YAML::Node& n, const std::string& field,
                  bool* out) {
  if (n.IsScalar() && (n.Scalar() == "true" || n.Scalar() == "false")) {
    *out = n.Scalar() == "true";
    return absl::OkStatus();
  }
  return absl::InvalidArgumentError(Where(file, n, field) + "must be true or false");
}

// A list of strings at `field`, each checked by `ok` (else `want` is the error).
absl::Status StringList(const std::string& file, const YAML::Node& v, const std::string& field,
                        const std::function<bool(const std::string&)>& ok, const char* want,
                        std::vector<std::string>* out) {
  if (!v.IsSequence()) return absl::InvalidArgumentError(Where(file, v, field) + "must be a list");
  for (size_t i = 0; i < v.size(); ++i) {
    const std::string f = absl::StrCat(field, "[", i, "]");
    std::string s;
    RETURN_IF_ERROR(Scalar(file, v[i], f, &s));
    if (!ok(s)) return absl::InvalidArgumentError(Where(file, v[i], f) + want);
    out->push_back(s);
  }
  return absl::OkStatus();
}

// Whether ADDR:PORT's address is a loopback one; an error unless it is an IP literal (IPv6 in
// brackets) or localhost with a port.
absl::StatusOr<bool> LoopbackListen(const std::string& addr) {
  const size_t colon = addr.rfind(':');
  int port = -1;
  std::string host = colon == std::string::npos ? "" : addr.substr(0, colon);
  if (colon == std::string::npos || !absl::SimpleAtoi(addr.substr(colon + 1), &port) || port < 0 ||
      port > 65535) {
    return absl::InvalidArgumentError("must be ADDR:PORT (e.g. 127.0.0.1:8181, 0.0.0.0:8443)");
  }
  if (host == "localhost") return true;
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
    in6_addr a6{};
    if (inet_pton(AF_INET6, host.substr(1, host.size() - 2).c_str(), &a6) == 1) {
      return IN6_IS_ADDR_LOOPBACK(&a6) != 0;
    }
  }
  in_addr a4{};
  if (inet_pton(AF_INET, host.c_str(), &a4) == 1) return (ntohl(a4.s_addr) >> 24) == 127;
  return absl::InvalidArgumentError(absl::StrCat(
      "\"", addr, "\": the address must be an IP address ([v6] in brackets) or localhost"));
}

// http: ADDR:PORT, or {listen, issuer, tls: {cert, key, client_ca}, client_auth, client_ids} (see
// Config). Certificate files resolve against the config's directory and must be readable now; their
// contents are checked when the server starts.
// tls: {cert: FILE, key: FILE[, client_ca: FILE]} (client_ca only where `client_ca` is not null):
// readable PEM files, relative to the config file.
absl::Status ParseTls(const std::string& file, const YAML::Node& fv, const std::string& field,
                      std::string* cert, std::string* key, std::string* client_ca) {
  if (!fv.IsMap()) return absl::InvalidArgumentError(Where(file, fv, field) + "must be a mapping");
  for (auto t = fv.begin(); t != fv.end(); ++t) {
    const std::string tkey = t->first.as<std::string>();
    const std::string tfield = field + "." + tkey;
    std::string* out = tkey == "cert"        ? cert
                       : tkey == "key"       ? key
                       : tkey == "client_ca" ? client_ca
                                             : nullptr;
    if (out == nullptr)
      return absl::InvalidArgumentError(Where(file, t->first, tfield) + "unknown key");
    std::string s;
    RETURN_IF_ERROR(Scalar(file, t->second, tfield, &s));
    if (s.empty())
      return absl::InvalidArgumentError(Where(file, t->second, tfield) + "must not be empty");
    *out = ResolveAgainstConfig(file, s);
    if (access(out->c_str(), R_OK) != 0) {
      return absl::InvalidArgumentError(
          Where(file, t->second, tfield) +
          absl::StrCat("cannot read ", *out, ": ", std::strerror(errno)));
    }
  }
  if (cert->empty() || key->empty()) {
    return absl::InvalidArgumentError(Where(file, fv, field) +
                                      "needs both cert and key (PEM files)");
  }
  return absl::OkStatus();
}

absl::Status ParseHttp(const std::string& file, const YAML::Node& v, Config* c) {
  // Where each was written, for the checks that need all of them. emplace, never `=`: assigning a
  // yaml-cpp node overwrites the node it refers to.
  std::optional<YAML::Node> listen, client_auth, client_ids;
  if (v.IsScalar()) {
    c->http = v.Scalar();
    if (c->http.empty()) return absl::OkStatus();  // `http: ""`: off
  } else if (!v.IsMap()) {
    return absl::InvalidArgumentError(Where(file, v, "http") + "must be ADDR:PORT or a mapping");
  }
  for (auto it = v.begin(); v.IsMap() && it != v.end(); ++it) {
    const std::string key = it->first.as<std::string>();
    const YAML::Node fv = it->second;
    const std::string field = "http." + key;
    if (key == "listen") {
      RETURN_IF_ERROR(Scalar(file, fv, field, &c->http));
      listen.emplace(fv);
    } else if (key == "issuer") {
      RETURN_IF_ERROR(Scalar(file, fv, field, &c->http_issuer));
      if (auto h = creds::HttpsIssuerHost(c->http_issuer); !h.ok()) {
        return absl::InvalidArgumentError(Where(file, fv, field) +
                                          std::string(h.status().message()));
      }
    } else if (key == "tls") {
      RETURN_IF_ERROR(
          ParseTls(file, fv, field, &c->http_tls_cert, &c->http_tls_key, &c->http_tls_client_ca));
    } else if (key == "client_auth") {
      client_auth.emplace(fv);
      RETURN_IF_ERROR(StringList(
          file, fv, field, [](const std::string& s) { return s == "introspect" || s == "revoke"; },
          "must be introspect or revoke", &c->http_client_auth));
      for (auto& p : c->http_client_auth) p = "/" + p;
    } else if (key == "client_ids") {
      client_ids.emplace(fv);
      RETURN_IF_ERROR(StringList(
          file, fv, field, [](const std::string& s) { return !s.empty(); },
          "must be a certificate identity: a URI SAN (spiffe://...) or a subject CN",
          &c->http_client_ids));
    } else {
      return absl::InvalidArgumentError(Where(file, it->first, field) + "unknown key");
    }
  }
  const std::string listen_field = v.IsMap() ? "http.listen" : "http";
  if (c->http.empty() && v.IsMap()) {
    return absl::InvalidArgumentError(Where(file, v, "http.listen") + "missing (ADDR:PORT)");
  }
  auto loopback = LoopbackListen(c->http);
  if (!loopback.ok()) {
    return absl::InvalidArgumentError(Where(file, listen ? *listen : v, listen_field) +
                                      std::string(loopback.status().message()));
  }
  if (!*loopback && c->http_tls_cert.empty()) {
    return absl::InvalidArgumentError(
        Where(file, listen ? *listen : v, listen_field) +
        absl::StrCat(
            "\"", c->http,
            "\" is not a loopback address: serving other hosts needs http.tls (cert, key)"));
  }
  if (client_auth && c->http_tls_client_ca.empty()) {
    return absl::InvalidArgumentError(
        Where(file, *client_auth, "http.client_auth") +
        "needs http.tls.client_ca (the CA that issues the clients' certificates)");
  }
  if (client_ids && c->http_client_auth.empty()) {
    return absl::InvalidArgumentError(Where(file, *client_ids, "http.client_ids") +
                                      "has no effect without http.client_auth");
  }
  return absl::OkStatus();
}

// metrics: {bpf_program_stats: BOOL}
absl::Status ParseMetrics(const std::string& file, const YAML::Node& v, Config* c) {
  if (!v.IsMap())
    return absl::InvalidArgumentError(Where(file, v, "metrics") + "must be a mapping");
  for (auto it = v.begin(); it != v.end(); ++it) {
    const std::string key = it->first.as<std::string>();
    const YAML::Node fv = it->second;
    if (key == "bpf_program_stats") {
      RETURN_IF_ERROR(Bool(file, fv, "metrics." + key, &c->bpf_program_stats));
    } else {
      return absl::InvalidArgumentError(Where(file, it->first, "metrics." + key) + "unknown key");
    }
  }
  return absl::OkStatus();
}

// control: {group: NAME, admin_group: NAME}: who reaches the control socket and who may decide.
absl::Status ParseControl(const std::string& file, const YAML::Node& v, Config* c) {
  if (!v.IsMap())
    return absl::InvalidArgumentError(Where(file, v, "control") + "must be a mapping");
  for (auto it = v.begin(); it != v.end(); ++it) {
    const std::string key = it->first.as<std::string>();
    const YAML::Node fv = it->second;
    if (key != "group" && key != "admin_group") {
      return absl::InvalidArgumentError(Where(file, it->first, "control." + key) + "unknown key");
    }
    std::string name;
    RETURN_IF_ERROR(Scalar(file, fv, "control." + key, &name));
    std::optional<uint32_t> g = LookupGroup(name);
    if (!g) {
      return absl::InvalidArgumentError(
          Where(file, fv, "control." + key) +
          absl::StrCat("no group \"", name, "\" on this host (create it: groupadd --system ", name,
                       ")"));
    }
    (key == "group" ? c->control_gid : c->admin_gid) = static_cast<int>(*g);
  }
  return absl::OkStatus();
}

// redaction: {rules: PATH, key: PATH}. The rules file itself is parsed at start (Daemon::Start).
absl::Status ParseRedaction(const std::string& file, const YAML::Node& v, Config* c) {
  if (!v.IsMap())
    return absl::InvalidArgumentError(Where(file, v, "redaction") + "must be a mapping");
  for (auto it = v.begin(); it != v.end(); ++it) {
    const std::string key = it->first.as<std::string>();
    const YAML::Node fv = it->second;
    std::string s;
    if (key == "rules" || key == "key") {
      RETURN_IF_ERROR(Scalar(file, fv, "redaction." + key, &s));
      if (s.empty())
        return absl::InvalidArgumentError(Where(file, fv, "redaction." + key) +
                                          "must not be empty");
      (key == "rules" ? c->redaction_rules : c->redaction_key) = ResolveAgainstConfig(file, s);
    } else {
      return absl::InvalidArgumentError(Where(file, it->first, "redaction." + key) + "unknown key");
    }
  }
  return absl::OkStatus();
}

// policy_bundles: {public_keys: [PEM files]}: the Ed25519 keys whose signed bundles `writ policy
// apply` (and the fleet) may put in force. Each key is read and checked at load.
absl::Status ParsePolicyBundles(const std::string& file, const YAML::Node& v, Config* c) {
  if (!v.IsMap()) {
    return absl::InvalidArgumentError(Where(file, v, "policy_bundles") + "must be a mapping");
  }
  for (auto it = v.begin(); it != v.end(); ++it) {
    const std::string key = it->first.as<std::string>();
    const YAML::Node fv = it->second;
    if (key != "public_keys") {
      return absl::InvalidArgumentError(Where(file, it->first, "policy_bundles." + key) +
                                        "unknown key");
    }
    std::vector<std::string> files;
    RETURN_IF_ERROR(StringList(
        file, fv, "policy_bundles.public_keys", [](const std::string& f) { return !f.empty(); },
        "must be a file name", &files));
    if (files.empty()) {
      return absl::InvalidArgumentError(Where(file, fv, "policy_bundles.public_keys") +
                                        "must name at least one key");
    }
    c->bundle_keys.clear();
    for (size_t i = 0; i < files.size(); ++i) {
      const std::string path = ResolveAgainstConfig(file, files[i]);
      absl::StatusOr<std::vector<intent::BundleKey>> k = intent::LoadBundleKeys({path});
      if (!k.ok()) {
        return absl::InvalidArgumentError(
            Where(file, fv[i], absl::StrCat("policy_bundles.public_keys[", i, "]")) +
            std::string(k.status().message()));
      }
      c->bundle_keys.push_back(path);
    }
  }
  return absl::OkStatus();
}

// dns: {listen: ADDR:PORT, upstreams: [ip[:port]...], min_ttl: N, max_ttl: N, max_pins: N,
// upstream_timeout: DURATION}. The stub must listen on loopback: it answers tasks only.
absl::Status ParseDns(const std::string& file, const YAML::Node& v, Config* c) {
  if (!v.IsMap()) return absl::InvalidArgumentError(Where(file, v, "dns") + "must be a mapping");
  c->dns = true;
  for (auto it = v.begin(); it != v.end(); ++it) {
    const std::string key = it->first.as<std::string>();
    const YAML::Node fv = it->second;
    const std::string field = "dns." + key;
    std::string s;
    if (key == "listen") {
      RETURN_IF_ERROR(Scalar(file, fv, field, &s));
      auto ss = dns::ParseServer(s, 53, /*any_port=*/true);
      if (!ss.ok() || ss->ss_family != AF_INET ||
          (ntohl(reinterpret_cast<const sockaddr_in*>(&*ss)->sin_addr.s_addr) >> 24) != 127) {
        return absl::InvalidArgumentError(
            Where(file, fv, field) +
            absl::StrCat("must be an IPv4 loopback address and port (127.0.0.1:5353; port 0: "
                         "any free port), not \"",
                         s, "\""));
      }
      c->dns_listen = s;
    } else if (key == "upstreams") {
      if (!fv.IsSequence())
        return absl::InvalidArgumentError(Where(file, fv, field) + "must be a list");
      for (size_t i = 0; i < fv.size(); ++i) {
        const std::string f = absl::StrCat(field, "[", i, "]");
        RETURN_IF_ERROR(Scalar(file, fv[i], f, &s));
        if (auto ss = dns::ParseServer(s); !ss.ok()) {
          return absl::InvalidArgumentError(Where(file, fv[i], f) +
                                            std::string(ss.status().message()));
        }
        c->dns_upstreams.push_back(s);
      }
    } else if (key == "min_ttl" || key == "max_ttl" || key == "max_pins") {
      RETURN_IF_ERROR(Scalar(file, fv, field, &s));
      uint32_t n = 0;
      const uint32_t hi = key == "max_pins" ? 65536 : 86400;
      if (!absl::SimpleAtoi(s, &n) || n < 1 || n > hi) {
        return absl::InvalidArgumentError(Where(file, fv, field) +
                                          absl::StrCat("must be an integer between 1 and ", hi));
      }
      (key == "min_ttl" ? c->dns_min_ttl : key == "max_ttl" ? c->dns_max_ttl : c->dns_max_pins) = n;
    } else if (key == "upstream_timeout") {
      RETURN_IF_ERROR(Scalar(file, fv, field, &s));
      auto d = ParseDuration(s);
      if (!d.ok() || *d < absl::Milliseconds(10) || *d > absl::Seconds(30)) {
        return absl::InvalidArgumentError(Where(file, fv, field) +
                                          "must be a duration between 10ms and 30s");
      }
      c->dns_upstream_timeout = *d;
    } else {
      return absl::InvalidArgumentError(Where(file, it->first, field) + "unknown key");
    }
  }
  if (c->dns_min_ttl > c->dns_max_ttl) {
    return absl::InvalidArgumentError(
        Where(file, v, "dns") +
        absl::StrCat("min_ttl (", c->dns_min_ttl, ") is above max_ttl (", c->dns_max_ttl, ")"));
  }
  return absl::OkStatus();
}

// console: {listen: ADDR:PORT, url: URL, session_ttl: DURATION, login_ttl: DURATION,
// notify: {webhook: URL, ca_file: FILE, violations: BOOL}}.
absl::Status ParseConsole(const std::string& file, const YAML::Node& v, Config* c) {
  if (!v.IsMap())
    return absl::InvalidArgumentError(Where(file, v, "console") + "must be a mapping");
  // Where they were written (emplace: assigning a yaml-cpp node overwrites it).
  std::optional<YAML::Node> listen, url;
  for (auto it = v.begin(); it != v.end(); ++it) {
    const std::string key = it->first.as<std::string>();
    const YAML::Node fv = it->second;
    const std::string field = "console." + key;
    std::string s;
    if (key == "listen") {
      RETURN_IF_ERROR(Scalar(file, fv, field, &s));
      c->console = s;
      listen.emplace(fv);
    } else if (key == "tls") {
      RETURN_IF_ERROR(
          ParseTls(file, fv, field, &c->console_tls_cert, &c->console_tls_key, nullptr));
    } else if (key == "url") {
      RETURN_IF_ERROR(Scalar(file, fv, field, &s));
      if (!absl::StartsWith(s, "http://") && !absl::StartsWith(s, "https://")) {
        return absl::InvalidArgumentError(Where(file, fv, field) +
                                          "must be an http:// or https:// URL");
      }
      c->console_url = std::string(absl::StripSuffix(s, "/"));
      url.emplace(fv);
    } else if (key == "session_ttl" || key == "login_ttl") {
      RETURN_IF_ERROR(Scalar(file, fv, field, &s));
      auto d = ParseDuration(s);
      const absl::Duration hi = key == "session_ttl" ? absl::Hours(24) : absl::Hours(1);
      if (!d.ok() || *d < absl::Seconds(10) || *d > hi) {
        return absl::InvalidArgumentError(
            Where(file, fv, field) +
            absl::StrCat("must be a duration between 10s and ", absl::FormatDuration(hi)));
      }
      (key == "session_ttl" ? c->console_session_ttl : c->console_login_ttl) = *d;
    } else if (key == "notify") {
      if (!fv.IsMap())
        return absl::InvalidArgumentError(Where(file, fv, field) + "must be a mapping");
      for (auto nt = fv.begin(); nt != fv.end(); ++nt) {
        const std::string nkey = nt->first.as<std::string>();
        const std::string nfield = field + "." + nkey;
        if (nkey == "webhook") {
          RETURN_IF_ERROR(Scalar(file, nt->second, nfield, &s));
          if (!absl::StartsWith(s, "http://") && !absl::StartsWith(s, "https://")) {
            return absl::InvalidArgumentError(Where(file, nt->second, nfield) +
                                              "must be an http:// or https:// URL");
          }
          c->console_webhook = s;
        } else if (nkey == "ca_file") {
          RETURN_IF_ERROR(Scalar(file, nt->second, nfield, &s));
          c->console_webhook_ca = ResolveAgainstConfig(file, s);
        } else if (nkey == "violations") {
          RETURN_IF_ERROR(Scalar(file, nt->second, nfield, &s));
          if (s != "true" && s != "false") {
            return absl::InvalidArgumentError(Where(file, nt->second, nfield) +
                                              "must be true or false");
          }
          c->console_notify_violations = s == "true";
        } else {
          return absl::InvalidArgumentError(Where(file, nt->first, nfield) + "unknown key");
        }
      }
    } else {
      return absl::InvalidArgumentError(Where(file, it->first, field) + "unknown key");
    }
  }
  if (c->console.empty()) {
    return absl::InvalidArgumentError(Where(file, v, "console") + "console.listen is required");
  }
  // Loopback, or any address over TLS: approvers on other hosts then reach it directly.
  if (absl::Status st = ValidateConsoleListen(c->console); !st.ok()) {
    auto ss = dns::ParseServer(c->console, 0, /*any_port=*/true);
    if (c->console_tls_cert.empty() || !ss.ok()) {
      return absl::InvalidArgumentError(
          Where(file, *listen, "console.listen") + std::string(st.message()) +
          (ss.ok() ? " (or serve it over TLS: console.tls: {cert: FILE, key: FILE})" : ""));
    }
  }
  if (!c->console_tls_cert.empty() && !c->console_url.empty() &&
      !absl::StartsWith(c->console_url, "https://")) {
    return absl::InvalidArgumentError(Where(file, *url, "console.url") +
                                      "must be an https:// URL when console.tls is set");
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<Config> LoadConfig(const std::string& path) {
  Config c;
  c.config_file = path;
  YAML::Node root;
  try {
    root = YAML::LoadFile(path);
  } catch (const YAML::BadFile&) {
    return absl::NotFoundError(absl::StrCat(path, ": cannot read config file"));
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(path, ":", e.mark.line + 1, ": ", e.msg));
  }
  if (root.IsNull()) return c;
  if (!root.IsMap()) return absl::InvalidArgumentError(path + ":1: config must be a mapping");
  auto resolve = [&path](const std::string& p) { return ResolveAgainstConfig(path, p); };
  for (auto it = root.begin(); it != root.end(); ++it) {
    std::string key = it->first.as<std::string>();
    // A copy, not a reference: yaml-cpp's iterator yields a temporary pair (ASan:
    // stack-use-after-scope).
    const YAML::Node v = it->second;
    std::string s;
    if (key == "mode") {
      RETURN_IF_ERROR(Scalar(path, v, key, &c.mode));
      if (!ValidateMode(c.mode).ok()) {
        return absl::InvalidArgumentError(Where(path, v, key) +
                                          "must be one of record, monitor, enforce");
      }
    } else if (key == "policies") {
      RETURN_IF_ERROR(Scalar(path, v, key, &s));
      c.policies_dir = resolve(s);
    } else if (key == "state_dir") {
      RETURN_IF_ERROR(Scalar(path, v, key, &s));
      c.state_dir = resolve(s);
    } else if (key == "run_dir") {
      RETURN_IF_ERROR(Scalar(path, v, key, &s));
      c.run_dir = resolve(s);
    } else if (key == "events") {
      RETURN_IF_ERROR(Scalar(path, v, key, &s));
      c.events = resolve(s);
    } else if (key == "trust_domain") {
      RETURN_IF_ERROR(Scalar(path, v, key, &c.trust_domain));
    } else if (key == "cgroup_subtree") {
      RETURN_IF_ERROR(Scalar(path, v, key, &c.cgroup_subtree));
    } else if (key == "bpf_lsm") {
      RETURN_IF_ERROR(Scalar(path, v, key, &c.bpf_lsm));
      if (c.bpf_lsm != "auto" && c.bpf_lsm != "off") {
        return absl::InvalidArgumentError(Where(path, v, key) + "must be auto or off");
      }
    } else if (key == "bpf_pin_dir") {
      RETURN_IF_ERROR(Scalar(path, v, key, &c.bpf_pin_dir));
    } else if (key == "http") {
      RETURN_IF_ERROR(ParseHttp(path, v, &c));
    } else if (key == "http_hosts") {
      if (!v.IsSequence())
        return absl::InvalidArgumentError(Where(path, v, key) + "must be a list");
      for (size_t i = 0; i < v.size(); ++i) {
        const std::string field = absl::StrCat(key, "[", i, "]");
        RETURN_IF_ERROR(Scalar(path, v[i], field, &s));
        if (s.empty() || s.find_first_of(":/ \t@") != std::string::npos) {
          return absl::InvalidArgumentError(Where(path, v[i], field) +
                                            "must be a host name (no port, scheme or path)");
        }
        c.http_hosts.push_back(s);
      }
    } else if (key == "on_daemon_loss") {
      RETURN_IF_ERROR(Scalar(path, v, key, &c.on_daemon_loss));
      if (c.on_daemon_loss != "freeze" && c.on_daemon_loss != "continue") {
        return absl::InvalidArgumentError(Where(path, v, key) + "must be freeze or continue");
      }
    } else if (key == "ring_buffer_bytes") {
      RETURN_IF_ERROR(Scalar(path, v, key, &s));
      uint64_t n = 0;
      if (!absl::SimpleAtoi(s, &n) || n < 4096 || (n & (n - 1)) != 0 || n > (1u << 30)) {
        return absl::InvalidArgumentError(Where(path, v, key) +
                                          "must be a power of two between 4096 and 1073741824");
      }
      c.ring_buffer_bytes = static_cast<uint32_t>(n);
    } else if (key == "drain_interval" || key == "housekeeping_interval") {
      RETURN_IF_ERROR(Scalar(path, v, key, &s));
      auto d = ParseDuration(s);
      if (!d.ok() || *d < absl::Milliseconds(1) || *d > absl::Seconds(1)) {
        return absl::InvalidArgumentError(Where(path, v, key) +
                                          "must be a duration between 1ms and 1s");
      }
      (key == "drain_interval" ? c.drain_interval : c.housekeeping_interval) = *d;
    } else if (key == "drain_spin") {
      RETURN_IF_ERROR(Scalar(path, v, key, &s));
      auto d = ParseDuration(s);
      if (!d.ok() || *d < absl::ZeroDuration() || *d > absl::Milliseconds(1)) {
        return absl::InvalidArgumentError(Where(path, v, key) +
                                          "must be a duration between 0s and 1ms (e.g. 20us)");
      }
      c.drain_spin = *d;
    } else if (key == "pipeline_nice") {
      RETURN_IF_ERROR(Scalar(path, v, key, &s));
      int n = 0;
      if (!absl::SimpleAtoi(s, &n) || n < -20 || n > 19) {
        return absl::InvalidArgumentError(Where(path, v, key) +
                                          "must be an integer between -20 and 19");
      }
      c.pipeline_nice = n;
    } else if (key == "journal") {
      RETURN_IF_ERROR(Scalar(path, v, key, &s));
      c.journal = s == "off" ? s : resolve(s);
    } else if (key == "journal_fsync") {
      RETURN_IF_ERROR(Scalar(path, v, key, &c.journal_fsync));
      if (auto p = journal::ParseFsyncPolicy(c.journal_fsync); !p.ok()) {
        return absl::InvalidArgumentError(Where(path, v, key) + std::string(p.status().message()));
      }
    } else if (key == "credentials") {
      RETURN_IF_ERROR(ParseCredentials(path, v, &c));
    } else if (key == "control") {
      RETURN_IF_ERROR(ParseControl(path, v, &c));
    } else if (key == "metrics") {
      RETURN_IF_ERROR(ParseMetrics(path, v, &c));
    } else if (key == "redaction") {
      RETURN_IF_ERROR(ParseRedaction(path, v, &c));
    } else if (key == "dns") {
      RETURN_IF_ERROR(ParseDns(path, v, &c));
    } else if (key == "policy_bundles") {
      RETURN_IF_ERROR(ParsePolicyBundles(path, v, &c));
    } else if (key == "console") {
      RETURN_IF_ERROR(ParseConsole(path, v, &c));
    } else if (key == "fleet") {
      RETURN_IF_ERROR(fleet::ParseFleetConfig(path, v, &c.fleet));
    } else if (key == "sinks") {
      if (!v.IsSequence())
        return absl::InvalidArgumentError(Where(path, v, key) + "must be a list");
      c.sinks = v;
    } else {
      return absl::InvalidArgumentError(Where(path, it->first, key) + "unknown key");
    }
  }
  return c;
}

}  // namespace writ::daemon
