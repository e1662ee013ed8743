// Secrets never reach the SIEM, with the real writd: a task runs /bin/echo with a fake credential
// of every common shape (generated here from a fixed seed, never a real one) and the JSONL events,
// an OCSF file sink and the hash-chained journal hold none of them in clear; each echo is followed
// by a `secret` finding (OWASP-NHI2); the same secret gives the same mark; /metrics counts by rule.
// The task also tries to turn redaction against its own writ: a denied file reached through a
// directory named like a secret (`token=.../.env`) is still judged on the real path. A bad rules
// file or a key file others can read stops writd from starting, with the file, line and field.
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <random>
#include <regex>
#include <sstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "testlib/listener.h"
#include "testlib/writd_fixture.h"

namespace writ::testlib {
namespace {

using ::testing::HasSubstr;
using json = nlohmann::json;

constexpr char kIntent[] = R"(apiVersion: writ.dev/v1
kind: Intent
name: t-redact
exec: {deny: [/usr/bin/sudo]}
files:
  read: ["/**"]
  write: ["/**"]
  deny: ["**/.env"]
)";

constexpr char kAlnum[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
constexpr char kB64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
constexpr char kB64Url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
constexpr char kUpper[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

struct Shape {
  std::string rule;               // the rule expected to name the mark
  std::string secret;             // never in any output
  std::vector<std::string> args;  // /bin/echo's arguments (each under the kernel's 256-byte cut)
};

std::vector<Shape> Shapes() {
  std::mt19937_64 rng(23);
  auto of = [&](const char* cs, size_t n) {
    const size_t m = std::strlen(cs);
    std::string s;
    for (size_t i = 0; i < n; ++i) s.push_back(cs[rng() % m]);
    return s;
  };
  std::vector<Shape> v;
  auto bare = [&](std::string rule, std::string tok) { v.push_back({rule, tok, {tok}}); };
  bare("openai-api-key", "sk-proj-" + of(kAlnum, 58) + "T3BlbkFJ" + of(kAlnum, 58));
  bare("anthropic-api-key", "sk-ant-api03-" + of(kB64Url, 93) + "AA");
  bare("google-api-key", "AIza" + of(kB64Url, 35));
  bare("huggingface-token", "hf_" + of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ", 34));
  bare("github-pat", "ghp_" + of(kAlnum, 36));
  bare("github-pat", "github_pat_" + of(kAlnum, 22) + "_" + of(kAlnum, 59));
  bare("gitlab-pat", "glpat-" + of(kB64Url, 20));
  bare("slack-token",
       "xoxb-" + of("0123456789", 12) + "-" + of("0123456789", 13) + "-" + of(kAlnum, 24));
  bare("aws-access-key-id", "AKIA" + of(kUpper, 16));
  bare("npm-token", "npm_" + of(kAlnum, 36));
  bare("stripe-key", "sk_live_" + of(kAlnum, 24));
  bare("jwt", "eyJhbGciOiJSUzI1NiJ9.eyJ" + of(kB64Url, 40) + "." + of(kB64Url, 43));
  {
    std::string s = of(kB64, 40);
    v.push_back({"aws-secret-access-key", s, {"AWS_SECRET_ACCESS_KEY=" + s}});
    std::string k = of(kB64, 86) + "==";
    v.push_back(
        {"azure-storage-key", k, {"DefaultEndpointsProtocol=https;AccountName=a;AccountKey=" + k}});
    std::string body = of(kB64, 60);
    v.push_back(
        {"gcp-service-account-key",
         body,
         {"{\"type\": \"service_account\", \"private_key\": \"-----BEGIN PRIVATE KEY-----\\n" +
          body + "\\n-----END PRIVATE KEY-----\\n\"}"}});
    std::string pem = of(kB64, 64);
    v.push_back(
        {"private-key",
         pem,
         {"-----BEGIN OPENSSH PRIVATE KEY-----\n" + pem + "\n-----END OPENSSH PRIVATE KEY-----"}});
  }
  auto pw = [&] { return of(kAlnum, 16); };
  std::string p = pw();
  v.push_back({"url-credentials", p, {"postgres://app:" + p + "@db.internal:5432/app"}});
  p = of(kB64Url, 40);
  v.push_back({"http-authorization", p, {"-H", "Authorization: Bearer " + p}});
  p = pw();
  v.push_back({"bearer-argument", p, {"Authorization:", "Bearer", p}});
  p = pw();
  v.push_back({"secret-option", p, {"--password", p}});
  p = pw();
  v.push_back({"secret-option", p, {"--token", p}});
  p = pw();
  v.push_back({"secret-option", p, {"--api-key", p}});
  p = pw();
  v.push_back({"secret-option", p, {"--password=" + p}});
  p = pw();
  v.push_back({"sshpass-password", p, {"sshpass", "-p", p, "ssh", "host"}});
  p = pw();
  v.push_back({"secret-assignment", p, {"DB_PASSWORD=" + p}});
  p = pw();
  v.push_back({"secret-assignment", p, {"api_key: " + p}});
  p = pw();
  v.push_back({"secret-assignment", p, {"{\"client_secret\": \"" + p + "\"}"}});
  return v;
}

std::string Quote(const std::string& s) {
  return "'" + absl::StrReplaceAll(s, {{"'", "'\\''"}}) + "'";
}

double Metric(const std::string& exposition, const std::string& series) {
  std::istringstream in(exposition);
  for (std::string l; std::getline(in, l);) {
    if (l.rfind(series + " ", 0) == 0) return std::stod(l.substr(series.size() + 1));
  }
  return -1;
}

uint16_t FreePort() {
  Listener l(AF_INET);
  const uint16_t port = l.port;
  close(l.fd);
  return port;
}

// Polls `path` (bounded: 10 s) until pred accepts its contents; returns them.
std::string WaitForFile(const std::string& path,
                        const std::function<bool(const std::string&)>& pred) {
  std::string s;
  for (int i = 0; i < 100; i++) {
    s = Slurp(path);
    if (pred(s)) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return s;
}

int Count(const std::string& text, const std::string& needle) {
  int n = 0;
  for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) n++;
  return n;
}

TEST(RedactE2e, NoFakeCredentialReachesJsonlOcsfOrTheJournal) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root (BPF, cgroups)";
  const uint16_t http_port = FreePort();
  WritdInstance w;
  WritdInstance::Options o;
  o.mode = "monitor";
  o.policies = {{"redact.yaml", kIntent}};
  o.extra_args = {"--http", absl::StrCat("127.0.0.1:", http_port)};
  char tmpl[] = "/tmp/writ-redact-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  const std::string work = tmpl;
  chmod(work.c_str(), 0777);
  o.extra_config = absl::StrCat("sinks:\n  - {type: file, name: ocsf, path: ", work,
                                "/ocsf.jsonl, format: ocsf}\n");
  ASSERT_TRUE(w.Start(o).ok()) << w.log();

  const auto shapes = Shapes();
  std::string script = "set -e\n";
  for (const Shape& s : shapes) {
    std::vector<std::string> q;
    for (const auto& a : s.args) q.push_back(Quote(a));
    absl::StrAppend(&script, "/bin/echo ", absl::StrJoin(q, " "), " > /dev/null\n");
  }
  // The same token again: the same mark.
  absl::StrAppend(&script, "/bin/echo ", Quote(shapes[4].args[0]), " > /dev/null\n");
  // A denied file reached through a directory named like a secret: judged on the real path.
  const std::string envdir = work + "/token=Zq8uVn3rT5xW2yA7";
  absl::StrAppend(&script, "mkdir -p ", Quote(envdir), "\n/bin/cat ", Quote(envdir + "/.env"),
                  " 2>/dev/null || true\n");
  const std::string script_path = work + "/agent.sh";
  std::ofstream(script_path) << script;
  chmod(script_path.c_str(), 0755);

  CmdResult r = w.Writ({"run", "--agent", "spiffe://example.org/agent/redact", "--intent",
                        "t-redact", "--", "/bin/sh", script_path},
                       std::chrono::seconds(60));
  ASSERT_EQ(r.exit_code, 0) << r.err << w.log();
  const std::string task = TaskIdFrom(r.err);
  ASSERT_FALSE(task.empty()) << r.err;
  ASSERT_FALSE(w.WaitForEvent([&](const json& e) {
                  return e.value("kind", "") == "task_end" &&
                         e["agent"].value("task_id", "") == task;
                }).is_null());
  const int echoes = static_cast<int>(shapes.size()) + 1;

  const std::string jsonl = Slurp(w.events_path());
  const std::string ocsf = WaitForFile(work + "/ocsf.jsonl", [](const std::string& s) {
    return s.find("\"activity_name\":\"task_end\"") != std::string::npos;
  });
  const std::string journal =
      WaitForFile(w.dir() + "/state/journal.jsonl", [&](const std::string& s) {
        return Count(s, "\"kind\":\"secret\"") >= echoes &&
               s.find("files.deny[0]") != std::string::npos;
      });
  for (const auto& [name, out] :
       {std::pair{"jsonl", &jsonl}, std::pair{"ocsf", &ocsf}, std::pair{"journal", &journal}}) {
    ASSERT_FALSE(out->empty()) << name;
    for (const Shape& s : shapes) {
      EXPECT_EQ(out->find(s.secret), std::string::npos)
          << name << " carries the " << s.rule << " secret in clear";
    }
    EXPECT_EQ(out->find("Zq8uVn3rT5xW2yA7"), std::string::npos)
        << name << ": the token= directory name";
  }
  EXPECT_GE(Count(journal, "\"kind\":\"secret\""), echoes) << journal;

  // Each echo: its argv marked by the expected rule, then a `secret` finding.
  std::vector<json> execs, secrets;
  json env_open;
  for (const json& e : w.TaskEvents(task)) {
    const std::string exe = e.contains("process") ? e["process"].value("exe", "") : "";
    if (e["kind"] == "exec" && exe.size() >= 5 && exe.substr(exe.size() - 5) == "/echo")
      execs.push_back(e);
    if (e["kind"] == "secret") secrets.push_back(e);
    if (e["kind"] == "open" && e.value("verdict", "") == "violation") env_open = e;
  }
  ASSERT_EQ(static_cast<int>(execs.size()), echoes);
  for (size_t i = 0; i < shapes.size(); ++i) {
    EXPECT_THAT(execs[i]["process"]["args"].dump(), HasSubstr("[REDACTED:" + shapes[i].rule + ":"))
        << shapes[i].rule << ": " << execs[i].dump();
  }
  EXPECT_EQ(execs[4]["process"]["args"], execs.back()["process"]["args"])
      << "the same secret, the same mark";
  ASSERT_EQ(static_cast<int>(secrets.size()),
            echoes + 2);  // and mkdir, cat of the token= directory
  for (const json& s : secrets) {
    EXPECT_EQ(s["finding"]["rule"], "writ/secret.argv");
    EXPECT_EQ(s["finding"]["category"], "secret");
    EXPECT_EQ(s["finding"]["frameworks"], json::array({"OWASP-NHI2", "MAESTRO-L6"}));
    EXPECT_FALSE(s.contains("verdict")) << "not a verdict on the intent";
  }
  EXPECT_THAT(ocsf, HasSubstr("\"title\":\"writ/secret.argv\""));

  // The task named a directory like a secret: the open of the denied .env under it is still a
  // violation of files.deny (judged before redaction), and its path is redacted in the event.
  ASSERT_FALSE(env_open.is_null()) << "the .env open was not judged a violation";
  EXPECT_EQ(env_open["finding"]["rule"], "t-redact/files.deny[0]");
  EXPECT_THAT(env_open["file"].value("path", ""), HasSubstr("/token=[REDACTED:secret-assignment:"));

  const std::string m =
      RunCommand({"/usr/bin/curl", "-sf", absl::StrCat("http://127.0.0.1:", http_port, "/metrics")})
          .out;
  EXPECT_GE(Metric(m, R"(writ_redactions_total{rule="github-pat"})"), 3)
      << m;  // ghp_ twice, github_pat_
  EXPECT_GE(Metric(m, R"(writ_redactions_total{rule="secret-option"})"), 4) << m;
  EXPECT_EQ(Metric(m, R"(writ_redactions_total{rule="pypi-token"})"), 0) << m;
  EXPECT_EQ(w.Stop(), 0) << w.log();
  std::filesystem::remove_all(work);
}

TEST(RedactE2e, BadRulesFileOrLooseKeyStopsTheStart) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root (BPF, cgroups)";
  char tmpl[] = "/tmp/writ-redact-cfg-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  const std::string dir = tmpl;
  std::ofstream(dir + "/rules.yaml")
      << "version: 1\nrules:\n  - id: acme\n    pattern: 'acme_(['\n    keywords: [acme_]\n";
  {
    WritdInstance w;
    WritdInstance::Options o;
    o.extra_config = "redaction: {rules: " + dir + "/rules.yaml}\n";
    EXPECT_FALSE(w.Start(o).ok());
    EXPECT_THAT(w.log(),
                HasSubstr(dir + "/rules.yaml:4: rules[0].pattern: invalid RE2 expression"));
  }
  std::ofstream(dir + "/loose.key") << std::string(32, 'k');
  chmod((dir + "/loose.key").c_str(), 0644);
  {
    WritdInstance w;
    WritdInstance::Options o;
    o.extra_config = "redaction: {key: " + dir + "/loose.key}\n";
    EXPECT_FALSE(w.Start(o).ok());
    EXPECT_THAT(w.log(), HasSubstr("not readable by group or others (mode 0644)"));
  }
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace writ::testlib
