// JWT-SVID issuance, verification, revocation and RFC 7662 introspection for task credentials.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "creds/claims.h"
#include "creds/keystore.h"
#include "creds/revocation_store.h"
#include "nlohmann/json.hpp"

namespace writ::creds {

struct Svid {
  std::string token;
  std::string jti;
  std::string spiffe_id;
  std::string kid;
  std::vector<std::string> audience;
  absl::Time issued_at;
  absl::Time expires_at;
};

struct IssuerOptions {
  std::string issuer;  // `iss`, e.g. https://writ.local
  absl::Duration default_ttl = absl::Minutes(5);
  Clock clock;  // defaults to absl::Now
};

inline constexpr size_t kMaxAudiences = 8;
inline constexpr size_t kMaxAudienceBytes = 256;

// Non-empty, at most 8 entries, each 1..256 bytes of printable ASCII; InvalidArgument naming the
// entry.
absl::Status ValidateAudience(const std::vector<std::string>& audience);

// RFC 8693 nested `act`: the last entry of the chain (most recent delegate) is the outermost actor.
nlohmann::json ActClaim(const std::vector<std::string>& principal_chain);

class Issuer {
 public:
  // `keys` and `revocations` must outlive the issuer.
  Issuer(IssuerOptions options, KeyStore* keys, RevocationStore* revocations);

  absl::StatusOr<Svid> Mint(const TaskClaims& task, std::vector<std::string> audience);

  // Verifies signature, issuer, expiry and revocation; returns the claims. Unauthenticated on any
  // failure (with the reason in the message, for logs; never shown to the token's presenter as a
  // distinction).
  absl::StatusOr<nlohmann::json> Verify(std::string_view token) const;
  // Verify + `audience` must be one of the token's audiences (Workload API ValidateJWTSVID).
  absl::StatusOr<nlohmann::json> Validate(std::string_view token, std::string_view audience) const;
  // RFC 7662 response body: {"active":false} or the claims plus active/token_type.
  nlohmann::json Introspect(std::string_view token) const;

  // In memory, at once: the task's tokens are inactive and it is minted nothing more. Revoke
  // follows.
  void MarkRevoked(const std::string& task_id) { revocations_->MarkTaskRevoked(task_id); }
  // Revokes a task and all its tokens; returns the jtis newly revoked.
  absl::StatusOr<std::vector<std::string>> Revoke(const std::string& task_id,
                                                  const std::string& reason);
  // RFC 7009: revokes the token's jti if the token is ours (signature verifies); otherwise a no-op.
  // Returns the revoked jti, or empty.
  absl::StatusOr<std::string> RevokeToken(std::string_view token, const std::string& reason);

  const std::string& issuer() const { return options_.issuer; }

 private:
  absl::Time Now() const { return options_.clock ? options_.clock() : absl::Now(); }
  absl::StatusOr<nlohmann::json> VerifySignature(std::string_view token) const;

  const IssuerOptions options_;
  KeyStore* const keys_;
  RevocationStore* const revocations_;
};

}  // namespace writ::creds
