// daemon: config loader errors (FILE:LINE: key: message), approvals (action binding, expiry,
// grants), and the userspace twin of the BPF path hash against hand-computed FNV-1a values.
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include "bpf/path_hash.h"
#include "bpf/task_tables.h"
#include "creds/redact.h"
#include "daemon/approvals.h"
#include "daemon/config.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "intent/intent.h"
#include "testlib/bundle_keys.h"

namespace writ::daemon {
namespace {

using ::testing::HasSubstr;

class ConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/writ-core-config-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string Write(const std::string& body) {
    std::string p = dir_ + "/writd.yaml";
    std::ofstream(p) << body;
    return p;
  }
  std::string dir_;
};

TEST_F(ConfigTest, FullConfigAndRelativePaths) {
  std::string p = Write(
      "mode: enforce\n"
      "policies: pol\n"
      "events: out/ev.jsonl\n"
      "state_dir: /var/x\n"
      "run_dir: /run/x\n"
      "cgroup_subtree: writ-test-1\n"
      "ring_buffer_bytes: 65536\n"
      "drain_interval: 5ms\n"
      "pipeline_nice: -5\n"
      "on_daemon_loss: freeze\n"
      "bpf_lsm: off\n"
      "sinks: []\n");
  auto c = LoadConfig(p);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->mode, "enforce");
  EXPECT_EQ(c->policies_dir, dir_ + "/pol");
  EXPECT_EQ(c->events, dir_ + "/out/ev.jsonl");
  EXPECT_EQ(c->state_dir, "/var/x");
  EXPECT_EQ(c->run_dir, "/run/x");
  EXPECT_EQ(c->cgroup_subtree, "writ-test-1");
  EXPECT_EQ(c->ring_buffer_bytes, 65536u);
  EXPECT_EQ(c->drain_interval, absl::Milliseconds(5));
  EXPECT_EQ(c->pipeline_nice, -5);
  EXPECT_EQ(c->on_daemon_loss, "freeze");
  EXPECT_EQ(c->bpf_lsm, "off");
}

TEST_F(ConfigTest, RelativeStateAndRunDirsResolveAgainstTheConfigFile) {
  auto c = LoadConfig(Write("state_dir: state\nrun_dir: ./run\n"));
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->state_dir, dir_ + "/state");
  EXPECT_EQ(c->run_dir, dir_ + "/run");
}

TEST_F(ConfigTest, EventsDashStaysStdout) {
  auto c = LoadConfig(Write("events: \"-\"\n"));
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->events, "-");
}

TEST_F(ConfigTest, ShippedConfigLoads) {
  auto c = LoadConfig(WRIT_SOURCE_DIR "/policies/writd.yaml");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->mode, "monitor");
}

TEST_F(ConfigTest, ControlGroupsResolveAndAnUnknownGroupNamesFileLineField) {
  auto c = LoadConfig(Write("control: {group: root, admin_group: root}\n"));
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->control_gid, 0);
  EXPECT_EQ(c->admin_gid, 0);
  c = LoadConfig(Write("mode: monitor\ncontrol:\n  group: no-such-group-here\n"));
  ASSERT_FALSE(c.ok());
  EXPECT_THAT(c.status().message(), HasSubstr("writd.yaml:3: control.group"));
  EXPECT_THAT(c.status().message(), HasSubstr("no group \"no-such-group-here\""));
  c = LoadConfig(Write("control: {owner: x}\n"));
  EXPECT_THAT(c.status().message(), HasSubstr("control.owner: unknown key"));
}

TEST_F(ConfigTest, UnknownKeyNamesFileLineKey) {
  std::string p = Write("mode: monitor\n# comment\nbogus_key: 1\n");
  auto c = LoadConfig(p);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().message(), p + ":3: bogus_key: unknown key");
}

TEST_F(ConfigTest, CredentialProviders) {
  auto c =
      LoadConfig(Write("credentials:\n"
                       "  providers:\n"
                       "    - name: pg\n"
                       "      type: postgres\n"
                       "      conninfo: host=/run/postgresql user=writ_admin\n"
                       "      grants: [\"SELECT ON TABLE orders\"]\n"
                       "    - {name: hook, type: webhook, url: \"http://127.0.0.1:9/caep\"}\n"));
  ASSERT_TRUE(c.ok()) << c.status();
  ASSERT_EQ(c->credential_providers.size(), 2u);
  EXPECT_EQ(c->credential_providers[0].name, "pg");
  EXPECT_EQ(c->credential_providers[0].type, "postgres");
  EXPECT_EQ(c->credential_providers[0].params.at("conninfo"),
            "host=/run/postgresql user=writ_admin");
  EXPECT_EQ(c->credential_providers[0].grants, std::vector<std::string>{"SELECT ON TABLE orders"});
  EXPECT_EQ(c->credential_providers[1].params.at("url"), "http://127.0.0.1:9/caep");
  EXPECT_EQ(c->revocation_alert_after, absl::Minutes(5));  // the default
  c = LoadConfig(Write("credentials:\n  revocation_alert_after: 90s\n  providers: []\n"));
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->revocation_alert_after, absl::Seconds(90));
}

