#include "creds/keystore.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "creds/log.h"
#include "util/status_macros.h"

namespace writ::creds {

absl::Status WriteFileAtomic(const std::string& path, std::string_view data, int mode) {
  std::string tmp = absl::StrCat(path, ".tmp.", getpid());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0) return ErrnoStatus(errno, absl::StrCat("create ", tmp));
  ::fchmod(fd, mode);  // the umask may have narrowed or (for 0644) been irrelevant; be exact
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::write(fd, data.data() + off, data.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      int err = errno;
      ::close(fd);
      ::unlink(tmp.c_str());
      return ErrnoStatus(err, absl::StrCat("write ", tmp));
    }
    off += static_cast<size_t>(n);
  }
  ::fsync(fd);
  ::close(fd);
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    return ErrnoStatus(err, absl::StrCat("rename ", tmp, " -> ", path));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read ", path));
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

absl::StatusOr<std::unique_ptr<KeyStore>> KeyStore::Open(KeyStoreOptions options) {
  if (options.state_dir.empty()) return absl::InvalidArgumentError("keystore: state_dir is empty");
  std::unique_ptr<KeyStore> ks(new KeyStore(std::move(options)));
  RETURN_IF_ERROR(ks->Load());
  return ks;
}

absl::Status KeyStore::Load() {
  std::error_code ec;
  std::filesystem::create_directories(KeysDir(), ec);
  if (ec)
    return absl::InternalError(absl::StrCat("keystore: mkdir ", KeysDir(), ": ", ec.message()));
  ::chmod(KeysDir().c_str(), 0700);
  absl::MutexLock l(&mu_);
  for (const auto& de : std::filesystem::directory_iterator(KeysDir(), ec)) {
    std::string name = de.path().filename().string();
    if (!absl::EndsWith(name, ".pem")) continue;
    std::string path = de.path().string();
    std::string kid = name.substr(0, name.size() - 4);
    struct stat st;
    if (::stat(path.c_str(), &st) == 0 && (st.st_mode & 077) != 0) {
      return absl::FailedPreconditionError(
          absl::StrCat("keystore: ", path, " is readable by group/other (mode ",
                       absl::StrFormat("%o", st.st_mode & 0777), "); want 0600"));
    }
    ASSIGN_OR_RETURN(std::string pem, ReadFile(path));
    auto key = EcKey::FromPrivatePem(pem);
    if (!key.ok())
      return absl::InvalidArgumentError(
          absl::StrCat("keystore: ", path, ": ", key.status().message()));
    if (key->Thumbprint() != kid) {
      return absl::InvalidArgumentError(
          absl::StrCat("keystore: ", path, ": file name is not the key's thumbprint"));
    }
    Entry e{kid, std::make_shared<const EcKey>(std::move(*key)), absl::UnixEpoch(),
            absl::InfiniteFuture()};
    std::string meta_path = absl::StrCat(KeysDir(), "/", kid, ".json");
    auto meta_text = ReadFile(meta_path);
    if (meta_text.ok()) {
      auto meta = nlohmann::json::parse(*meta_text, nullptr, false);
      if (!meta.is_object() || !meta.contains("created") || !meta["created"].is_number_integer()) {
        return absl::InvalidArgumentError(
            absl::StrCat("keystore: ", meta_path, ": field 'created' missing or not an integer"));
      }
      e.created = absl::FromUnixSeconds(meta["created"].get<int64_t>());
      if (meta.contains("retire_at") && meta["retire_at"].is_number_integer()) {
        e.retire_at = absl::FromUnixSeconds(meta["retire_at"].get<int64_t>());
      }
    } else {
      // No metadata (e.g. an operator dropped a key in): treat it as created now so it is not
      // rotated out immediately.
      e.created = Now();
      RETURN_IF_ERROR(WriteMetaLocked(e));
    }
    entries_.push_back(std::move(e));
  }
  if (ec)
    return absl::InternalError(absl::StrCat("keystore: list ", KeysDir(), ": ", ec.message()));
  std::sort(entries_.begin(), entries_.end(),
            [](const Entry& a, const Entry& b) { return a.created < b.created; });
  // Only the newest key signs; any older key without a retirement time (crash mid-rotation) gets
  // one.
  for (size_t i = 0; i + 1 < entries_.size(); ++i) {
    if (entries_[i].retire_at == absl::InfiniteFuture()) {
      entries_[i].retire_at = entries_[i + 1].created + options_.max_token_ttl + options_.skew;
      RETURN_IF_ERROR(WriteMetaLocked(entries_[i]));
    }
  }
  RETURN_IF_ERROR(PruneLocked(Now()));
  if (entries_.empty()) {
    ASSIGN_OR_RETURN(std::string kid, RotateLocked());
    Log()->info("keystore: created first signing key {}", kid);
  } else {
    RETURN_IF_ERROR(WriteJwksLocked());
  }
  return absl::OkStatus();
}

