#include "creds/redact.h"

#include "absl/time/clock.h"
#include "gtest/gtest.h"

namespace writ::creds {
namespace {

std::string R(std::string s) {
  RedactSecrets(&s);
  return s;
}

TEST(Redact, TableOfCases) {
  const std::string jwt =
      "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJzcGlmZmU6Ly9leGFtcGxlLm9yZy9hIn0.MEUCIQDk-_abc";
  struct Case {
    std::string in, want;
  } cases[] = {
      {"--token-file /tmp/x", "--token-file /tmp/x"},
      {jwt, "[REDACTED]"},
      {"curl -H 'X: " + jwt + "' https://api", "curl -H 'X: [REDACTED]' https://api"},
      {"got " + jwt + ". Done", "got [REDACTED]. Done"},
      {"eyJhbGciOiJub25lIn0..sig", "eyJhbGciOiJub25lIn0..sig"},  // empty payload: not a JWT
      {"Authorization: Basic dXNlcjpwYXNz", "Authorization: [REDACTED]"},
      {"authorization:Bearer abc.def\nnext", "authorization:[REDACTED]\nnext"},
      {"-H \"Authorization: Bearer xyz\" url", "-H \"Authorization: [REDACTED]\" url"},
      {"bearer sk-live-123 rest", "bearer [REDACTED] rest"},
      {"key AKIAIOSFODNN7EXAMPLE end", "key [REDACTED] end"},
      {"ASIAIOSFODNN7EXAMPLE", "[REDACTED]"},
      {"AKIAIOSFODNN7EXAMPL", "AKIAIOSFODNN7EXAMPL"},        // 19 chars: not a key id
      {"XAKIAIOSFODNN7EXAMPLE", "XAKIAIOSFODNN7EXAMPLE"},    // not at a word boundary
      {"postgres://app:hunter2@db:5432/x", "postgres://app:[REDACTED]@db:5432/x"},
      {"https://user@host/path", "https://user@host/path"},  // no password
      {"https://host/a?x=1", "https://host/a?x=1"},
      {"password=hunter2 next", "password=[REDACTED] next"},
      {"DB_PASSWORD=hunter2", "DB_PASSWORD=[REDACTED]"},
      {"GITHUB_TOKEN=ghp_abc", "GITHUB_TOKEN=[REDACTED]"},
      {"client_secret='a b c' x", "client_secret='[REDACTED]' x"},
      {"a=1&token=zz&b=2", "a=1&token=[REDACTED]&b=2"},
      {"AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG", "AWS_SECRET_ACCESS_KEY=[REDACTED]"},
      {"PWD=/home/alice", "PWD=/home/alice"},
      {"password=", "password="},
      {"", ""},
  };
  for (const auto& c : cases) EXPECT_EQ(R(c.in), c.want) << "input: " << c.in;
}

TEST(Redact, OverlappingDetectorsGiveOneMarker) {
  // Bearer + JWT + Authorization all cover the same bytes.
  std::string in = "Authorization: Bearer eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln";
  EXPECT_EQ(R(in), "Authorization: [REDACTED]");
  EXPECT_EQ(R("token=eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln"), "token=[REDACTED]");
}

TEST(Redact, NoSecretLeavesStringUntouched) {
  std::string s = "/usr/bin/python3 -m pip install requests==2.31.0 --index-url https://pypi.org/simple";
  std::string before = s;
  RedactSecrets(&s);
  EXPECT_EQ(s, before);
}

TEST(Redact, LargeInputIsLinearEnough) {
  // 1 MiB of near-misses for every detector; a quadratic scan would take seconds.
  std::string s;
  while (s.size() < (1 << 20)) s += "eyJ. AKIA x=1 a://b@c Bearer";
  absl::Time t = absl::Now();
  RedactSecrets(&s);
  EXPECT_LT(absl::Now() - t, absl::Seconds(1));
}

}  // namespace
}  // namespace writ::creds
