// Secret redaction (src/creds/redact*): the rules file parser and its errors, a corpus of realistic
// FAKE credentials of every shipped rule's format (generated here from a fixed seed, never real
// ones) redacted in text, in argv and in every output path reachable without root (native JSON,
// OCSF, the syslog frame, the journal record), a corpus of look-alikes left alone (with the
// false-positive rate printed), marks (keyed, stable, idempotent, unforgeable into a hiding place),
// per-rule counters, the schema walk that keeps RedactEvent complete, and the host key file.
#include "creds/redact.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <random>
#include <set>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "creds/redact_rules.h"
#include "gmock/gmock.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/text_format.h"
#include "gtest/gtest.h"
#include "journal/journal.h"
#include "re2/re2.h"
#include "sinks/json_encoder.h"
#include "sinks/ocsf_encoder.h"
#include "sinks/transport.h"
#include "testlib/alloc_counter.h"

namespace writ::creds {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

const std::string kKey(32, 'k');

std::unique_ptr<Redactor> Builtin(const std::string& key = kKey) {
  auto r = Redactor::Create(BuiltinRedactionRules(), key);
  EXPECT_TRUE(r.ok()) << r.status();
  return std::move(*r);
}

// ---- fake credentials
// -------------------------------------------------------------------------------

constexpr char kAlnum[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
constexpr char kUpperDigits[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
constexpr char kHexChars[] = "0123456789abcdef";
constexpr char kB64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
constexpr char kB64Url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
constexpr char kDigits[] = "0123456789";

class Fakes {
 public:
  explicit Fakes(uint64_t seed) : rng_(seed) {}
  std::string Of(const char* charset, size_t n) {
    const size_t m = std::strlen(charset);
    std::string s;
    for (size_t i = 0; i < n; ++i) s.push_back(charset[rng_() % m]);
    return s;
  }
  std::string Alnum(size_t n) { return Of(kAlnum, n); }
  std::string Hex(size_t n) { return Of(kHexChars, n); }

 private:
  std::mt19937_64 rng_;
};

// One fake secret in its context. `secret` is what must never appear in any output; `rule` the rule
// expected to name the mark.
struct Case {
  std::string rule;
  std::string secret;
  std::string text;               // a free-text form, or empty
  std::vector<std::string> argv;  // an argv form, or empty
};

std::vector<Case> Corpus(uint64_t seed) {
  Fakes f(seed);
  std::vector<Case> c;
  auto text = [&](std::string rule, std::string secret, std::string s) {
    c.push_back({std::move(rule), std::move(secret), std::move(s), {}});
  };
  auto bare = [&](std::string rule, std::string token) {
    // A bare token: alone, inside a sentence, and as an argument.
    text(rule, token, token);
    text(rule, token, absl::StrCat("export X=\"", token, "\"; run"));
    c.push_back({rule, token, "", {"/bin/echo", token}});
  };
  auto argv = [&](std::string rule, std::string secret, std::vector<std::string> a) {
    c.push_back({std::move(rule), std::move(secret), "", std::move(a)});
  };

  // model APIs
  bare("openai-api-key", "sk-proj-" + f.Alnum(58) + "T3BlbkFJ" + f.Alnum(58));
  bare("openai-api-key", "sk-svcacct-" + f.Of(kB64Url, 40));
  bare("openai-api-key", "sk-" + f.Alnum(20) + "T3BlbkFJ" + f.Alnum(20));
  bare("openai-api-key", "sk-" + f.Alnum(48));
  bare("anthropic-api-key", "sk-ant-api03-" + f.Of(kB64Url, 93) + "AA");
  bare("anthropic-api-key", "sk-ant-admin01-" + f.Of(kB64Url, 93) + "AA");
  bare("openrouter-api-key", "sk-or-v1-" + f.Hex(64));
  bare("google-api-key", "AIza" + f.Of(kB64Url, 35));
  bare("huggingface-token",
       "hf_" + f.Of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz", 34));
  bare("groq-api-key", "gsk_" + f.Alnum(52));
  bare("xai-api-key", "xai-" + f.Alnum(80));
  bare("perplexity-api-key", "pplx-" + f.Alnum(48));
  // code hosts, registries
  bare("github-pat", "ghp_" + f.Alnum(36));
  bare("github-pat", "github_pat_" + f.Alnum(22) + "_" + f.Alnum(59));
  bare("github-oauth-token", "gho_" + f.Alnum(36));
  bare("github-app-token", "ghu_" + f.Alnum(36));
  bare("github-app-token", "ghs_" + f.Alnum(36));
  bare("github-refresh-token", "ghr_" + f.Alnum(76));
  bare("gitlab-pat", "glpat-" + f.Of(kB64Url, 20));
  bare("gitlab-token", "glrt-" + f.Of(kB64Url, 20));
  bare("gitlab-token", "gldt-" + f.Of(kB64Url, 20));
  bare("npm-token", "npm_" + f.Alnum(36));
  bare("pypi-token", "pypi-AgEIcHlwaS5vcmc" + f.Of(kB64Url, 70));
  bare("docker-hub-pat", "dckr_pat_" + f.Of(kB64Url, 27));
  // chat, payments, SaaS
  bare("slack-token", "xoxb-" + f.Of(kDigits, 12) + "-" + f.Of(kDigits, 13) + "-" + f.Alnum(24));
  bare("slack-token", "xoxp-" + f.Of(kDigits, 12) + "-" + f.Of(kDigits, 12) + "-" +
                          f.Of(kDigits, 13) + "-" + f.Hex(32));
  bare("slack-token",
       "xapp-1-A" + f.Of(kUpperDigits, 10) + "-" + f.Of(kDigits, 13) + "-" + f.Hex(64));
  {
    std::string path =
        "services/T" + f.Of(kUpperDigits, 8) + "/B" + f.Of(kUpperDigits, 10) + "/" + f.Alnum(24);
    text("slack-webhook", path, "curl -X POST https://hooks.slack.com/" + path + " -d '{}'");
  }
  bare("stripe-key", "sk_live_" + f.Alnum(24));
  bare("stripe-key", "rk_test_" + f.Alnum(24));
  bare("stripe-webhook-secret", "whsec_" + f.Alnum(32));
  bare("sendgrid-api-key", "SG." + f.Of(kB64Url, 22) + "." + f.Of(kB64Url, 43));
  bare("digitalocean-token", "dop_v1_" + f.Hex(64));
  bare("hashicorp-vault-token", "hvs." + f.Of(kB64Url, 90));
  // clouds
  bare("aws-access-key-id", "AKIA" + f.Of(kUpperDigits, 16));
  bare("aws-access-key-id", "ASIA" + f.Of(kUpperDigits, 16));
  {
    std::string s = f.Of(kB64, 40);
    text("aws-secret-access-key", s, "aws_secret_access_key = " + s);
    text("aws-secret-access-key", s, "{\"SecretAccessKey\": \"" + s + "\"}");
    argv("aws-cli-secret", s, {"aws", "configure", "set", "aws_secret_access_key", s});
  }
  {
    std::string sig = f.Hex(64);
    text("aws-presigned-signature", sig,
         "https://b.s3.amazonaws.com/k?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Signature=" + sig);
  }
  {
    std::string k = f.Of(kB64, 86) + "==";
    text("azure-storage-key", k,
         "DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=" + k +
             ";EndpointSuffix=core.windows.net");
    std::string sig = f.Alnum(20) + "%2B" + f.Alnum(20) + "%3D";
    text("azure-sas-signature", sig,
         "https://acct.blob.core.windows.net/c/b?sv=2022-11-02&sp=r&sig=" + sig);
    bare("azure-ad-client-secret",
         f.Alnum(3) + "8Q~" +
             f.Of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_~.-", 34));
  }
  {
    std::string body = f.Of(kB64, 64);
    text("gcp-service-account-key", body,
         "{\"type\": \"service_account\", \"private_key_id\": \"" + f.Hex(40) +
             "\", \"private_key\": \"-----BEGIN PRIVATE KEY-----\\n" + body +
             "\\n-----END PRIVATE KEY-----\\n\"}");
  }
  // private keys
  {
    std::string body = f.Of(kB64, 70);
    text("private-key", body,
         "-----BEGIN OPENSSH PRIVATE KEY-----\n" + body + "\n-----END OPENSSH PRIVATE KEY-----\n");
    std::string rsa = f.Of(kB64, 64);
    text("private-key", rsa,
         "-----BEGIN RSA PRIVATE KEY-----\n" + rsa);  // cut short, as a 256-byte argv is
    argv(
        "private-key", rsa,
        {"/bin/echo", "-----BEGIN EC PRIVATE KEY-----\n" + rsa + "\n-----END EC PRIVATE KEY-----"});
  }
  // structure
  {
    std::string jwt =
        "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.eyJ" + f.Of(kB64Url, 60) + "." + f.Of(kB64Url, 43);
    bare("jwt", jwt);
    std::string pw = f.Alnum(16);
    text("url-credentials", pw, "git clone https://x-access-token:" + pw + "@github.com/o/r.git");
    text("url-credentials", pw, "postgres://app:" + pw + "@db.internal:5432/app");
    argv("url-credentials", pw, {"psql", "postgresql://writer:" + pw + "@10.0.0.5/orders"});
    std::string bearer = f.Of(kB64Url, 40);
    text("http-authorization", bearer, "Authorization: Bearer " + bearer);
    argv("http-authorization", bearer,
         {"curl", "-H", "Authorization: Bearer " + bearer, "https://api.example.org"});
    std::string basic = f.Of(kB64, 24);
    text("http-authorization", basic, "curl -H 'Proxy-Authorization: Basic " + basic + "' url");
    text("http-authorization", basic,
         "{\"headers\": {\"Authorization\": \"token " + basic + "\"}}");
    std::string cookie = f.Alnum(32);
    argv("http-cookie", cookie,
         {"curl", "-H", "Cookie: session=" + cookie, "https://app.example.org"});
    std::string b2 = f.Of(kB64Url, 32);
    text("bearer-token", b2, "use bearer " + b2 + " for the next call");
  }
  // options (argv-aware)
  auto pw = [&] { return f.Alnum(14); };
  {
    std::string p = pw();
    argv("sshpass-password", p, {"sshpass", "-p", p, "ssh", "host"});
    p = pw();
    argv("sshpass-password", p, {"/usr/bin/sshpass", "-p" + p, "ssh", "host"});
    p = pw();
    argv("registry-login-password", p,
         {"docker", "login", "-u", "bot", "-p", p, "registry.example.org"});
    p = pw();
    argv("registry-login-password", p, {"sudo", "podman", "login", "-p", p, "quay.io"});
    p = pw();
    argv("cli-password-option", p, {"twine", "upload", "-u", "__token__", "-p", p, "dist/*"});
    p = pw();
    argv("cli-password-option", p, {"mongosh", "-u", "admin", "-p", p});
    p = pw();
    argv("mysql-password", p, {"mysql", "-u", "root", "-p" + p, "orders"});
    p = pw();
    argv("redis-password", p, {"redis-cli", "-a", p, "ping"});
    p = pw();
    argv("ldap-password", p, {"ldapsearch", "-D", "cn=admin", "-w", p, "-b", "dc=example"});
    p = pw();
    argv("archive-password", p, {"zip", "-P", p, "out.zip", "a.txt"});
    p = pw();
    argv("archive-password", p, {"7z", "a", "-p" + p, "out.7z", "a.txt"});
    p = pw();
    argv("mosquitto-password", p, {"mosquitto_pub", "-u", "u", "-P", p, "-t", "t", "-m", "m"});
    p = pw();
    argv("curl-user-password", p, {"curl", "-u", "alice:" + p, "https://example.org"});
    p = pw();
    argv("curl-user-password", p, {"curl", "--user=alice:" + p, "https://example.org"});
    p = pw();
    argv("smb-user-password", p, {"smbclient", "//srv/share", "-U", "alice%" + p});
    p = pw();
    argv("openssl-password", p, {"openssl", "pkcs12", "-export", "-passout", "pass:" + p});
    p = pw();
    argv("openssl-enc-key", p, {"openssl", "enc", "-aes-256-cbc", "-k", p});
    p = pw();
    argv("java-keystore-password", p, {"keytool", "-list", "-keystore", "ks.jks", "-storepass", p});
    p = pw();
    argv("gh-secret-body", p, {"gh", "secret", "set", "DEPLOY_KEY", "--body", p});
    p = pw();
    argv("kubectl-secret-literal", p,
         {"kubectl", "create", "secret", "generic", "db", "--from-literal=pw=" + p});
    p = f.Alnum(30);
    argv("bearer-argument", p, {"/bin/echo", "Authorization:", "Bearer", p});
    p = pw();
    argv("secret-label-argument", p, {"/bin/echo", "password:", p});
    p = pw();
    argv("secret-option", p, {"tool", "--password", p});
    p = pw();
    argv("secret-option", p, {"tool", "--token", p});
    p = pw();
    argv("secret-option", p, {"tool", "--api-key", p});
    p = pw();
    argv("secret-option", p, {"tool", "--client-secret", p});
    p = pw();
    argv("secret-option", p, {"tool", "-token", p});
    p = pw();
    argv("secret-option", p, {"tool", "--password=" + p});
    p = pw();
    argv("secret-option", p, {"wget", "--http-password", p, "https://example.org"});
  }
  // key=value, key: value, "key": "value"
  {
    std::string p = pw();
    text("secret-assignment", p, "DB_PASSWORD=" + p);
    p = pw();
    text("secret-assignment", p, "MYSQL_PWD=" + p + " mysql -u root");
    p = pw();
    text("secret-assignment", p, "{\"client_secret\": \"" + p + "\", \"id\": 7}");
    p = pw();
    text("secret-assignment", p, "X-Api-Key: " + p);
    p = pw();
    text("secret-assignment", p, "token: " + p);
    p = pw();
    text("secret-assignment", p, "https://api.example.org/v1?api_key=" + p + "&q=1");
    p = pw();
    text("secret-assignment", p, "client_secret='" + p + " with spaces' next");
    p = pw();
    argv("secret-assignment", p, {"env", "OPENAI_API_KEY=" + p, "python3", "agent.py"});
    p = pw();
    text("secret-assignment", p, "npm config set //registry.npmjs.org/:_authToken=" + p);
  }
  return c;
}

std::string Joined(const Case& c) { return c.text.empty() ? absl::StrJoin(c.argv, " ") : c.text; }

// ---- the rules file
// ---------------------------------------------------------------------------------

TEST(RedactRules, BuiltinSetParsesAndEveryRuleHasACorpusCase) {
  const RedactionRuleSet& set = BuiltinRedactionRules();
  ASSERT_GE(set.rules.size(), 40u);
  std::set<std::string> covered;
  for (const Case& c : Corpus(1)) covered.insert(c.rule);
  for (const RedactionRule& r : set.rules) {
    EXPECT_TRUE(covered.count(r.id)) << "rule " << r.id << " (" << r.file << ":" << r.line
                                     << ") has no fake credential in the corpus: add one";
    EXPECT_FALSE(r.description.empty()) << r.id;
  }
  // The text writd embeds is the file in the tree.
  std::ifstream in(std::string(WRIT_SOURCE_DIR) + "/data/redaction.yaml");
  std::stringstream ss;
  ss << in.rdbuf();
  EXPECT_EQ(ss.str(), BuiltinRedactionRulesText());
}

TEST(RedactRules, BadFilesAreRefusedWithFileLineField) {
  struct Bad {
    std::string text, error;
  } cases[] = {
      {"rules: []\n", "r.yaml:1: version: missing"},
      {"version: 2\nrules: []\n", "r.yaml:1: version: must be 1"},
      {"version: 1\nrulez: []\n", "r.yaml:2: rulez: unknown key"},
      {"version: 1\nrules: {}\n", "r.yaml:2: rules: must be a list"},
      {"version: 1\nrules:\n  - id: x\n    pattern: 'a(b'\n    keywords: [abc]\n",
       "r.yaml:4: rules[0].pattern: invalid RE2 expression: missing ): a(b"},
      {"version: 1\nrules:\n  - id: Bad_Id\n    pattern: abc\n    keywords: [abc]\n",
       "r.yaml:3: rules[0].id: \"Bad_Id\": an id is 1-48 characters"},
      {"version: 1\nrules:\n  - pattern: abc\n    keywords: [abc]\n",
       "r.yaml:3: rules[0].id: missing"},
      {"version: 1\nrules:\n  - id: x\n    pattern: abc\n", "r.yaml:3: rules[0].keywords: missing"},
      {"version: 1\nrules:\n  - id: x\n    pattern: abc\n    keywords: [ab]\n",
       "r.yaml:5: rules[0].keywords[0]: a keyword needs at least 3 bytes"},
      {"version: 1\nrules:\n  - id: x\n    pattern: abc\n    keywords: [abc]\n    colour: red\n",
       "r.yaml:6: rules[0].colour: unknown key"},
      {"version: 1\nrules:\n  - id: x\n    options: [-p]\n", "r.yaml:3: rules[0].forms: missing"},
      {"version: 1\nrules:\n  - id: x\n    options: [-p]\n    forms: [glued]\n",
       "r.yaml:5: rules[0].forms[0]: unknown form \"glued\""},
      {"version: 1\nrules:\n  - id: x\n    options: [--pw]\n    forms: [attached]\n",
       "r.yaml:3: rules[0].forms: attached applies to two-character options"},
      {"version: 1\nrules:\n  - id: x\n    options: [-p]\n    forms: [separate]\n    value: "
       "'^.*$'\n",
       "r.yaml:6: rules[0].value: needs a capture group"},
      {"version: 1\nrules:\n  - id: x\n    options: [-p]\n    programs: [/usr/bin/x]\n    forms: "
       "[separate]\n",
       "r.yaml:5: rules[0].programs[0]: a program is a basename"},
      {"version: 1\nrules:\n  - id: x\n    pattern: abc\n    keywords: [abc]\n    options: [-p]\n",
       "r.yaml:3: rules[0]: a rule has either a pattern or options/option_pattern"},
      {"version: 1\nrules:\n  - id: x\n    option_pattern: '^--x$'\n    forms: [separate]\n",
       "r.yaml:3: rules[0].keywords: missing: option_pattern needs"},
      {"version: 1\nrules:\n  - id: x\n    pattern: abc\n    keywords: [abc]\n  - id: x\n    "
       "pattern: abd\n    "
       "keywords: [abd]\n",
       "r.yaml:6: rules[1].id: duplicate id \"x\" (first at line 3)"},
      {"version: 1\nrules: [\n", "r.yaml:3: yaml:"},
      {"version: 1\ndisable: [jwt]\n", "r.yaml:2: disable: only in an override file"},
  };
  for (const Bad& b : cases) {
    auto r = ParseRedactionRules(b.text, "r.yaml");
    ASSERT_FALSE(r.ok()) << b.text;
    EXPECT_THAT(std::string(r.status().message()), HasSubstr(b.error)) << b.text;
  }
}

TEST(RedactRules, OverrideAddsReplacesAndDisables) {
  const RedactionRuleSet& base = BuiltinRedactionRules();
  auto merged = ParseRedactionRules(R"(version: 1
disable: [bearer-token]
rules:
  - id: jwt
    description: replaced
    pattern: '(eyJ[A-Za-z0-9_-]{10,})'
    keywords: [eyj]
  - id: acme-token
    description: ours
    pattern: '\b(acme_[a-z0-9]{20})'
    keywords: [acme_]
)",
                                    "o.yaml", &base);
  ASSERT_TRUE(merged.ok()) << merged.status();
  EXPECT_EQ(merged->rules.size(), base.rules.size());  // one off, one added, one replaced in place
  auto find = [&](const std::string& id) -> const RedactionRule* {
    for (const auto& r : merged->rules) {
      if (r.id == id) return &r;
    }
    return nullptr;
  };
  EXPECT_EQ(find("bearer-token"), nullptr);
  ASSERT_NE(find("jwt"), nullptr);
  EXPECT_EQ(find("jwt")->description, "replaced");
  EXPECT_EQ(find("jwt")->file, "o.yaml");
  ASSERT_NE(find("acme-token"), nullptr);
  EXPECT_EQ(merged->rules.back().id, "acme-token");

  auto r = Redactor::Create(*merged, kKey);
  ASSERT_TRUE(r.ok());
  std::string s = "id acme_0123456789abcdefghij and bearer abcdefghijklmnopqrstuvwxyz";
  (*r)->RedactText(&s);
  EXPECT_THAT(s, HasSubstr("[REDACTED:acme-token:"));
  EXPECT_THAT(s, HasSubstr("bearer abcdefghijklmnopqrstuvwxyz"));  // turned off

  auto only = ParseRedactionRules("version: 1\nbuiltin: false\nrules: []\n", "o.yaml", &base);
  ASSERT_TRUE(only.ok());
  EXPECT_TRUE(only->rules.empty());

  auto unknown = ParseRedactionRules("version: 1\ndisable: [no-such-rule]\n", "o.yaml", &base);
  ASSERT_FALSE(unknown.ok());
  EXPECT_THAT(std::string(unknown.status().message()),
              HasSubstr("o.yaml:2: disable: no built-in rule \"no-such-rule\" to turn off"));
}

TEST(RedactRules, LoadRedactionRulesNamesAMissingFile) {
  auto r = LoadRedactionRules("/nonexistent/redaction.yaml");
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("/nonexistent/redaction.yaml"));
  auto builtin = LoadRedactionRules("");
  ASSERT_TRUE(builtin.ok());
  EXPECT_EQ(builtin->rules.size(), BuiltinRedactionRules().rules.size());
}

// ---- the corpus
// -------------------------------------------------------------------------------------

TEST(Redact, EveryFakeCredentialIsRedactedByItsRule) {
  auto r = Builtin();
  int n = 0;
  for (uint64_t seed : {1, 2, 3}) {
    for (const Case& c : Corpus(seed)) {
      ++n;
      if (!c.text.empty()) {
        std::string s = c.text;
        EXPECT_GT(r->RedactText(&s), 0u) << c.rule << ": " << c.text;
        EXPECT_THAT(s, Not(HasSubstr(c.secret))) << c.rule << ": " << c.text;
        EXPECT_THAT(s, HasSubstr("[REDACTED:" + c.rule + ":")) << c.text << "\n -> " << s;
      } else {
        std::vector<std::string> a = c.argv;
        RedactionReport rep = r->RedactArgv(&a, "");
        const std::string out = absl::StrJoin(a, " ");
        EXPECT_GT(rep.argv_marks, 0u) << c.rule << ": " << Joined(c);
        EXPECT_THAT(out, Not(HasSubstr(c.secret))) << c.rule << ": " << Joined(c);
        EXPECT_THAT(out, HasSubstr("[REDACTED:" + c.rule + ":")) << Joined(c) << "\n -> " << out;
        EXPECT_EQ(rep.first_argv_rule, c.rule) << Joined(c);
      }
    }
  }
  std::printf("redaction corpus: %d fake credentials of %zu rules\n", n,
              BuiltinRedactionRules().rules.size());
}

// Strings that look like secrets to a careless matcher and are not: none may change.
std::vector<std::string> LookAlikes() {
  std::vector<std::string> v = {
      // paths and programs an agent touches all day
      "/usr/lib/x86_64-linux-gnu/libc.so.6",
      "/etc/passwd",
      "/etc/pam.d/common-password",
      "/usr/lib/git-core/git-credential-cache",
      "/usr/lib/python3/dist-packages/keyring/backends/SecretService.py",
      "/home/dev/proj/node_modules/js-tokens/index.js",
      "/home/dev/.cache/pip/wheels/sk-learn-0.0.1-py3-none-any.whl",
      "/tmp/sk-learn-build-2024-dir",
      "/var/lib/dpkg/info/ca-certificates.list",
      "/usr/share/zoneinfo/Asia/Tokyo",
      "spiffe://example.org/agent/coder",
      "user:alice@example.org",
      "git@github.com:example/repo.git",
      "ssh://git@github.com/example/repo.git",
      "https://user@example.org/path",
      "https://example.org:8443/a?b=c",
      // options that are not secrets
      "--token-file /tmp/token",
      "--password-file=/run/secrets/db",
      "--max-tokens=4096",
      "--no-password",
      "PWD=/home/alice",
      "OLDPWD=/tmp",
      "ssh -o PasswordAuthentication=no host",
      "token_endpoint=https://idp/token",
      "tokenizer=bert-base-uncased",
      "Authorization header missing",
      "-----BEGIN CERTIFICATE-----",
      "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE",
      "Accept: application/json",
      "eyJuYW1lIjoid3JpdCJ9",
      "eyJhbGciOiJub25lIn0..sig",
      "AKIAIOSFODNN7EXAMPL",
      "XAKIAIOSFODNN7EXAMPLE",
      "AIzaShort",
      "ghp_short",
      "sk-123",
      "xoxb-",
      "npm_install",
      "hf_hub_download",
      "the bearer of this note",
      "Basic configuration done",
      "password=",
      "secret_name=db-creds",
      "make -j2 CFLAGS=-O2",
      "python3 -m http.server 8080",
      "key_id=7",
      "monkey=banana",
      "keyboard=us",
  };
  Fakes f(99);
  for (int i = 0; i < 1000; ++i) v.push_back(f.Hex(40));  // git SHAs
  for (int i = 0; i < 1000; ++i) v.push_back("git checkout " + f.Hex(40));
  for (int i = 0; i < 1000; ++i) {
    v.push_back(absl::StrCat(f.Hex(8), "-", f.Hex(4), "-4", f.Hex(3), "-a", f.Hex(3), "-",
                             f.Hex(12)));  // UUIDs
  }
  for (int i = 0; i < 1000; ++i)
    v.push_back("/var/cache/build/" + f.Hex(64) + "/out.o");  // hashes in paths
  for (int i = 0; i < 1000; ++i)
    v.push_back("/home/dev/.git/objects/" + f.Hex(2) + "/" + f.Hex(38));
  for (int i = 0; i < 1000; ++i) v.push_back(f.Of(kB64, 76) + "==");  // base64 content
  for (int i = 0; i < 200; ++i) v.push_back("sha256:" + f.Hex(64));
  return v;
}

TEST(Redact, LookAlikesAreLeftAloneAndTheFalsePositiveRateIsReported) {
  auto r = Builtin();
  const auto v = LookAlikes();
  int changed = 0;
  for (const std::string& in : v) {
    std::string s = in;
    if (r->RedactText(&s) > 0) {
      ++changed;
      ADD_FAILURE() << "false positive: " << in << "\n -> " << s;
    }
  }
  // Port options and other -p/-P that are not passwords where the program says so.
  const std::vector<std::vector<std::string>> argvs = {
      {"ssh", "-p", "2222", "host"},
      {"docker", "run", "-p", "8080:80", "nginx"},
      {"podman", "run", "-p", "8443:443", "-e", "MODE=prod", "img"},
      {"python3", "-m", "http.server", "-p", "8080"},
      {"mysql", "-u", "root", "-p",
       "orders"},  // -p then a database: mysql prompts for the password
      {"scp", "-P", "2222", "a", "host:b"},
      {"tool", "--password", "--verbose"},  // no value: the next argument is an option
      {"tool", "--token-file", "/run/t"},
      {"curl", "-u", "alice", "https://example.org"},  // no password part
      {"openssl", "pkcs12", "-passin", "env:PASS"},
      {"ansible-playbook", "--ask-pass", "site.yml"},
      {"llm", "--max-tokens", "4096"},
      {"git", "-c", "user.name=dev", "commit", "-m", "token refresh: handle expiry"},
  };
  for (const auto& a : argvs) {
    std::vector<std::string> b = a;
    if (r->RedactArgv(&b, "").argv_marks > 0) {
      ++changed;
      ADD_FAILURE() << "false positive: " << absl::StrJoin(a, " ") << "\n -> "
                    << absl::StrJoin(b, " ");
    }
  }
  const size_t total = v.size() + argvs.size();
  std::printf("redaction look-alikes: %d false positives of %zu (%.3f%%)\n", changed, total,
              100.0 * changed / static_cast<double>(total));
}

// ---- marks
// ------------------------------------------------------------------------------------------

TEST(Redact, MarksAreKeyedStableAndWellFormed) {
  auto a = Builtin(std::string(32, 'a'));
  auto b = Builtin(std::string(32, 'b'));
  Fakes f(5);
  const std::string tok = "ghp_" + f.Alnum(36);
  std::string s1 = "x " + tok, s2 = "GITHUB_TOKEN=" + tok, s3 = "x " + tok;
  a->RedactText(&s1);
  a->RedactText(&s2);
  b->RedactText(&s3);
  const RE2 mark(R"(\[REDACTED:([a-z0-9-]+):([0-9a-f]{12})\])");
  std::string rule1, hash1, rule2, hash2, rule3, hash3;
  ASSERT_TRUE(RE2::PartialMatch(s1, mark, &rule1, &hash1)) << s1;
  ASSERT_TRUE(RE2::PartialMatch(s2, mark, &rule2, &hash2)) << s2;
  ASSERT_TRUE(RE2::PartialMatch(s3, mark, &rule3, &hash3)) << s3;
  EXPECT_EQ(rule1, "github-pat");
  EXPECT_EQ(rule2, "github-pat");  // the specific format names the mark, not key=value
  EXPECT_EQ(hash1, hash2);         // same secret, same host key: same mark
  EXPECT_NE(hash1, hash3);         // another host key
  EXPECT_EQ(s1, "x " + a->Mark("github-pat", tok));
  std::string other = "x ghp_" + f.Alnum(36);
  a->RedactText(&other);
  EXPECT_NE(other, s1);
}

TEST(Redact, RedactingTwiceChangesNothing) {
  auto r = Builtin();
  for (const Case& c : Corpus(7)) {
    std::string s = Joined(c);
    r->RedactText(&s);
    const std::string once = s;
    r->RedactText(&s);
    EXPECT_EQ(s, once) << c.rule;
  }
}

TEST(Redact, AForgedMarkHidesNothing) {
  // A task that writes its own "[REDACTED:..." around a token must not keep it from being redacted.
  auto r = Builtin();
  Fakes f(8);
  const std::string tok = "ghp_" + f.Alnum(36);
  for (std::string s : {"[REDACTED:" + tok + "]", "[REDACTED:x:" + tok + "]",
                        "token=[REDACTED:jwt:0123456789ab]" + tok}) {
    r->RedactText(&s);
    EXPECT_THAT(s, Not(HasSubstr(tok))) << s;
  }
  // A well-formed mark carries no secret and is left as it is.
  std::string m = "token=[REDACTED:jwt:0123456789ab]";
  EXPECT_EQ(r->RedactText(&m), 0u);
  EXPECT_EQ(m, "token=[REDACTED:jwt:0123456789ab]");
}

TEST(Redact, OverlappingMatchesGiveOneMarkNamedByTheFirstRule) {
  auto r = Builtin();
  std::string s = "Authorization: Bearer eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl";
  EXPECT_EQ(r->RedactText(&s), 1u);
  EXPECT_THAT(s, testing::MatchesRegex(R"(Authorization: Bearer \[REDACTED:jwt:[0-9a-f]{12}\])"));
}

// ---- argv
// -------------------------------------------------------------------------------------------

TEST(Redact, ArgvReportNamesTheFirstArgumentAndRule) {
  auto r = Builtin();
  std::vector<std::string> a = {
      "curl",       "-s",
      "-H",         "Authorization: Bearer abcdefghijklmnopqrstuvwxyz012345",
      "-u",         "bot:hunter2secret",
      "https://api"};
  RedactionReport rep = r->RedactArgv(&a, "/usr/bin/curl");
  EXPECT_EQ(rep.argv_marks, 2u);
  EXPECT_EQ(rep.first_argv_index, 3);
  EXPECT_EQ(rep.first_argv_rule, "http-authorization");
  EXPECT_THAT(a[5], testing::StartsWith("bot:[REDACTED:curl-user-password:"));
  EXPECT_EQ(a[6], "https://api");

  // The program may be named by the executable alone (argv[0] is the agent's choice).
  std::vector<std::string> b = {"x", "-p", "hunter2secret", "host"};
  EXPECT_EQ(r->RedactArgv(&b, "/usr/bin/sshpass").argv_marks, 1u);
  EXPECT_THAT(b[2], HasSubstr("[REDACTED:sshpass-password:"));

  v1::Finding f;
  FillSecretInArgvFinding(rep, &f);
  EXPECT_EQ(f.rule(), "writ/secret.argv");
  EXPECT_EQ(f.category(), "secret");
  EXPECT_EQ(f.severity(), "medium");
  EXPECT_THAT(f.frameworks(), testing::ElementsAre("OWASP-NHI2", "MAESTRO-L6"));
  EXPECT_THAT(f.reason(), HasSubstr("argument 3, http-authorization, 2 in all"));
  EXPECT_THAT(f.reason(), Not(HasSubstr("hunter2")));
}

// ---- events and every output reachable without root
// ------------------------------------------------

// An event per corpus case with the secret in every field an agent or server can fill: a text case
// in every free-text field, an argv case where argv goes (process.args, task.command).
std::vector<v1::Event> CorpusEvents(const std::vector<Case>& corpus) {
  std::vector<v1::Event> out;
  for (const Case& c : corpus) {
    v1::Event e;
    e.set_id("b-1-2");
    e.set_time("2026-01-02T03:04:05.000000006Z");
    e.set_kind("exec");
    e.set_host("h");
    e.mutable_agent()->set_spiffe_id("spiffe://example.org/agent/a");
    e.mutable_agent()->set_task_id("t-1");
    v1::Process* p = e.mutable_process();
    p->set_pid(7);
    p->set_exe("/bin/echo");
    e.set_verdict("violation");
    e.mutable_finding()->set_rule("t/exec.default");
    if (!c.argv.empty()) {
      for (const auto& a : c.argv) {
        p->add_args(a);
        e.mutable_task()->add_command(a);
      }
    } else {
      p->add_args("/bin/echo");
      p->add_args(c.text);
      p->set_filename(c.text);
      p->set_script(c.text);
      p->set_comm(c.text.substr(0, 15));
      e.mutable_file()->set_path("/tmp/" + c.text);
      e.mutable_finding()->set_reason("exec not allowed: " + c.text);
      e.mutable_action()->set_result("kill: " + c.text);
      e.mutable_action()->set_reason(c.text);
      e.mutable_approval()->set_action("exec /bin/echo [" + c.text + "]");
      e.mutable_approval()->set_reason(c.text);
      e.mutable_credential()->set_jti(c.text);
      e.mutable_credential()->set_detail("provider said: " + c.text);
      e.mutable_agent()->set_principal(c.text);
    }
    (*e.mutable_task()->mutable_params())["api_token"] =
        c.secret;  // named like a secret: any value
    out.push_back(std::move(e));
  }
  return out;
}

// The failure message shows where a secret leaked, not the whole output.
std::string Around(const std::string& out, const std::string& secret) {
  const size_t at = out.find(secret);
  if (at == std::string::npos) return "";
  const size_t b = at > 120 ? at - 120 : 0;
  return out.substr(b, at - b + secret.size() + 40);
}

TEST(Redact, NoFakeCredentialReachesJsonOcsfSyslogOrTheJournal) {
  auto r = Builtin();
  const auto corpus = Corpus(11);
  auto events = CorpusEvents(corpus);
  for (auto& e : events) r->RedactEvent(&e);

  std::string json, ocsf, syslog;
  for (const auto& e : events) {
    std::string line;
    sinks::AppendJson(e, &line);
    json += line + "\n";
    sinks::AppendOcsf(e, &ocsf);
    ocsf += "\n";
    sinks::AppendSyslogFrame(line, "host", "writ", 1, absl::Now(), &syslog);
  }
  char dir[] = "/tmp/redact_test.XXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr);
  journal::JournalOptions jo;
  jo.path = std::string(dir) + "/journal.jsonl";
  auto j = journal::Journal::Open(jo);
  ASSERT_TRUE(j.ok()) << j.status();
  ASSERT_TRUE((*j)->Append(events).ok());
  j->reset();
  std::ifstream in(jo.path);
  std::stringstream ss;
  ss << in.rdbuf();
  std::string journal = ss.str();
  std::filesystem::remove_all(dir);
  ASSERT_EQ(std::count(journal.begin(), journal.end(), '\n'), static_cast<long>(events.size()));

  for (const auto& [name, out] : {std::pair{"json", &json}, std::pair{"ocsf", &ocsf},
                                  std::pair{"syslog", &syslog}, std::pair{"journal", &journal}}) {
    for (const Case& c : corpus) {
      EXPECT_EQ(Around(*out, c.secret), "")
          << name << " carries the " << c.rule << " secret in clear";
    }
    EXPECT_THAT(*out, HasSubstr("[REDACTED:")) << name;
  }
}

TEST(Redact, CountersCountMarksByRuleAndRenderForMetrics) {
  auto r = Builtin();
  Fakes f(3);
  std::string a = "ghp_" + f.Alnum(36) + " ghp_" + f.Alnum(36);
  std::string b = "AKIA" + f.Of(kUpperDigits, 16);
  r->RedactText(&a);
  r->RedactText(&b);
  std::map<std::string, uint64_t> counts;
  for (const auto& c : r->Counts()) counts[std::string(c.rule)] = c.redactions;
  EXPECT_EQ(counts.size(), r->rule_count());
  EXPECT_EQ(counts["github-pat"], 2u);
  EXPECT_EQ(counts["aws-access-key-id"], 1u);
  EXPECT_EQ(counts["jwt"], 0u);
  std::string m;
  AppendRedactionMetrics(*r, &m);
  EXPECT_THAT(m, HasSubstr("# TYPE writ_redactions_total counter\n"));
  EXPECT_THAT(m, HasSubstr("writ_redactions_total{rule=\"github-pat\"} 2\n"));
  EXPECT_THAT(m, HasSubstr("writ_redactions_total{rule=\"jwt\"} 0\n"));
}

// Every string field of the schema is either redacted by RedactEvent or listed, with its reason, in
// FieldsNotRedacted. A field added to event.proto without a decision fails here.
void FillStrings(google::protobuf::Message* m, const std::string& secret,
                 std::vector<std::string>* filled) {
  const auto* d = m->GetDescriptor();
  const auto* refl = m->GetReflection();
  const auto& skip = FieldsNotRedacted();
  for (int i = 0; i < d->field_count(); ++i) {
    const auto* fd = d->field(i);
    const bool listed = std::find(skip.begin(), skip.end(), fd->full_name()) != skip.end();
    if (fd->is_map()) {
      if (listed) continue;
      auto* entry = refl->AddMessage(m, fd);
      entry->GetReflection()->SetString(entry, entry->GetDescriptor()->FindFieldByName("key"), "p");
      entry->GetReflection()->SetString(entry, entry->GetDescriptor()->FindFieldByName("value"),
                                        secret);
      filled->push_back(fd->full_name());
    } else if (fd->cpp_type() == google::protobuf::FieldDescriptor::CPPTYPE_MESSAGE) {
      if (fd->is_repeated()) continue;  // no repeated messages in the schema today
      FillStrings(refl->MutableMessage(m, fd), secret, filled);
    } else if (fd->cpp_type() == google::protobuf::FieldDescriptor::CPPTYPE_STRING && !listed) {
      if (fd->is_repeated()) {
        refl->AddString(m, fd, "x");
        refl->AddString(m, fd, secret);
      } else {
        refl->SetString(m, fd, secret);
      }
      filled->push_back(fd->full_name());
    }
  }
}

TEST(Redact, RedactEventCoversEveryStringFieldOfTheSchema) {
  auto r = Builtin();
  Fakes f(4);
  const std::string secret = "ghp_" + f.Alnum(36);
  v1::Event e;
  std::vector<std::string> filled;
  FillStrings(&e, secret, &filled);
  ASSERT_GT(filled.size(), 20u);
  v1::Event before = e;
  r->RedactEvent(&e);
  std::string text;
  google::protobuf::TextFormat::PrintToString(e, &text);
  EXPECT_THAT(text, Not(HasSubstr(secret)))
      << "a string field RedactEvent does not cover (add it there, or to "
         "FieldsNotRedacted with the reason):\n"
      << text;
  // Every listed name is a string field of the schema (a renamed or removed field leaves no stale
  // entry).
  std::vector<std::string> all;
  std::function<void(const google::protobuf::Descriptor*)> walk =
      [&](const google::protobuf::Descriptor* d) {
        for (int i = 0; i < d->field_count(); ++i) {
          const auto* fd = d->field(i);
          if (fd->cpp_type() == google::protobuf::FieldDescriptor::CPPTYPE_STRING)
            all.push_back(fd->full_name());
          if (fd->cpp_type() == google::protobuf::FieldDescriptor::CPPTYPE_MESSAGE && !fd->is_map())
            walk(fd->message_type());
        }
      };
  walk(v1::Event::descriptor());
  for (const auto& name : FieldsNotRedacted()) {
    EXPECT_THAT(all, testing::Contains(std::string(name)));
  }
}

// DNS exfiltration carries data in the labels of the names a task asks for: a token there is
// masked in dns.query, the CNAME chain, the reason and a later connect's network.host; writd's
// vocabulary and the addresses it formats are left as they are.
TEST(Redact, ASecretInADnsNameIsMasked) {
  auto r = Builtin();
  Fakes f(12);
  std::string tok = "ghp_" + f.Alnum(36);
  std::transform(tok.begin(), tok.end(), tok.begin(), [](unsigned char c) {
    return static_cast<char>(std::tolower(c));  // the stub reports names in lower case
  });
  const std::string name = tok + ".x7.exfil.example.com";
  v1::Event e;
  e.set_kind("dns");
  auto* d = e.mutable_dns();
  d->set_query(name);
  d->set_qtype("A");
  d->set_verdict("allowed");
  d->set_reason("long_label under example.com: " + name);
  d->set_rule("*.example.com");
  d->set_rcode("NOERROR");
  d->add_cnames("edge.cdn.example.net");
  d->add_cnames(tok + ".cdn.example.net");
  d->add_answers("192.0.2.10");
  d->set_server("192.0.2.53:53");
  d->set_transport("udp");
  const RedactionReport rep = r->RedactEvent(&e);
  EXPECT_EQ(rep.marks, 3u);
  EXPECT_THAT(d->query(), testing::MatchesRegex(
                              R"(\[REDACTED:github-pat:[0-9a-f]{12}\]\.x7\.exfil\.example\.com)"));
  EXPECT_THAT(d->reason(), Not(HasSubstr(tok)));
  EXPECT_THAT(d->reason(),
              testing::StartsWith("long_label under example.com: [REDACTED:github-pat:"));
  EXPECT_EQ(d->cnames(0), "edge.cdn.example.net");
  EXPECT_THAT(d->cnames(1), Not(HasSubstr(tok)));
  // The same secret gives the same mark wherever it is.
  EXPECT_EQ(d->query().substr(0, d->query().find(']') + 1),
            d->cnames(1).substr(0, d->cnames(1).find(']') + 1));
  EXPECT_EQ(d->answers(0), "192.0.2.10");
  EXPECT_EQ(d->server(), "192.0.2.53:53");
  EXPECT_EQ(d->rule(), "*.example.com");

  v1::Event c;
  c.set_kind("connect");
  c.mutable_network()->set_dst_ip("192.0.2.10");
  c.mutable_network()->set_host(name);
  r->RedactEvent(&c);
  EXPECT_THAT(c.network().host(), Not(HasSubstr(tok)));
  EXPECT_THAT(c.network().host(), HasSubstr("[REDACTED:github-pat:"));
  EXPECT_EQ(c.network().dst_ip(), "192.0.2.10");

  std::string json, ocsf;
  sinks::AppendJson(e, &json);
  sinks::AppendOcsf(e, &ocsf);
  EXPECT_THAT(json + ocsf, Not(HasSubstr(tok)));

  // An ordinary name is not touched.
  v1::Event clean;
  clean.mutable_dns()->set_query("registry.npmjs.org");
  EXPECT_EQ(r->RedactEvent(&clean).marks, 0u);
  EXPECT_EQ(clean.dns().query(), "registry.npmjs.org");
}

TEST(Redact, CleanEventsAreNotCopiedOrAllocatedFor) {
  auto r = Builtin();
  v1::Event e;
  e.set_kind("open");
  e.mutable_agent()->set_spiffe_id("spiffe://example.org/agent/coder");
  e.mutable_agent()->set_principal("user:alice@example.org");
  e.mutable_process()->set_exe("/usr/bin/git");
  e.mutable_process()->set_comm("git");
  e.mutable_file()->set_path("/home/dev/proj/.git/objects/ab/cdef0123456789");
  v1::Event x;
  x.set_kind("exec");
  x.mutable_process()->set_exe("/usr/bin/make");
  for (const char* a : {"make", "-j2", "CFLAGS=-O2", "install"}) x.mutable_process()->add_args(a);
  r->RedactEvent(&e);  // warm
  r->RedactEvent(&x);
  const v1::Event e0 = e, x0 = x;
  testlib::AllocCounter::Start();
  RedactionReport a = r->RedactEvent(&e);
  RedactionReport b = r->RedactEvent(&x);
  const long allocs = testlib::AllocCounter::Stop();
  EXPECT_EQ(allocs, 0);
  EXPECT_EQ(a.marks + b.marks, 0u);
  EXPECT_EQ(e.SerializeAsString(), e0.SerializeAsString());
  EXPECT_EQ(x.SerializeAsString(), x0.SerializeAsString());
}

TEST(Redact, DefaultRedactorUsesTheBuiltinRules) {
  std::string s = "AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG";
  RedactSecrets(&s);
  EXPECT_THAT(s, testing::StartsWith("AWS_SECRET_ACCESS_KEY=[REDACTED:secret-assignment:"));
}

// ---- the host key
// -----------------------------------------------------------------------------------

TEST(RedactKey, CreatedOnceAs0600ThenLoadedAndBadFilesRefused) {
  char dir[] = "/tmp/redact_key.XXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr);
  const std::string path = std::string(dir) + "/redaction.key";
  auto k1 = LoadOrCreateRedactionKey(path);
  ASSERT_TRUE(k1.ok()) << k1.status();
  EXPECT_EQ(k1->size(), kRedactionKeyBytes);
  struct stat st {};
  ASSERT_EQ(stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  auto k2 = LoadOrCreateRedactionKey(path);
  ASSERT_TRUE(k2.ok());
  EXPECT_EQ(*k1, *k2);
  EXPECT_EQ(std::filesystem::directory_iterator(dir)->path(), path);  // no temporary left behind

  ASSERT_EQ(chmod(path.c_str(), 0644), 0);
  auto loose = LoadOrCreateRedactionKey(path);
  ASSERT_FALSE(loose.ok());
  EXPECT_THAT(std::string(loose.status().message()),
              HasSubstr("not readable by group or others (mode 0644)"));

  const std::string shortk = std::string(dir) + "/short.key";
  {
    std::ofstream o(shortk);
    o << "abc";
  }
  chmod(shortk.c_str(), 0600);
  auto bad = LoadOrCreateRedactionKey(shortk);
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(std::string(bad.status().message()), HasSubstr("3 bytes, expected 32"));

  const std::string link = std::string(dir) + "/link.key";
  ASSERT_EQ(symlink(path.c_str(), link.c_str()), 0);
  EXPECT_FALSE(LoadOrCreateRedactionKey(link).ok());  // never follows a planted symlink
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace writ::creds