absl::Status KeyStore::WriteMetaLocked(const Entry& e) {
  nlohmann::json meta = {{"created", absl::ToUnixSeconds(e.created)}};
  if (e.retire_at != absl::InfiniteFuture()) meta["retire_at"] = absl::ToUnixSeconds(e.retire_at);
  return WriteFileAtomic(absl::StrCat(KeysDir(), "/", e.kid, ".json"), meta.dump(), 0600);
}

absl::StatusOr<std::string> KeyStore::RotateLocked() {
  absl::Time now = Now();
  ASSIGN_OR_RETURN(EcKey key, EcKey::Generate());
  ASSIGN_OR_RETURN(std::string pem, key.PrivatePem());
  std::string kid = key.Thumbprint();
  RETURN_IF_ERROR(WriteFileAtomic(absl::StrCat(KeysDir(), "/", kid, ".pem"), pem, 0600));
  Entry e{kid, std::make_shared<const EcKey>(std::move(key)), now, absl::InfiniteFuture()};
  RETURN_IF_ERROR(WriteMetaLocked(e));
  // Retire the previous signer: tokens it signed live at most max_token_ttl from now.
  if (!entries_.empty()) {
    Entry& prev = entries_.back();
    prev.retire_at = now + options_.max_token_ttl + options_.skew;
    RETURN_IF_ERROR(WriteMetaLocked(prev));
  }
  entries_.push_back(std::move(e));
  ++generation_;
  RETURN_IF_ERROR(PruneLocked(now));
  RETURN_IF_ERROR(WriteJwksLocked());
  return kid;
}

absl::Status KeyStore::PruneLocked(absl::Time now) {
  bool changed = false;
  for (auto it = entries_.begin(); it != entries_.end();) {
    if (it->retire_at <= now && std::next(it) != entries_.end()) {
      std::string base = absl::StrCat(KeysDir(), "/", it->kid);
      ::unlink((base + ".pem").c_str());
      ::unlink((base + ".json").c_str());
      Log()->info("keystore: retired key {} removed from JWKS", it->kid);
      it = entries_.erase(it);
      changed = true;
    } else {
      ++it;
    }
  }
  if (changed) {
    ++generation_;
    RETURN_IF_ERROR(WriteJwksLocked());
  }
  return absl::OkStatus();
}

absl::StatusOr<SigningKey> KeyStore::Current() {
  absl::MutexLock l(&mu_);
  absl::Time now = Now();
  if (entries_.empty() || now - entries_.back().created >= options_.rotation_period) {
    ASSIGN_OR_RETURN(std::string kid, RotateLocked());
    Log()->info("keystore: rotated signing key, new kid {}", kid);
  } else {
    RETURN_IF_ERROR(PruneLocked(now));
  }
  return SigningKey{entries_.back().kid, entries_.back().key};
}

absl::StatusOr<std::string> KeyStore::Rotate() {
  absl::MutexLock l(&mu_);
  return RotateLocked();
}

std::shared_ptr<const EcKey> KeyStore::Find(const std::string& kid) const {
  absl::MutexLock l(&mu_);
  absl::Time now = Now();
  for (const auto& e : entries_) {
    if (e.kid == kid && e.retire_at > now) return e.key;
  }
  return nullptr;
}

std::string KeyStore::JwksJsonLocked() const {
  nlohmann::json keys = nlohmann::json::array();
  for (auto it = entries_.rbegin(); it != entries_.rend(); ++it) {
    nlohmann::json k = it->key->PublicJwk();
    k["kid"] = it->kid;
    k["use"] = "sig";
    k["alg"] = "ES256";
    keys.push_back(std::move(k));
  }
  return nlohmann::json{{"keys", keys}}.dump();
}

std::string KeyStore::JwksJson() const {
  absl::MutexLock l(&mu_);
  return JwksJsonLocked();
}

uint64_t KeyStore::generation() const {
  absl::MutexLock l(&mu_);
  return generation_;
}

absl::Status KeyStore::WriteJwksLocked() {
  // Public material: world-readable so local verifiers need no privileges.
  return WriteFileAtomic(options_.state_dir + "/jwks.json", JwksJsonLocked(), 0644);
}

}  // namespace writ::creds
