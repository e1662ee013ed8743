// Relying parties on other hosts (issue 19, item 6): the real writd serves its credential endpoints
// over TLS with an https issuer, introspection and revocation reserved to one client certificate.
// A Node relying party with stock OIDC libraries (openid-client, jose; pinned in
// tests/e2e/creds/package.json, npm-installed into the build dir) discovers writd from the issuer
// URL alone, fetches the JWKS, verifies a JWT-SVID a task got from writd's Workload API, and
// introspects it with and without its certificate. Then the agent as attacker: a process inside a
// task, which holds its own token but not the relying party's key, cannot introspect or revoke
// (401), nor get through with a certificate of its own making (handshake refused). Certificates are
// made by the test (OpenSSL, tests/unit/tls_test_server.h); 127.0.0.1 stands for the other host.
// Needs root (writd loads BPF); skips without it or without the npm registry.
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "testlib/writd_fixture.h"
#include "unit/tls_test_server.h"

#ifndef WRIT_SOURCE_DIR
#error "WRIT_SOURCE_DIR must be defined"
#endif
#ifndef WRIT_CREDS_NODE_DIR
#error "WRIT_CREDS_NODE_DIR must be defined"
#endif

namespace writ::testlib {
namespace {

using ::testing::HasSubstr;

constexpr char kIntent[] = R"(apiVersion: writ.dev/v1
kind: Intent
name: t-rp
exec: {deny: [/usr/bin/sudo]}
)";
constexpr char kHost[] = "writ-a.test";  // writd's host as the relying party names it
constexpr char kAudience[] = "https://billing.example";
constexpr char kRelyingParty[] = "spiffe://example.org/rp/billing";

std::string Q(const std::string& s) { return "'" + s + "'"; }  // our paths have no quotes

// The pinned OIDC libraries in the build dir (never the source tree): "" when installed, else why
// not.
std::string InstallNodeLibraries(const std::string& node_dir) {
  std::filesystem::create_directories(node_dir);
  const std::string src = std::string(WRIT_SOURCE_DIR) + "/tests/e2e/creds/";
  for (const char* f : {"package.json", "package-lock.json", "oidc_rp.mjs"}) {
    std::filesystem::copy_file(src + f, node_dir + "/" + f,
                               std::filesystem::copy_options::overwrite_existing);
  }
  if (std::filesystem::exists(node_dir + "/node_modules/openid-client/package.json") &&
      std::filesystem::exists(node_dir + "/node_modules/jose/package.json")) {
    return "";
  }
  CmdResult npm =
      RunCommand({"/usr/bin/env", "npm", "ci", "--no-audit", "--no-fund", "--prefix", node_dir},
                 std::chrono::minutes(4));
  if (npm.exit_code == 0) return "";
  return absl::StrCat("npm ci failed (registry unreachable?), exit ", npm.exit_code, ": ",
                      npm.err.substr(0, 400));
}

class WritdRelyingParty : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "needs root (BPF, cgroups)";
    // Root's own directory: the agent (WRIT_TEST_AGENT_USER) may read the server CA, never a key.
    char tmpl[] = "/tmp/writ-rp-pki-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    pki_dir_ = tmpl;
    chmod(pki_dir_.c_str(), 0755);
    server_ca_ = std::make_unique<testing::TestPki>(pki_dir_, "server");
    client_ca_ = std::make_unique<testing::TestPki>(pki_dir_, "clients");
    server_ = server_ca_->Issue("writd", "writd on writ-a", {absl::StrCat("DNS:", kHost)});
    rp_ = client_ca_->Issue("rp", "billing", {absl::StrCat("URI:", kRelyingParty)});
    other_client_ = client_ca_->Issue("other", "other-rp", {"URI:spiffe://example.org/rp/other"});
    for (const auto* f : {&server_, &rp_, &other_client_}) chmod(f->key.c_str(), 0600);
    static int tests = 0;  // a port per test, also when one process runs them all
    port_ = 20000 + static_cast<int>((getpid() * 11 + 101 * tests++) % 20000);
    issuer_ = absl::StrCat("https://", kHost, ":", port_);

