// A temporary NATS cluster for tests: 1 or 3 nats-server processes with JetStream on 127.0.0.1,
// each with its own client, cluster and monitoring port and its own store dir under one temp dir,
// configured by a generated file (nodeN.conf, readable in the dir when a test fails). Nodes can be
// killed (SIGKILL, like a crash) and restarted on the same ports and store. SkipReason() says when
// nats-server is missing (for GTEST_SKIP). The destructor kills every node and removes the dir.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"

namespace writ::testlib {

class NatsCluster {
 public:
  NatsCluster() = default;
  ~NatsCluster();
  NatsCluster(const NatsCluster&) = delete;
  NatsCluster& operator=(const NatsCluster&) = delete;

  // "" when nats-server is installed, else why the test cannot run.
  static std::string SkipReason();

  // Starts `nodes` servers (1, or 3 for a cluster named writ-test) and waits (bounded) until each
  // answers /healthz. `extra_config` is appended to every node's config (e.g. an authorization
  // block).
  absl::Status Start(int nodes, const std::string& extra_config = "");
  // SIGKILL, then reaped. The node keeps its ports and store for Restart.
  absl::Status Kill(int node);
  absl::Status Restart(int node);
  absl::Status KillAll();
  // Rewrites every node's config with `extra_config` in place of the one given to Start and makes
  // the running nodes reload it (SIGHUP), e.g. to change the users.
  absl::Status Reconfigure(const std::string& extra_config);
  absl::Status RestartAll();
  // Waits until every running node answers /healthz with 200 (JetStream current), up to `max`.
  absl::Status WaitHealthy(absl::Duration max = absl::Seconds(30));

  int size() const { return static_cast<int>(nodes_.size()); }
  // nats://127.0.0.1:PORT of one node; every node's, for a client's server list.
  std::string url(int node) const;
  std::vector<std::string> urls() const;
  // The node whose /connz lists a client connection named `name`; -1 if none.
  int NodeServing(const std::string& connection_name) const;
  const std::string& dir() const { return dir_; }
  // The node's log (nats-server's stderr), for a failure message.
  std::string Log(int node) const;

 private:
  struct Node {
    int port = 0, cluster_port = 0, http_port = 0;
    std::string conf, log, base;  // base: the config without the extra part
    pid_t pid = -1;
  };
  absl::Status Spawn(Node& n);
  bool Healthy(const Node& n) const;

  std::string dir_;
  std::vector<Node> nodes_;
};

// Free TCP port on 127.0.0.1 (bound and released: the caller binds it soon after).
int FreeLoopbackPort();
// GET http://127.0.0.1:port/path; the status code, or -1 when nothing answered. Body into `body`.
int HttpGet(int port, const std::string& path, std::string* body = nullptr);

}  // namespace writ::testlib
