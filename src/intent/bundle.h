// Signed policy bundles: a versioned set of intent files, signed with Ed25519, that writd verifies,
// validates whole and swaps in atomically (docs/policy.md, "Signed policy bundles").
//
// The envelope is JSON:
//   {"format": "writ.policy-bundle/v1",
//    "payload": "<base64 of the payload's exact bytes>",
//    "signatures": [{"key_id": "<16 hex>", "sig": "<base64 Ed25519 signature of those bytes>"}]}
// and the payload, the bytes that are signed (never re-serialised before verifying):
//   {"version": N, "created": "RFC 3339", "signer": "...",
//    "files": [{"name": "a.yaml", "sha256": "<hex>", "content": "..."}, ...]}
// key_id is the first 16 hex digits of SHA-256 over the raw 32-byte public key.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace writ::intent {

inline constexpr absl::string_view kBundleFormat = "writ.policy-bundle/v1";
inline constexpr size_t kBundleMaxBytes = 768 * 1024;  // an envelope; fits one control frame
inline constexpr size_t kBundleMaxFiles = 256;

struct BundleFile {
  std::string name;  // a plain file name: [A-Za-z0-9._-], ends .yaml, .yml or .json
  std::string content;
};

struct Bundle {
  uint64_t version = 0;
  std::string created;
  std::string signer;
  std::vector<BundleFile> files;
  std::string sha256;  // of the payload bytes: names this exact bundle
  std::string key_id;  // the key whose signature verified
};

// An Ed25519 public key that may sign bundles.
struct BundleKey {
  std::string key_id;
  std::string raw;     // 32 bytes
  std::string source;  // the file it came from, for messages
};

// Reads Ed25519 public keys (PEM, `openssl pkey -pubout`). A file that holds anything else, or
// cannot be read, is an error naming it.
absl::StatusOr<std::vector<BundleKey>> LoadBundleKeys(const std::vector<std::string>& pem_files);

// Builds and signs an envelope with the Ed25519 private key in `private_key_pem` (PEM text).
absl::StatusOr<std::string> SignBundle(const std::vector<BundleFile>& files, uint64_t version,
                                       const std::string& signer,
                                       const std::string& private_key_pem);

// Parses and verifies an envelope: size, format, a signature by one of `keys` over the payload,
// then the payload's fields and every file's name and digest. Each error says which part is wrong.
// Does not validate the intents themselves (the caller loads them as a whole set).
absl::StatusOr<Bundle> VerifyBundle(absl::string_view envelope, const std::vector<BundleKey>& keys);

// True for a name a bundle may carry (and writd may write into its bundle directory).
bool IsBundleFileName(absl::string_view name);

}  // namespace writ::intent