TEST_F(ConfigTest, BadCredentialProvidersNameFileLineField) {
  struct Case {
    const char* yaml;
    const char* want;
  } cases[] = {
      {"credentials:\n  providers:\n    - {type: postgres, conninfo: x}\n",
       ":3: credentials.providers[0].name: missing"},
      {"credentials:\n  providers:\n    - {name: pg, type: mysql}\n",
       ":3: credentials.providers[0]: provider 'pg': type 'mysql' is not one of postgres, vault, "
       "webhook"},
      {"credentials:\n  providers:\n    - {name: pg, type: postgres}\n",
       ":3: credentials.providers[0]: provider 'pg' (postgres): params.conninfo is required"},
      {"credentials:\n  providers:\n    - {name: pg, type: postgres, conninfo: x, grants: [\"ALL "
       "ON t; DROP\"]}\n",
       ":3: credentials.providers[0]: provider 'pg': grant 'ALL ON t; DROP' contains ; quote "
       "backslash or a comment"},
      {"credentials:\n  providers:\n    - {name: h, type: webhook, url: u}\n    - {name: h, type: "
       "webhook, url: u}\n",
       ":4: credentials.providers[1].name: provider name \"h\" is used twice"},
      {"credentials:\n  provider: []\n", ":2: credentials.provider: unknown key"},
      {"credentials:\n  revocation_alert_after: soon\n",
       ":2: credentials.revocation_alert_after: must be a duration (e.g. 5m; 0s disables the "
       "finding)"},
      {"credentials:\n  providers: {}\n", ":2: credentials.providers: must be a list"},
      {"credentials:\n  providers:\n    - {name: h, type: webhook, url: [u]}\n",
       ":3: credentials.providers[0].url: must be a string"},
  };
  for (const auto& k : cases) {
    std::string p = Write(k.yaml);
    auto c = LoadConfig(p);
    ASSERT_FALSE(c.ok()) << k.yaml;
    EXPECT_EQ(c.status().message(), p + k.want) << k.yaml;
  }
}

TEST_F(ConfigTest, BpfProgramStatsOffByDefaultOnWhenAsked) {
  auto c = LoadConfig(Write("mode: monitor\n"));
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_FALSE(c->bpf_program_stats);
  c = LoadConfig(WRIT_SOURCE_DIR "/policies/writd.yaml");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_FALSE(c->bpf_program_stats);
  c = LoadConfig(Write("metrics:\n  bpf_program_stats: true\n"));
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_TRUE(c->bpf_program_stats);
  c = LoadConfig(Write("metrics: {bpf_program_stats: false}\n"));
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_FALSE(c->bpf_program_stats);
}

TEST_F(ConfigTest, RedactionPathsResolveAgainstTheConfigAndBadOnesNameTheField) {
  auto c = LoadConfig(Write("mode: monitor\n"));
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->redaction_rules, "");  // the built-in set
  EXPECT_EQ(c->redaction_key, "");    // <state_dir>/redaction.key
  c = LoadConfig(Write("redaction:\n  rules: extra.yaml\n  key: /etc/writ/redaction.key\n"));
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->redaction_rules, dir_ + "/extra.yaml");
  EXPECT_EQ(c->redaction_key, "/etc/writ/redaction.key");
  struct Case {
    const char* yaml;
    const char* want;
  } cases[] = {
      {"redaction:\n  rulez: x.yaml\n", ":2: redaction.rulez: unknown key"},
      {"redaction: [x.yaml]\n", ":1: redaction: must be a mapping"},
      {"redaction:\n  rules: [a, b]\n", ":2: redaction.rules: must be a string"},
      {"redaction: {key: \"\"}\n", ":1: redaction.key: must not be empty"},
  };
  for (const auto& k : cases) {
    std::string p = Write(k.yaml);
    auto r = LoadConfig(p);
    ASSERT_FALSE(r.ok()) << k.yaml;
    EXPECT_EQ(r.status().message(), p + k.want) << k.yaml;
  }
}

TEST_F(ConfigTest, BadMetricsNameFileLineField) {
  struct Case {
    const char* yaml;
    const char* want;
  } cases[] = {
      {"mode: monitor\nmetrics:\n  bpf_program_stats: yes please\n",
       ":3: metrics.bpf_program_stats: must be true or false"},
      {"metrics: {bpf_program_stats: [true]}\n",
       ":1: metrics.bpf_program_stats: must be true or false"},
      {"metrics:\n  bpf_stats: true\n", ":2: metrics.bpf_stats: unknown key"},
      {"metrics: [bpf_program_stats]\n", ":1: metrics: must be a mapping"},
  };
  for (const auto& k : cases) {
    std::string p = Write(k.yaml);
    auto c = LoadConfig(p);
    ASSERT_FALSE(c.ok()) << k.yaml;
    EXPECT_EQ(c.status().message(), p + k.want) << k.yaml;
  }
}

TEST_F(ConfigTest, BadMode) {
  std::string p = Write("run_dir: /x\nmode: paranoid\n");
  auto c = LoadConfig(p);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().message(), p + ":2: mode: must be one of record, monitor, enforce");
  EXPECT_THAT(std::string(ValidateMode("bogus").message()),
              HasSubstr("mode \"bogus\" is not one of record, monitor, enforce"));
  EXPECT_TRUE(ValidateMode("record").ok());
}

TEST_F(ConfigTest, BadRingSize) {
  for (const char* v : {"5000", "2048", "abc", "2147483648", "-4096"}) {
    std::string p = Write(std::string("ring_buffer_bytes: ") + v + "\n");
    auto c = LoadConfig(p);
    ASSERT_FALSE(c.ok()) << v;
    EXPECT_EQ(c.status().message(),
              p + ":1: ring_buffer_bytes: must be a power of two between 4096 and 1073741824")
        << v;
  }
}

