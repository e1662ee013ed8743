#include "fleet/config.h"

#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "util/util.h"

namespace writ::fleet {
namespace {

std::string Where(const std::string& file, const YAML::Node& n, const std::string& field) {
  return absl::StrCat(file, ":", n.Mark().line + 1, ": fleet", field.empty() ? "" : ".", field,
                      ": ");
}

absl::Status Err(const std::string& file, const YAML::Node& n, const std::string& field,
                 const std::string& msg) {
  return absl::InvalidArgumentError(Where(file, n, field) + msg);
}

absl::Status String(const std::string& file, const YAML::Node& n, const std::string& field,
                    std::string* out) {
  if (!n.IsScalar() || n.Scalar().empty()) return Err(file, n, field, "must be a non-empty string");
  *out = n.Scalar();
  return absl::OkStatus();
}

// A credential or certificate file: resolved against the config's directory, readable now.
absl::Status File(const std::string& file, const YAML::Node& n, const std::string& field,
                  std::string* out) {
  std::string s;
  if (auto st = String(file, n, field, &s); !st.ok()) return st;
  *out = ResolveAgainstConfig(file, s);
  if (::access(out->c_str(), R_OK) != 0) {
    return Err(file, n, field, absl::StrCat("cannot read ", *out, ": ", std::strerror(errno)));
  }
  return absl::OkStatus();
}

constexpr const char* kBuilt[] = {"events", "bundles"};
constexpr const char* kNotBuilt[] = {"revocations", "approvals"};

}  // namespace

std::string HostName() {
  char h[256] = {0};
  if (::gethostname(h, sizeof(h) - 1) != 0 || h[0] == '\0') return "unknown";
  return h;
}

absl::Status ParseFleetConfig(const std::string& file, const YAML::Node& v, FleetConfig* out) {
  if (!v.IsMap()) return Err(file, v, "", "must be a mapping {servers, name, credentials, ...}");
  FleetConfig c;
  c.enabled = true;
  for (auto it = v.begin(); it != v.end(); ++it) {
    const std::string key = it->first.as<std::string>("");
    // A copy, not a reference: yaml-cpp's iterator yields a temporary pair (ASan:
    // stack-use-after-scope in ConfigTest.FleetSettingsAndTheirErrors).
    const YAML::Node fv = it->second;
    absl::Status st;
    if (key == "servers") {
      if (!fv.IsSequence() || fv.size() == 0) {
        return Err(file, fv, key, "must be a non-empty list of nats:// or tls:// URLs");
      }
      for (size_t i = 0; i < fv.size(); ++i) {
        const std::string f = absl::StrCat(key, "[", i, "]");
        std::string u;
        if (st = String(file, fv[i], f, &u); !st.ok()) return st;
        if (!absl::StartsWith(u, "nats://") && !absl::StartsWith(u, "tls://")) {
          return Err(file, fv[i], f,
                     absl::StrCat("must be a nats:// or tls:// URL, not \"", u, "\""));
        }
        c.link.servers.push_back(u);
      }
    } else if (key == "name") {
      st = String(file, fv, key, &c.link.name);
      if (st.ok() && c.link.name.find_first_of(" \t.*>") != std::string::npos) {
        return Err(file, fv, key, "must be one NATS subject token (no blank, '.', '*' or '>')");
      }
    } else if (key == "creds_file") {
      st = File(file, fv, key, &c.link.creds_file);
    } else if (key == "nkey_seed_file") {
      st = File(file, fv, key, &c.link.nkey_seed_file);
    } else if (key == "user") {
      st = String(file, fv, key, &c.link.user);
    } else if (key == "password") {
      st = String(file, fv, key, &c.link.password);
    } else if (key == "tls") {
      if (!fv.IsMap()) return Err(file, fv, key, "must be a mapping {ca, cert, key}");
      for (auto t = fv.begin(); t != fv.end(); ++t) {
        const std::string tk = t->first.as<std::string>("");
        const std::string f = "tls." + tk;
        std::string* dst = tk == "ca"     ? &c.link.tls.ca
                           : tk == "cert" ? &c.link.tls.cert
                           : tk == "key"  ? &c.link.tls.key
                                          : nullptr;
        if (dst == nullptr) return Err(file, t->first, f, "unknown key");
        if (st = File(file, t->second, f, dst); !st.ok()) return st;
      }
      if (c.link.tls.cert.empty() != c.link.tls.key.empty()) {
        return Err(file, fv, key, "cert and key go together");
      }
    } else if (key == "features") {
      if (!fv.IsSequence()) return Err(file, fv, key, "must be a list");
      for (size_t i = 0; i < fv.size(); ++i) {
        const std::string f = absl::StrCat(key, "[", i, "]");
        std::string name;
        if (st = String(file, fv[i], f, &name); !st.ok()) return st;
        bool built = false, planned = false;
        for (const char* b : kBuilt) built |= name == b;
        for (const char* b : kNotBuilt) planned |= name == b;
        if (planned) {
          return Err(
              file, fv[i], f,
              absl::StrCat("\"", name,
                           "\" is not built yet (docs/fleet.md); available: events, bundles"));
        }
        if (!built) {
          return Err(file, fv[i], f,
                     absl::StrCat("unknown feature \"", name,
                                  "\" (events, bundles; later: revocations, approvals)"));
        }
        c.features.push_back(name);
      }
    } else {
      return Err(file, it->first, key, "unknown key");
    }
    if (!st.ok()) return st;
  }
  if (c.link.servers.empty()) return Err(file, v, "servers", "missing (a list of nats:// URLs)");
  const int creds =
      !c.link.creds_file.empty() + !c.link.nkey_seed_file.empty() + !c.link.user.empty();
  if (creds > 1) {
    return Err(file, v, "", "give one of creds_file, nkey_seed_file or user (with password)");
  }
  if (c.link.password.empty() != c.link.user.empty()) {
    return Err(file, v, c.link.user.empty() ? "password" : "user", "user and password go together");
  }
  if (c.link.name.empty()) c.link.name = HostName();
  *out = std::move(c);
  return absl::OkStatus();
}

}  // namespace writ::fleet
