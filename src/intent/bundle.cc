#include "intent/bundle.h"

#include <openssl/evp.h>
#include <openssl/pem.h>

#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "nlohmann/json.hpp"
#include "util/terminal_text.h"
#include "util/util.h"

namespace writ::intent {
namespace {

using json = nlohmann::json;

struct PkeyFree {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
struct BioFree {
  void operator()(BIO* b) const { BIO_free(b); }
};
struct MdCtxFree {
  void operator()(EVP_MD_CTX* c) const { EVP_MD_CTX_free(c); }
};
using Pkey = std::unique_ptr<EVP_PKEY, PkeyFree>;

std::string KeyId(absl::string_view raw) { return Sha256Hex(raw).substr(0, 16); }

absl::StatusOr<std::string> RawPublicKey(EVP_PKEY* k, const std::string& what) {
  if (EVP_PKEY_id(k) != EVP_PKEY_ED25519) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": not an Ed25519 key (make one: openssl genpkey -algorithm ed25519)"));
  }
  std::string raw(32, '\0');
  size_t n = raw.size();
  if (EVP_PKEY_get_raw_public_key(k, reinterpret_cast<unsigned char*>(raw.data()), &n) != 1 ||
      n != 32) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": cannot read the public key"));
  }
  return raw;
}

bool Verify(const BundleKey& key, absl::string_view msg, absl::string_view sig) {
  Pkey pk(EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nullptr,
                                      reinterpret_cast<const unsigned char*>(key.raw.data()),
                                      key.raw.size()));
  std::unique_ptr<EVP_MD_CTX, MdCtxFree> ctx(EVP_MD_CTX_new());
  if (!pk || !ctx) return false;
  if (EVP_DigestVerifyInit(ctx.get(), nullptr, nullptr, nullptr, pk.get()) != 1) return false;
  return EVP_DigestVerify(ctx.get(), reinterpret_cast<const unsigned char*>(sig.data()), sig.size(),
                          reinterpret_cast<const unsigned char*>(msg.data()), msg.size()) == 1;
}

}  // namespace

bool IsBundleFileName(absl::string_view name) {
  if (name.empty() || name.size() > 128 || name[0] == '.' || name == "writd.yaml") return false;
  for (char c : name) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '_' && c != '-') {
      return false;
    }
  }
  return absl::EndsWith(name, ".yaml") || absl::EndsWith(name, ".yml") ||
         absl::EndsWith(name, ".json");
}

absl::StatusOr<std::vector<BundleKey>> LoadBundleKeys(const std::vector<std::string>& pem_files) {
  std::vector<BundleKey> keys;
  for (const std::string& f : pem_files) {
    absl::StatusOr<std::string> pem = ReadFile(f);
    if (!pem.ok()) return pem.status();
    std::unique_ptr<BIO, BioFree> bio(BIO_new_mem_buf(pem->data(), static_cast<int>(pem->size())));
    Pkey k(bio ? PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr) : nullptr);
    if (!k) {
      return absl::InvalidArgumentError(absl::StrCat(
          f, ": not a PEM public key (export one: openssl pkey -in KEY -pubout -out ", f, ")"));
    }
    absl::StatusOr<std::string> raw = RawPublicKey(k.get(), f);
    if (!raw.ok()) return raw.status();
    keys.push_back(BundleKey{KeyId(*raw), *raw, f});
  }
  return keys;
}

absl::StatusOr<std::string> SignBundle(const std::vector<BundleFile>& files, uint64_t version,
                                       const std::string& signer,
                                       const std::string& private_key_pem) {
  if (version == 0) return absl::InvalidArgumentError("version: must be 1 or more");
  if (files.empty()) return absl::InvalidArgumentError("a bundle needs at least one intent file");
  if (files.size() > kBundleMaxFiles) {
    return absl::InvalidArgumentError(absl::StrCat("more than ", kBundleMaxFiles, " files"));
  }
  std::unique_ptr<BIO, BioFree> bio(
      BIO_new_mem_buf(private_key_pem.data(), static_cast<int>(private_key_pem.size())));
  Pkey k(bio ? PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr) : nullptr);
  if (!k) return absl::InvalidArgumentError("the signing key is not a PEM private key");
  absl::StatusOr<std::string> raw = RawPublicKey(k.get(), "the signing key");
  if (!raw.ok()) return raw.status();

  json payload;
  payload["version"] = version;
  payload["created"] = Rfc3339(absl::Now());
  payload["signer"] = signer;
  json list = json::array();
  std::set<std::string> names;
  for (const BundleFile& f : files) {
    if (!IsBundleFileName(f.name)) {
      return absl::InvalidArgumentError(
          absl::StrCat("file \"", f.name, "\": not a plain .yaml, .yml or .json file name"));
    }
    if (!names.insert(f.name).second) {
      return absl::InvalidArgumentError(absl::StrCat("file \"", f.name, "\" twice"));
    }
    if (!IsUtf8(f.content)) {
      return absl::InvalidArgumentError(absl::StrCat(f.name, ": not UTF-8 text"));
    }
    list.push_back({{"name", f.name}, {"sha256", Sha256Hex(f.content)}, {"content", f.content}});
  }
  payload["files"] = std::move(list);
  const std::string bytes = payload.dump();

  std::unique_ptr<EVP_MD_CTX, MdCtxFree> ctx(EVP_MD_CTX_new());
  size_t sig_len = 0;
  if (!ctx || EVP_DigestSignInit(ctx.get(), nullptr, nullptr, nullptr, k.get()) != 1 ||
      EVP_DigestSign(ctx.get(), nullptr, &sig_len,
                     reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size()) != 1) {
    return absl::InternalError("Ed25519 signing failed");
  }
  std::string sig(sig_len, '\0');
  if (EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(sig.data()), &sig_len,
                     reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size()) != 1) {
    return absl::InternalError("Ed25519 signing failed");
  }
  sig.resize(sig_len);
  json env;
  env["format"] = std::string(kBundleFormat);
  env["payload"] = absl::Base64Escape(bytes);
  env["signatures"] = json::array({{{"key_id", KeyId(*raw)}, {"sig", absl::Base64Escape(sig)}}});
  std::string out = env.dump(1);
  if (out.size() > kBundleMaxBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("the bundle is ", out.size(), " bytes; at most ", kBundleMaxBytes));
  }
  return out + "\n";
}