TEST_F(ConfigTest, PolicyBundleKeysAreReadAtLoadAndErrorsNameFileLineAndField) {
  writ::test_keys::PemPair ed = writ::test_keys::NewKeyPair();
  writ::test_keys::PemPair ec = writ::test_keys::NewKeyPair("EC");
  std::ofstream(dir_ + "/fleet.pub") << ed.public_pem;
  std::ofstream(dir_ + "/ec.pub") << ec.public_pem;
  auto c = LoadConfig(Write("policy_bundles:\n  public_keys: [fleet.pub]\n"));
  ASSERT_TRUE(c.ok()) << c.status();
  ASSERT_EQ(c->bundle_keys.size(), 1u);
  EXPECT_EQ(c->bundle_keys[0], dir_ + "/fleet.pub");
  EXPECT_TRUE(LoadConfig(Write("mode: monitor\n"))->bundle_keys.empty())
      << "none unless configured";
  std::string p = Write("policy_bundles:\n  public_keys: [fleet.pub, ec.pub]\n");
  EXPECT_THAT(
      std::string(LoadConfig(p).status().message()),
      HasSubstr(p + ":2: policy_bundles.public_keys[1]: " + dir_ + "/ec.pub: not an Ed25519 key"));
  p = Write("policy_bundles:\n  public_keys:\n    - missing.pub\n");
  EXPECT_THAT(std::string(LoadConfig(p).status().message()),
              HasSubstr(p + ":3: policy_bundles.public_keys[0]: "));
  p = Write("policy_bundles:\n  public_keys: []\n");
  EXPECT_EQ(LoadConfig(p).status().message(),
            p + ":2: policy_bundles.public_keys: must name at least one key");
  p = Write("policy_bundles:\n  url: nats://x\n");
  EXPECT_EQ(LoadConfig(p).status().message(), p + ":2: policy_bundles.url: unknown key");
  p = Write("policy_bundles: fleet.pub\n");
  EXPECT_EQ(LoadConfig(p).status().message(), p + ":1: policy_bundles: must be a mapping");
}

TEST_F(ConfigTest, ConsoleSettingsAndTheirErrors) {
  auto c = LoadConfig(Write(
      "console:\n  listen: 127.0.0.1:8484\n  url: https://approvals.example.org/\n"
      "  session_ttl: 2h\n  login_ttl: 1m\n  notify:\n    webhook: https://hooks.example.org/x\n"
      "    violations: true\n"));
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->console, "127.0.0.1:8484");
  EXPECT_EQ(c->console_url, "https://approvals.example.org");
  EXPECT_EQ(c->console_session_ttl, absl::Hours(2));
  EXPECT_EQ(c->console_login_ttl, absl::Minutes(1));
  EXPECT_EQ(c->console_webhook, "https://hooks.example.org/x");
  EXPECT_TRUE(c->console_notify_violations);
  EXPECT_TRUE(LoadConfig(Write("console: {listen: \"[::1]:0\"}\n")).ok());
  EXPECT_TRUE(LoadConfig(Write("mode: monitor\n"))->console.empty()) << "off unless configured";
  std::string p = Write("console:\n  listen: 0.0.0.0:8484\n");
  EXPECT_THAT(std::string(LoadConfig(p).status().message()),
              HasSubstr(p + ":2: console.listen: must be a loopback address and port"));
  p = Write("console:\n  url: http://x\n");
  EXPECT_EQ(LoadConfig(p).status().message(), p + ":2: console: console.listen is required");
  p = Write("console:\n  listen: 127.0.0.1:1\n  url: ftp://x\n");
  EXPECT_EQ(LoadConfig(p).status().message(),
            p + ":3: console.url: must be an http:// or https:// URL");
  p = Write("console:\n  listen: 127.0.0.1:1\n  session_ttl: 2d\n");
  EXPECT_EQ(LoadConfig(p).status().message(),
            p + ":3: console.session_ttl: must be a duration between 10s and 24h");
  p = Write("console:\n  listen: 127.0.0.1:1\n  notify: {webhook: x, violations: yes}\n");
  EXPECT_EQ(LoadConfig(p).status().message(),
            p + ":3: console.notify.webhook: must be an http:// or https:// URL");
  p = Write("console:\n  listen: 127.0.0.1:1\n  theme: dark\n");
  EXPECT_EQ(LoadConfig(p).status().message(), p + ":3: console.theme: unknown key");
  // Over TLS it may listen where approvers on other hosts reach it; its URL is then https.
  std::ofstream(dir_ + "/console.crt") << "PEM";
  std::ofstream(dir_ + "/console.key") << "PEM";
  auto tls =
      LoadConfig(Write("console:\n  listen: 0.0.0.0:8484\n  tls: {cert: console.crt, key: "
                       "console.key}\n  url: https://approvals.example.org:8484\n"));
  ASSERT_TRUE(tls.ok()) << tls.status();
  EXPECT_EQ(tls->console_tls_cert, dir_ + "/console.crt");
  p = Write("console:\n  listen: 0.0.0.0:8484\n  tls: {cert: console.crt}\n");
  EXPECT_EQ(LoadConfig(p).status().message(),
            p + ":3: console.tls: needs both cert and key (PEM files)");
  p = Write(
      "console:\n  listen: 127.0.0.1:8484\n  tls: {cert: console.crt, key: console.key}\n"
      "  url: http://x:8484\n");
  EXPECT_EQ(LoadConfig(p).status().message(),
            p + ":4: console.url: must be an https:// URL when console.tls is set");
  p = Write("console:\n  listen: 10.0.0.1:8484\n");
  EXPECT_THAT(std::string(LoadConfig(p).status().message()),
              HasSubstr("(or serve it over TLS: console.tls: {cert: FILE, key: FILE})"));
  EXPECT_TRUE(ValidateConsoleListen("127.0.0.2:9000").ok());
  EXPECT_FALSE(ValidateConsoleListen("192.168.1.5:9000").ok());
  EXPECT_FALSE(ValidateConsoleListen("127.0.0.1").ok());
}