    WritdInstance::Options o;
    o.mode = "record";
    o.policies = {{"rp.yaml", kIntent}};
    o.extra_config = absl::StrCat("http:\n  listen: 127.0.0.1:", port_, "\n  issuer: ", issuer_,
                                  "\n  tls:\n    cert: ", server_.cert, "\n    key: ", server_.key,
                                  "\n    client_ca: ", client_ca_->ca().cert,
                                  "\n  client_auth: [introspect, revoke]\n  client_ids: [",
                                  kRelyingParty, "]\n");
    ASSERT_TRUE(w_.Start(o).ok()) << w_.log();
  }
  void TearDown() override {
    if (w_.running()) EndTask();
    if (w_.running()) {
      EXPECT_EQ(w_.Stop(), 0) << w_.log();
    }
    if (!pki_dir_.empty()) std::filesystem::remove_all(pki_dir_);
  }

  // Starts a task that takes its JWT-SVID for kAudience from writd's Workload API into task.jwt,
  // runs `then` (its output into task.out), and stays alive until EndTask: writd revokes a task's
  // tokens when the task ends. Returns the token ("" if none came within 20 s).
  std::string StartTask(const std::string& then = "true") {
    const std::string dir = w_.dir();
    const std::string workload = std::filesystem::path(w_.socket()).parent_path() / "workload.sock";
    const std::string script = absl::StrCat(
        "SPIFFE_ENDPOINT_SOCKET=", Q("unix:" + workload), " ", absl::StrJoin(WritInTaskArgv(), " "),
        " svid --audience ", kAudience, " > ", Q(dir + "/task.jwt.tmp"), " && mv ",
        Q(dir + "/task.jwt.tmp"), " ", Q(dir + "/task.jwt"), " && { ", then, "; } > ",
        Q(dir + "/task.out.tmp"), " 2>&1; mv ", Q(dir + "/task.out.tmp"), " ", Q(dir + "/task.out"),
        "; i=0; while [ ! -e ", Q(dir + "/task.done"),
        " ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done");
    task_ = w_.WritAsync(
        {"run", "--agent", "spiffe://example.org/agent/x", "--", "/bin/sh", "-c", script},
        "writ-run");
    WaitFor(dir + "/task.jwt");
    return std::string(absl::StripAsciiWhitespace(Slurp(dir + "/task.jwt")));
  }
  std::string TaskOutput() {
    WaitFor(w_.dir() + "/task.out");
    return Slurp(w_.dir() + "/task.out");
  }
  void EndTask() {
    if (task_ <= 0) return;
    std::ofstream(w_.dir() + "/task.done") << "done";
    CmdResult r = w_.WaitAsync(task_, "writ-run", std::chrono::seconds(30));
    EXPECT_EQ(r.exit_code, 0) << r.err;
    task_ = -1;
  }
  static void WaitFor(const std::string& path) {
    const absl::Time until = absl::Now() + absl::Seconds(20);
    while (!std::filesystem::exists(path) && absl::Now() < until)
      absl::SleepFor(absl::Milliseconds(50));
  }

  // curl to writd the way a client on another host reaches it: by the issuer's name.
  std::string Curl(const std::string& extra) const {
    return absl::StrCat("/usr/bin/curl -s --max-time 5 --resolve ", kHost, ":", port_,
                        ":127.0.0.1 --cacert ", Q(server_ca_->ca().cert), " ", extra);
  }

  WritdInstance w_;
  std::string pki_dir_;
  std::unique_ptr<testing::TestPki> server_ca_, client_ca_;
  testing::TestPki::Files server_, rp_, other_client_;
  int port_ = 0;
  std::string issuer_;
  pid_t task_ = -1;
};

TEST_F(WritdRelyingParty, AStockOidcClientDiscoversVerifiesAndIntrospects) {
  const std::string node_dir = WRIT_CREDS_NODE_DIR;
  if (std::string why = InstallNodeLibraries(node_dir); !why.empty()) GTEST_SKIP() << why;
  const std::string svid = StartTask();
  ASSERT_EQ(std::count(svid.begin(), svid.end(), '.'), 2)
      << svid << Slurp(w_.dir() + "/writ-run.err");
  const std::string svid_file = pki_dir_ + "/svid.jwt";
  std::ofstream(svid_file) << svid;

  CmdResult rp = RunCommand({"/usr/bin/env", "node", node_dir + "/oidc_rp.mjs", issuer_,
                             server_ca_->ca().cert, rp_.cert, rp_.key, svid_file, kAudience},
                            std::chrono::seconds(60));
  ASSERT_EQ(rp.exit_code, 0) << rp.out << rp.err;
  const nlohmann::json out = nlohmann::json::parse(rp.out, nullptr, /*allow_exceptions=*/false);
  ASSERT_TRUE(out.is_object()) << rp.out << rp.err;
  SCOPED_TRACE(out.dump(2));
  // Discovery from the issuer URL alone: openid-client checks that the document names the same
  // issuer; every URL in it is on the issuer.
  EXPECT_EQ(out["discovery"]["issuer"], issuer_);
  EXPECT_EQ(out["discovery"]["jwks_uri"], issuer_ + "/jwks.json");
  EXPECT_EQ(out["discovery"]["introspection_endpoint"], issuer_ + "/introspect");
  EXPECT_EQ(out["discovery"]["introspection_auth"], nlohmann::json::array({"tls_client_auth"}));
  // jose verifies the JWT-SVID against the fetched JWKS: signature, iss, aud.
  EXPECT_EQ(out["verify"]["iss"], issuer_);
  EXPECT_EQ(out["verify"]["sub"], "spiffe://example.org/agent/x");
  EXPECT_EQ(out["verify"]["aud"], nlohmann::json::array({kAudience}));
  EXPECT_EQ(out["verify_tampered"]["error"], "ERR_JWS_SIGNATURE_VERIFICATION_FAILED");
  EXPECT_EQ(out["wrong_audience"]["error"], "ERR_JWT_CLAIM_VALIDATION_FAILED");
  // Introspection with the relying party's certificate; without it, 401 invalid_client.
  EXPECT_EQ(out["introspect"]["active"], true);
  EXPECT_EQ(out["introspect"]["sub"], "spiffe://example.org/agent/x");
  EXPECT_EQ(out["introspect_without_cert"]["status"], 401);
  EXPECT_EQ(out["introspect_without_cert"]["oauth_error"], "invalid_client");

  // Another client of the same CA, not in client_ids: 403.
  CmdResult other = RunCommand(
      {"/bin/sh", "-c",
       Curl(absl::StrCat("--cert ", Q(other_client_.cert), " --key ", Q(other_client_.key),
                         " -d token=", svid, " https://", kHost, ":", port_, "/introspect"))});
  EXPECT_THAT(other.out, HasSubstr("\"error\":\"unauthorized_client\"")) << other.err;
}