absl::StatusOr<Bundle> VerifyBundle(absl::string_view envelope,
                                    const std::vector<BundleKey>& keys) {
  auto bad = [](const std::string& what) { return absl::InvalidArgumentError(what); };
  if (envelope.size() > kBundleMaxBytes) {
    return bad(absl::StrCat("bundle of ", envelope.size(), " bytes: at most ", kBundleMaxBytes));
  }
  if (keys.empty()) return absl::FailedPreconditionError("no key may sign bundles here");
  json env = json::parse(envelope, nullptr, /*allow_exceptions=*/false);
  if (env.is_discarded() || !env.is_object()) return bad("not a bundle: the envelope is not JSON");
  if (!env.contains("format") || !env["format"].is_string() ||
      env["format"].get<std::string>() != kBundleFormat) {
    return bad(absl::StrCat("format: not \"", kBundleFormat, "\""));
  }
  if (!env.contains("payload") || !env["payload"].is_string()) return bad("payload: missing");
  std::string bytes;
  if (!absl::Base64Unescape(env["payload"].get<std::string>(), &bytes)) {
    return bad("payload: not base64");
  }
  if (!env.contains("signatures") || !env["signatures"].is_array() || env["signatures"].empty()) {
    return bad("signatures: missing");
  }
  std::string signed_by;
  std::vector<std::string> tried;
  for (const json& s : env["signatures"]) {
    if (!s.is_object() || !s.contains("key_id") || !s["key_id"].is_string() || !s.contains("sig") ||
        !s["sig"].is_string()) {
      return bad("signatures: each needs key_id and sig");
    }
    const std::string id = s["key_id"].get<std::string>();
    std::string sig;
    if (!absl::Base64Unescape(s["sig"].get<std::string>(), &sig)) {
      return bad(absl::StrCat("signatures: key ", TerminalSafe(id), ": sig is not base64"));
    }
    tried.push_back(TerminalSafe(id));
    for (const BundleKey& k : keys) {
      if (k.key_id == id && Verify(k, bytes, sig)) signed_by = k.key_id;
    }
    if (!signed_by.empty()) break;
  }
  if (signed_by.empty()) {
    return absl::PermissionDeniedError(absl::StrCat(
        "bad signature: no signature by a trusted key verifies (signed by key ",
        absl::StrJoin(tried, ", "), "; trusted here: ",
        absl::StrJoin(keys, ", ", [](std::string* o, const BundleKey& k) { o->append(k.key_id); }),
        ")"));
  }

  // Signed by a key we trust: now the payload's shape.
  json p = json::parse(bytes, nullptr, false);
  if (p.is_discarded() || !p.is_object()) return bad("payload: not JSON");
  Bundle b;
  b.sha256 = Sha256Hex(bytes);
  b.key_id = signed_by;
  if (!p.contains("version") || !p["version"].is_number_unsigned() ||
      p["version"].get<uint64_t>() == 0) {
    return bad("payload.version: must be a whole number of 1 or more");
  }
  b.version = p["version"].get<uint64_t>();
  if (p.contains("created") && p["created"].is_string()) b.created = p["created"];
  if (p.contains("signer") && p["signer"].is_string()) b.signer = p["signer"];
  if (!p.contains("files") || !p["files"].is_array() || p["files"].empty()) {
    return bad("payload.files: missing or empty");
  }
  if (p["files"].size() > kBundleMaxFiles) {
    return bad(absl::StrCat("payload.files: more than ", kBundleMaxFiles));
  }
  std::set<std::string> names;
  for (size_t i = 0; i < p["files"].size(); ++i) {
    const json& f = p["files"][i];
    const std::string where = absl::StrCat("payload.files[", i, "]");
    if (!f.is_object() || !f.contains("name") || !f["name"].is_string() || !f.contains("content") ||
        !f["content"].is_string() || !f.contains("sha256") || !f["sha256"].is_string()) {
      return bad(absl::StrCat(where, ": needs name, sha256 and content"));
    }
    BundleFile bf{f["name"].get<std::string>(), f["content"].get<std::string>()};
    if (!IsBundleFileName(bf.name)) {
      return bad(absl::StrCat(where, ".name: \"", TerminalSafe(bf.name),
                              "\" is not a plain .yaml, .yml or .json file name"));
    }
    if (!names.insert(bf.name).second) {
      return bad(absl::StrCat(where, ".name: \"", bf.name, "\" twice"));
    }
    if (Sha256Hex(bf.content) != f["sha256"].get<std::string>()) {
      return bad(absl::StrCat(where, ".sha256: does not match ", bf.name, "'s content"));
    }
    b.files.push_back(std::move(bf));
  }
  return b;
}

}  // namespace writ::intent