TEST_F(ConfigTest, FleetSettingsAndTheirErrors) {
  EXPECT_FALSE(LoadConfig(Write("mode: monitor\n"))->fleet.enabled) << "off unless configured";
  std::ofstream(dir_ + "/writd.creds") << "JWT and seed";
  std::ofstream(dir_ + "/ca.pem") << "PEM";
  std::ofstream(dir_ + "/host.crt") << "PEM";
  std::ofstream(dir_ + "/host.key") << "PEM";
  auto c = LoadConfig(Write(
      "fleet:\n  servers: [nats://10.0.0.1:4222, tls://nats.example.org:4222]\n  name: web-1\n"
      "  creds_file: writd.creds\n  tls: {ca: ca.pem, cert: host.crt, key: host.key}\n"
      "  features: [events]\n"));
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_TRUE(c->fleet.enabled);
  EXPECT_EQ(c->fleet.link.servers,
            (std::vector<std::string>{"nats://10.0.0.1:4222", "tls://nats.example.org:4222"}));
  EXPECT_EQ(c->fleet.link.name, "web-1");
  EXPECT_EQ(c->fleet.link.creds_file, dir_ + "/writd.creds") << "relative to the config file";
  EXPECT_EQ(c->fleet.link.tls.key, dir_ + "/host.key");
  EXPECT_EQ(c->fleet.features, std::vector<std::string>{"events"});
  auto named = LoadConfig(Write("fleet: {servers: [nats://127.0.0.1:4222]}\n"));
  ASSERT_TRUE(named.ok()) << named.status();
  EXPECT_EQ(named->fleet.link.name, fleet::HostName()) << "the host name by default";
  std::string p = Write("fleet:\n  name: web-1\n");
  EXPECT_EQ(LoadConfig(p).status().message(),
            p + ":2: fleet.servers: missing (a list of nats:// URLs)");
  p = Write("fleet:\n  servers: [http://x:4222]\n");
  EXPECT_EQ(LoadConfig(p).status().message(),
            p + ":2: fleet.servers[0]: must be a nats:// or tls:// URL, not \"http://x:4222\"");
  p = Write("fleet:\n  servers: [nats://x:4222]\n  creds_file: missing.creds\n");
  EXPECT_EQ(LoadConfig(p).status().message(), p + ":3: fleet.creds_file: cannot read " + dir_ +
                                                  "/missing.creds: No such file or directory");
  p = Write("fleet:\n  servers: [nats://x:4222]\n  tls: {ca: ca.pem, cert: host.crt}\n");
  EXPECT_EQ(LoadConfig(p).status().message(), p + ":3: fleet.tls: cert and key go together");
  p = Write("fleet:\n  servers: [nats://x:4222]\n  tls: {crl: ca.pem}\n");
  EXPECT_EQ(LoadConfig(p).status().message(), p + ":3: fleet.tls.crl: unknown key");
  p = Write("fleet:\n  servers: [nats://x:4222]\n  features: [events, revocations]\n");
  EXPECT_EQ(LoadConfig(p).status().message(),
            p + ":3: fleet.features[1]: \"revocations\" is not built yet (docs/fleet.md); "
                "available: events");
  p = Write("fleet:\n  servers: [nats://x:4222]\n  features: [telemetry]\n");
  EXPECT_THAT(std::string(LoadConfig(p).status().message()),
              HasSubstr(":3: fleet.features[0]: unknown feature \"telemetry\""));
  p = Write(
      "fleet:\n  servers: [nats://x:4222]\n  creds_file: writd.creds\n  user: a\n"
      "  password: b\n");
  EXPECT_EQ(LoadConfig(p).status().message(),
            p + ":2: fleet: give one of creds_file, nkey_seed_file or user (with password)");
  p = Write("fleet:\n  servers: [nats://x:4222]\n  name: web.1\n");
  EXPECT_EQ(LoadConfig(p).status().message(),
            p + ":3: fleet.name: must be one NATS subject token (no blank, '.', '*' or '>')");
  p = Write("fleet:\n  servers: [nats://x:4222]\n  cluster: x\n");
  EXPECT_EQ(LoadConfig(p).status().message(), p + ":3: fleet.cluster: unknown key");
  p = Write("fleet: nats://x:4222\n");
  EXPECT_EQ(LoadConfig(p).status().message(),
            p + ":1: fleet: must be a mapping {servers, name, credentials, ...}");
}