// The agent as attacker: inside a task (as WRIT_TEST_AGENT_USER) it holds its own token and can
// reach the port, but not the relying party's key. Introspection and revocation answer 401; a
// certificate it makes itself (its own CA, the relying party's SPIFFE ID) fails the handshake; the
// token is still active afterwards.
TEST_F(WritdRelyingParty, ATaskCannotIntrospectOrRevokeWithoutTheClientCertificate) {
  // The attacker's own CA and a certificate claiming the relying party's identity, readable by it.
  const std::string forge_dir = w_.dir() + "/forged";
  std::filesystem::create_directories(forge_dir);
  testing::TestPki forger(forge_dir, "attacker");
  testing::TestPki::Files forged =
      forger.Issue("forged", "billing", {absl::StrCat("URI:", kRelyingParty)});
  chmod(forged.key.c_str(), 0644);
  const std::string url = absl::StrCat("https://", kHost, ":", port_);
  const std::string code = "-o /dev/null -w '%{http_code}\\n' ";
  const std::string token = "-d token=$(cat " + Q(w_.dir() + "/task.jwt") + ") ";
  // Inside the task, with its own token: introspect, revoke, read the relying party's key, revoke
  // with the forged certificate, and fetch the public JWKS.
  const std::string svid = StartTask(absl::StrCat(
      Curl(code + token + url + "/introspect"), "; ", Curl(code + token + url + "/revoke"), "; ",
      "cat ", Q(rp_.key), " >/dev/null 2>&1 && echo key-read || echo no-key; ",
      Curl(absl::StrCat(code, "--cert ", Q(forged.cert), " --key ", Q(forged.key), " ", token, url,
                        "/revoke")),
      "; echo curl-exit=$?; ", Curl(code + url + "/jwks.json")));
  ASSERT_EQ(std::count(svid.begin(), svid.end(), '.'), 2)
      << svid << Slurp(w_.dir() + "/writ-run.err");
  const std::string out = TaskOutput();
  EXPECT_THAT(out, ::testing::StartsWith("401\n401\nno-key\n"))
      << out << Slurp(w_.dir() + "/writ-run.err") << Slurp(w_.dir() + "/task.out.tmp");
  // The forged certificate: no HTTP status (000), curl reports a TLS failure (35 or 56).
  EXPECT_THAT(out, ::testing::ContainsRegex("000\ncurl-exit=(35|56)\n")) << out;
  EXPECT_THAT(out, ::testing::EndsWith("200\n")) << "the JWKS serves anyone: " << out;

  // The relying party still sees the task's token active: none of that revoked it.
  CmdResult check = RunCommand({"/bin/sh", "-c",
                                Curl(absl::StrCat("--cert ", Q(rp_.cert), " --key ", Q(rp_.key),
                                                  " -d token=", svid, " ", url, "/introspect"))});
  EXPECT_THAT(check.out, HasSubstr("\"active\":true")) << check.out << check.err;
  CmdResult m = RunCommand({"/bin/sh", "-c", Curl(url + "/metrics")});
  EXPECT_THAT(m.out, HasSubstr("writ_http_tls_handshake_failures_total 1"))
      << m.out.substr(m.out.find("writ_http_"));
  // Once the task ends, its token is revoked: the relying party's introspection says so.
  EndTask();
  check = RunCommand({"/bin/sh", "-c",
                      Curl(absl::StrCat("--cert ", Q(rp_.cert), " --key ", Q(rp_.key),
                                        " -d token=", svid, " ", url, "/introspect"))});
  EXPECT_EQ(check.out, "{\"active\":false}") << check.err;
}

}  // namespace
}  // namespace writ::testlib