TEST_F(ConfigTest, OtherBadValues) {
  std::string p = Write("drain_interval: 5s\n");
  EXPECT_EQ(LoadConfig(p).status().message(),
            p + ":1: drain_interval: must be a duration between 1ms and 1s");
  for (const char* v : {"-21", "20", "high", "1.5"}) {
    p = Write(std::string("pipeline_nice: ") + v + "\n");
    EXPECT_EQ(LoadConfig(p).status().message(),
              p + ":1: pipeline_nice: must be an integer between -20 and 19")
        << v;
  }
  p = Write("http_hosts: [writ.internal, \"evil.example:80\"]\n");
  EXPECT_EQ(LoadConfig(p).status().message(),
            p + ":1: http_hosts[1]: must be a host name (no port, scheme or path)");
  p = Write("http_hosts: writ.internal\n");
  EXPECT_EQ(LoadConfig(p).status().message(), p + ":1: http_hosts: must be a list");
  auto hosts = LoadConfig(Write("http_hosts: [writ.internal, Metrics.Example.Org]\n"));
  ASSERT_TRUE(hosts.ok()) << hosts.status();
  EXPECT_EQ(hosts->http_hosts, (std::vector<std::string>{"writ.internal", "Metrics.Example.Org"}));
  p = Write("bpf_lsm: true\n");
  EXPECT_EQ(LoadConfig(p).status().message(), p + ":1: bpf_lsm: must be auto or off");
  EXPECT_EQ(LoadConfig(Write("mode: monitor\n"))->bpf_lsm, "auto");
  // dns: the stub answers tasks only (loopback), TTL bounds in order, every key known.
  p = Write("dns:\n  listen: 0.0.0.0:53\n");
  EXPECT_EQ(
      LoadConfig(p).status().message(),
      p + ":2: dns.listen: must be an IPv4 loopback address and port (127.0.0.1:5353; port 0: "
          "any free port), not \"0.0.0.0:53\"");
  p = Write("dns:\n  min_ttl: 600\n  max_ttl: 60\n");
  EXPECT_EQ(LoadConfig(p).status().message(), p + ":2: dns: min_ttl (600) is above max_ttl (60)");
  p = Write("dns:\n  upstreams: [\"8.8.8.8\", \"not an address\"]\n");
  EXPECT_THAT(std::string(LoadConfig(p).status().message()),
              HasSubstr(p + ":2: dns.upstreams[1]: "));
  p = Write("dns:\n  cache: true\n");
  EXPECT_EQ(LoadConfig(p).status().message(), p + ":2: dns.cache: unknown key");
  p = Write("dns:\n  upstream_timeout: 1h\n");
  EXPECT_EQ(LoadConfig(p).status().message(),
            p + ":2: dns.upstream_timeout: must be a duration between 10ms and 30s");
  auto dns = LoadConfig(Write("dns:\n  listen: 127.0.0.1:5353\n  upstreams: [\"10.0.0.2:53\"]\n"));
  ASSERT_TRUE(dns.ok()) << dns.status();
  EXPECT_TRUE(dns->dns);
  EXPECT_EQ(dns->dns_listen, "127.0.0.1:5353");
  EXPECT_EQ(dns->dns_upstreams, std::vector<std::string>{"10.0.0.2:53"});
  EXPECT_FALSE(LoadConfig(Write("mode: monitor\n"))->dns) << "off unless configured";
  p = Write("on_daemon_loss: panic\n");
  EXPECT_EQ(LoadConfig(p).status().message(), p + ":1: on_daemon_loss: must be freeze or continue");
  p = Write("mode: [a, b]\n");
  EXPECT_EQ(LoadConfig(p).status().message(), p + ":1: mode: must be a string");
  p = Write("sinks: {a: 1}\n");
  EXPECT_EQ(LoadConfig(p).status().message(), p + ":1: sinks: must be a list");
  p = Write("- a\n- b\n");
  EXPECT_EQ(LoadConfig(p).status().message(), p + ":1: config must be a mapping");
  p = Write("mode: [unclosed\n");
  EXPECT_THAT(std::string(LoadConfig(p).status().message()), HasSubstr(p + ":"));
  EXPECT_EQ(LoadConfig(dir_ + "/absent.yaml").status().code(), absl::StatusCode::kNotFound);
}

// http: the old string form; the mapping for relying parties on other hosts (issuer, TLS files
// resolved against the config's directory, client_auth); each mistake names its line and field.
TEST_F(ConfigTest, HttpListenerForOtherHosts) {
  auto c = LoadConfig(Write("http: 127.0.0.1:8181\n"));
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->http, "127.0.0.1:8181");
  EXPECT_TRUE(c->http_issuer.empty());
  EXPECT_TRUE(c->http_tls_cert.empty());
  for (const char* f : {"a.crt", "a.key", "ca.crt"}) std::ofstream(dir_ + "/" + f) << "x";
  c =
      LoadConfig(Write("http:\n"
                       "  listen: 0.0.0.0:8443\n"
                       "  issuer: https://host-a.example:8443\n"
                       "  tls: {cert: a.crt, key: a.key, client_ca: ca.crt}\n"
                       "  client_auth: [introspect, revoke]\n"
                       "  client_ids: [spiffe://example.org/rp/db]\n"));
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->http, "0.0.0.0:8443");
  EXPECT_EQ(c->http_issuer, "https://host-a.example:8443");
  EXPECT_EQ(c->http_tls_cert, dir_ + "/a.crt");
  EXPECT_EQ(c->http_tls_key, dir_ + "/a.key");
  EXPECT_EQ(c->http_tls_client_ca, dir_ + "/ca.crt");
  EXPECT_EQ(c->http_client_auth, (std::vector<std::string>{"/introspect", "/revoke"}));
  EXPECT_EQ(c->http_client_ids, (std::vector<std::string>{"spiffe://example.org/rp/db"}));
  // An https issuer in front of a loopback listener (a TLS-terminating proxy) is allowed.
  c = LoadConfig(Write("http: {listen: \"[::1]:8181\", issuer: https://writ.example}\n"));
  ASSERT_TRUE(c.ok()) << c.status();

  const std::pair<const char*, std::string> bad[] = {
      {"http: 0.0.0.0:8443\n",
       ":1: http: \"0.0.0.0:8443\" is not a loopback address: serving other hosts needs http.tls "
       "(cert, key)"},
      {"http:\n  listen: 10.0.0.5:8443\n",
       ":2: http.listen: \"10.0.0.5:8443\" is not a loopback address: serving other hosts needs "
       "http.tls (cert, key)"},
      {"http: {listen: host-a.example:8443}\n",
       ":1: http.listen: \"host-a.example:8443\": the address must be an IP address ([v6] in "
       "brackets) or localhost"},
      {"http: {listen: 127.0.0.1}\n",
       ":1: http.listen: must be ADDR:PORT (e.g. 127.0.0.1:8181, 0.0.0.0:8443)"},
      {"http: {issuer: https://a.example}\n", ":1: http.listen: missing (ADDR:PORT)"},
      {"http:\n  listen: 127.0.0.1:0\n  issuer: http://a.example\n",
       ":3: http.issuer: issuer 'http://a.example' must be https://HOST[:PORT]: not an https URL"},
      {"http:\n  listen: 127.0.0.1:0\n  issuer: https://a.example/oidc\n",
       ":3: http.issuer: issuer 'https://a.example/oidc' must be https://HOST[:PORT]: no path, "
       "query or fragment (not even a trailing /)"},
      {"http:\n  listen: 0.0.0.0:1\n  tls:\n    cert: a.crt\n",
       ":4: http.tls: needs both cert and key (PEM files)"},
      {"http:\n  listen: 0.0.0.0:1\n  tls:\n    cert: a.crt\n    key: nope.key\n",
       ":5: http.tls.key: cannot read " + dir_ + "/nope.key: No such file or directory"},
      {"http:\n  listen: 0.0.0.0:1\n  tls: {cert: a.crt, key: a.key, ca: ca.crt}\n",
       ":3: http.tls.ca: unknown key"},
      {"http:\n  listen: 0.0.0.0:1\n  tls: {cert: a.crt, key: a.key}\n  client_auth: [revoke]\n",
       ":4: http.client_auth: needs http.tls.client_ca (the CA that issues the clients' "
       "certificates)"},
      {"http:\n  listen: 127.0.0.1:1\n  client_auth: [metrics]\n",
       ":3: http.client_auth[0]: must be introspect or revoke"},
      {"http:\n  listen: 127.0.0.1:1\n  client_ids: [x]\n",
       ":3: http.client_ids: has no effect without http.client_auth"},
      {"http:\n  listen: 127.0.0.1:1\n  port: 1\n", ":3: http.port: unknown key"},
      {"http: [127.0.0.1:1]\n", ":1: http: must be ADDR:PORT or a mapping"},
  };
  for (const auto& [yaml, want] : bad) {
    const std::string p = Write(yaml);
    EXPECT_EQ(LoadConfig(p).status().message(), p + want) << yaml;
  }
}

v1::Event Exec(const std::string& exe, std::vector<std::string> args) {
  v1::Event ev;
  ev.set_kind("exec");
  ev.mutable_process()->set_exe(exe);
  for (auto& a : args) ev.mutable_process()->add_args(a);
  return ev;
}

v1::Event Connect(const std::string& ip, uint32_t port) {
  v1::Event ev;
  ev.set_kind("connect");
  ev.mutable_network()->set_dst_ip(ip);
  ev.mutable_network()->set_dst_port(port);
  return ev;
}

TEST(Approvals, ActionHashBindsExeAndArgsExactly) {
  const std::string h = ActionHash(Exec("/usr/bin/git", {"git", "push", "origin"}));
  EXPECT_EQ(h.size(), 64u);
  EXPECT_EQ(h, ActionHash(Exec("/usr/bin/git", {"git", "push", "origin"})));
  EXPECT_NE(h, ActionHash(Exec("/usr/local/bin/git", {"git", "push", "origin"})));
  EXPECT_NE(h, ActionHash(Exec("/usr/bin/git", {"git", "push", "origin", "--force"})));
  EXPECT_NE(h, ActionHash(Exec("/usr/bin/git", {"git", "push"})));
  EXPECT_NE(h, ActionHash(Exec("/usr/bin/git", {"git", "origin", "push"})));
  EXPECT_NE(h, ActionHash(Exec("/usr/bin/git", {"git", "push origin"})));  // no re-splitting
  EXPECT_NE(h, ActionHash(Exec("/usr/bin/git", {"git", "push", "origin", ""})));
  EXPECT_EQ(ActionText(Exec("/usr/bin/git", {"git", "push"})), "exec /usr/bin/git [git push]");
}

// An approval is asked for and granted on the redacted action (the approver never sees the secret),
// and still binds the secret: another token is another action, which a task cannot get approved by
// having a first one approved.
TEST(Approvals, ActionHashOfRedactedArgvStillBindsTheSecret) {
  auto r = creds::Redactor::Create(creds::BuiltinRedactionRules(), std::string(32, 'k'));
  ASSERT_TRUE(r.ok());
  auto redacted = [&](const std::string& token) {
    v1::Event e =
        Exec("/usr/bin/curl", {"curl", "-H", "Authorization: Bearer " + token, "https://api"});
    (*r)->RedactEvent(&e);
    return e;
  };
  const std::string a = "aaaaaaaaaaaaaaaaaaaaaaaa1", b = "bbbbbbbbbbbbbbbbbbbbbbbb2";
  EXPECT_THAT(ActionText(redacted(a)), testing::Not(HasSubstr(a)));
  EXPECT_EQ(ActionHash(redacted(a)), ActionHash(redacted(a)));
  EXPECT_NE(ActionHash(redacted(a)), ActionHash(redacted(b)));
}

TEST(Approvals, ActionHashBindsConnectAddressAndPort) {
  EXPECT_EQ(ActionHash(Connect("127.0.0.1", 80)), ActionHash(Connect("127.0.0.1", 80)));
  EXPECT_NE(ActionHash(Connect("127.0.0.1", 80)), ActionHash(Connect("127.0.0.1", 81)));
  // The address and the port are separate fields: "127.0.0.1" + 80 is not "127.0.0.18" + 0.
  EXPECT_NE(ActionHash(Connect("127.0.0.1", 80)), ActionHash(Connect("127.0.0.18", 0)));
  EXPECT_NE(ActionHash(Connect("::1", 80)), ActionHash(Connect("::18", 0)));
  EXPECT_EQ(ActionText(Connect("::1", 443)), "connect ::1:443");
}

TEST(Approvals, ActionHashBindsOpenPathAndFlags) {
  v1::Event a;
  a.set_kind("open");
  a.mutable_file()->set_path("/etc/shadow");
  a.mutable_file()->add_flags("read");
  v1::Event b = a;
  b.mutable_file()->add_flags("write");
  EXPECT_NE(ActionHash(a), ActionHash(b));
  EXPECT_NE(ActionHash(a), ActionHash(Exec("/etc/shadow", {"read"})));  // kinds never collide
  EXPECT_EQ(ActionText(b), "open /etc/shadow (read,write)");
}

TEST(Approvals, AddListTakeAndExpiry) {
  Approvals ap;
  absl::Time now = absl::Now();
  ApprovalRequest r1;
  r1.task_id = "t-1";
  r1.created = now;
  r1.expires = now + absl::Seconds(2);
  ApprovalRequest r2 = r1;
  r2.task_id = "t-2";
  r2.created = now + absl::Milliseconds(1);
  r2.expires = now + absl::Seconds(10);
  std::string id1 = ap.Add(r1);
  std::string id2 = ap.Add(r2);
  EXPECT_NE(id1, id2);
  EXPECT_THAT(id1, ::testing::StartsWith("ap-"));
  ASSERT_EQ(ap.List().size(), 2u);
  EXPECT_EQ(ap.List()[0].id, id1);  // oldest first

  EXPECT_TRUE(ap.TakeExpired(now + absl::Seconds(1)).empty());
  auto expired = ap.TakeExpired(now + absl::Seconds(2));  // expiry is inclusive
  ASSERT_EQ(expired.size(), 1u);
  EXPECT_EQ(expired[0].id, id1);
  EXPECT_EQ(ap.size(), 1u);
  EXPECT_FALSE(ap.Take(id1).has_value());  // expired: cannot be decided any more

  auto taken = ap.Take(id2);
  ASSERT_TRUE(taken.has_value());
  EXPECT_EQ(taken->task_id, "t-2");
  EXPECT_FALSE(ap.Take(id2).has_value());  // decided once
  EXPECT_EQ(ap.size(), 0u);
}

TEST(Approvals, TakeTaskTakesOnlyThatTask) {
  Approvals ap;
  ApprovalRequest r;
  r.expires = absl::InfiniteFuture();
  r.task_id = "t-1";
  ap.Add(r);
  ap.Add(r);
  r.task_id = "t-2";
  std::string other = ap.Add(r);
  EXPECT_EQ(ap.TakeTask("t-1").size(), 2u);
  EXPECT_EQ(ap.size(), 1u);
  EXPECT_TRUE(ap.Take(other).has_value());
}

TEST(Approvals, GrantsArePerTask) {
  Approvals ap;
  std::string h = ActionHash(Exec("/usr/bin/git", {"git", "push"}));
  EXPECT_FALSE(ap.IsGranted("t-1", h));
  ap.Grant("t-1", h);
  EXPECT_TRUE(ap.IsGranted("t-1", h));
  EXPECT_FALSE(ap.IsGranted("t-2", h));
  EXPECT_FALSE(ap.IsGranted("t-1", ActionHash(Exec("/usr/bin/git", {"git", "push", "-f"}))));
  ap.ForgetTask("t-1");
  EXPECT_FALSE(ap.IsGranted("t-1", h));
}

// FNV-1a 64 written out independently of the production code.
uint64_t Fnv(std::initializer_list<uint8_t> bytes) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (uint8_t b : bytes) {
    h ^= b;
    h *= 0x100000001b3ULL;
  }
  return h;
}

TEST(PathHash, HandComputed) {
  EXPECT_EQ(bpf::PathHash("/"), 0xcbf29ce484222325ULL);  // the offset basis
  EXPECT_EQ(bpf::PathHash(""), 0xcbf29ce484222325ULL);
  // "/a": encoding "a\0" read backwards = 00 'a'.
  EXPECT_EQ(bpf::PathHash("/a"), 0x08326707b4eb37daULL);
  // "/usr/bin": encoding "bin\0usr\0" read backwards = 00 r s u 00 n i b.
  EXPECT_EQ(bpf::PathHash("/usr/bin"), 0xa4e45e26de2c7f3aULL);
  EXPECT_EQ(bpf::PathHash("/usr/bin"), Fnv({0, 'r', 's', 'u', 0, 'n', 'i', 'b'}));
  EXPECT_EQ(bpf::PathHash("/usr"), 0x9a848b7ea7322adbULL);
}

TEST(PathHash, PrefixIsTheRunningHashAndSlashesNormalize) {
  EXPECT_EQ(bpf::PathHash("/usr"), Fnv({0, 'r', 's', 'u'}));
  EXPECT_EQ(bpf::PathHash("//usr//bin/"), bpf::PathHash("/usr/bin"));
  EXPECT_NE(bpf::PathHash("/usr/bin"), bpf::PathHash("/usrbin"));
  EXPECT_NE(bpf::PathHash("/ab"), bpf::PathHash("/ba"));
  EXPECT_NE(bpf::PathHash("/a/b"), bpf::PathHash("/b/a"));
}

// The kernel restarts the hash at each component: a NUL, then the name reversed.
TEST(PathHash, ComponentHashIsTheHashOfOneComponent) {
  EXPECT_EQ(bpf::ComponentHash(".ssh"), Fnv({0, 'h', 's', 's', '.'}));
  EXPECT_EQ(bpf::ComponentHash("usr"), bpf::PathHash("/usr"));
  EXPECT_NE(bpf::ComponentHash(".ssh"), bpf::ComponentHash(".sshx"));
  EXPECT_NE(bpf::ComponentHash("ab"), bpf::ComponentHash("ba"));
}

}  // namespace
}  // namespace writ::daemon

namespace writ::daemon {
namespace {

// What the kernel decides for a task: its task_map flags from mode and intent.
TEST(TaskInfoFor, FlagsFollowModeAndTables) {
  auto set = intent::LoadPolicyText(R"(apiVersion: writ.dev/v1
kind: Intent
name: t
exec: {allow: [/usr/bin/ls]}
files: {deny: [/etc/shadow, "**/.env"]}
network: {connect: {allow: [{cidr: 127.0.0.1/32}]}}
on_violation: [alert, kill]
)",
                                    "t.yaml");
  ASSERT_TRUE(set.ok()) << set.status();
  identity::Task t;
  t.slot = 3;
  t.compiled = *intent::Compile(set->intents()[0], {});
  intent::KernelTables kt = t.compiled->kernel_tables();

  t.mode = identity::TaskMode::kEnforce;
  writ_task_info i = bpf::TaskInfoFor(t, &kt);
  EXPECT_EQ(i.slot, 3u);
  for (uint32_t f :
       {WRIT_TASK_ENFORCE, WRIT_TASK_PROMPT, WRIT_TASK_KILL_LINEAGE, WRIT_TASK_EXEC_TABLE,
        WRIT_TASK_NET_TABLE, WRIT_TASK_FILE_TABLE, WRIT_TASK_FILE_COMP, WRIT_TASK_SELF_KILL}) {
    EXPECT_TRUE(i.flags & f) << f;
  }
  t.mode = identity::TaskMode::kMonitor;
  i = bpf::TaskInfoFor(t, &kt);
  EXPECT_FALSE(i.flags & (WRIT_TASK_ENFORCE | WRIT_TASK_FILE_TABLE | WRIT_TASK_SELF_KILL));
  EXPECT_TRUE(i.flags & WRIT_TASK_EXEC_TABLE);  // decided in the kernel, acted on by nobody
  // No intent: self-protection only, and only when enforcing.
  t.mode = identity::TaskMode::kEnforce;
  EXPECT_EQ(bpf::TaskInfoFor(t, nullptr).flags, WRIT_TASK_SELF_KILL);
}

// What the kernel must hand to userspace rather than decide: exec rules judge a loader's program
// and an exe path cut short; files.deny judges renames and links; network.unix (or its default)
// sockets.
TEST(TaskInfoFor, ContainmentFlags) {
  auto flags = [](const std::string& body) {
    auto set =
        intent::LoadPolicyText("apiVersion: writ.dev/v1\nkind: Intent\nname: t\n" + body, "t.yaml");
    EXPECT_TRUE(set.ok()) << set.status();
    identity::Task t;
    t.mode = identity::TaskMode::kEnforce;
    t.compiled = *intent::Compile(set->intents()[0], {});
    intent::KernelTables kt = t.compiled->kernel_tables();
    return bpf::TaskInfoFor(t, &kt).flags;
  };
  uint32_t f = flags("exec: {deny: [/usr/bin/sudo]}\n");
  EXPECT_TRUE(f & WRIT_TASK_EXEC_JUDGED);
  EXPECT_FALSE(f & (WRIT_TASK_FILE_LINK | WRIT_TASK_UNIX));
  EXPECT_TRUE(flags("approval: [{exec: /usr/bin/sudo}]\n") & WRIT_TASK_EXEC_JUDGED);
  f = flags("files: {deny: [\"**/id_*\"]}\n");
  EXPECT_TRUE(f & WRIT_TASK_FILE_LINK);  // a glob only userspace matches: still reported
  EXPECT_FALSE(f & (WRIT_TASK_EXEC_JUDGED | WRIT_TASK_FILE_TABLE));
  EXPECT_FALSE(flags("files: {read: [/x/**]}\n") & WRIT_TASK_FILE_LINK);
  f = flags("network: {connect: {allow: []}}\n");
  EXPECT_TRUE(f & WRIT_TASK_UNIX);
  EXPECT_TRUE(f & WRIT_TASK_UNIX_DENY);
  EXPECT_FALSE(f & WRIT_TASK_UNIX_USER);
  f = flags("network: {unix: {deny: [/run/docker.sock, \"/run/user/*/bus\"]}}\n");
  EXPECT_TRUE(f & WRIT_TASK_UNIX);
  EXPECT_FALSE(f & WRIT_TASK_UNIX_DENY);
  EXPECT_TRUE(f & WRIT_TASK_UNIX_USER);
  EXPECT_FALSE(flags("network: {connect: {deny: []}}\n") & WRIT_TASK_UNIX);
}

// The dynamic loaders writd hands the kernel: every name of one file counted once, by identity.
TEST(HostDynamicLoaders, FindsTheLoaderOfThisBinary) {
  const std::string interp = bpf::ElfInterpreter("/proc/self/exe");
  if (interp.empty()) GTEST_SKIP() << "this test binary is static: no PT_INTERP to look for";
  struct stat st;
  ASSERT_EQ(stat(interp.c_str(), &st), 0) << interp;
  const uint32_t kdev = static_cast<uint32_t>((major(st.st_dev) << 20) | minor(st.st_dev));
  const auto loaders = bpf::HostDynamicLoaders();
  bool found = false;
  for (const auto& l : loaders) {
    if (l.dev == kdev && l.ino == st.st_ino) found = true;
    for (const auto& m : loaders) {
      if (&l != &m) {
        EXPECT_FALSE(l.dev == m.dev && l.ino == m.ino) << l.path << " twice";
      }
    }
  }
  EXPECT_TRUE(found) << interp << " not among the loaders found";
  EXPECT_EQ(bpf::ElfInterpreter("/etc/hostname"), "");  // not an ELF file
}

}  // namespace
}  // namespace writ::daemon
