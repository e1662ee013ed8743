// creds_latency: violation -> introspection says `active: false`, and JWT-SVID fetch latency,
// against a real writd (enforce mode, an intent with `on_violation: [alert, revoke]`, HTTP
// endpoints on loopback).
//
// Trial mode (runs inside a writ task, one task per trial because a revocation is task-wide):
//   1. FetchJWTSVID over the Workload API --fetches times on one channel (the first call includes
//   the
//      connection and attestation of a new peer: reported apart as "cold").
//   2. `writ svid --audience A` --cli-fetches times (a whole CLI process: fork, exec, connect,
//   fetch).
//   3. Introspects the token once: it must be active.
//   4. Forks a child that stamps CLOCK_MONOTONIC into shared memory and opens the denied file
//   (writd kills
//      the child, and `revoke` revokes the task's tokens); the parent polls POST /introspect every
//      200 µs (one loopback connection per request, as the server serves one request per
//      connection) until it answers active:false and stamps the clock. Latency = that stamp - the
//      child's pre-syscall stamp: syscall, kernel event, writd's wakeup, decode, verdict,
//      revocation commit (SQLite, synchronous FULL), and at most one introspection round trip.
//   Prints one line: "trial cold_us=N fetch_us=a,b,.. cli_us=a,b,.. rtt_us=a,b,c inactive_us=N".
//
// Driver mode (outside any task): runs N trials through `writ run` and prints the percentiles:
//   creds_latency --driver --writ BIN --intent I --param dir=D --path FILE --http ADDR:PORT
//                 --workload-socket PATH [--trials N] [--fetches K] [--cli-fetches M]
//
// PostgreSQL: revocation -> the task's live session terminated (scripts/bench/creds.sh --pg). Each
// trial is a task whose intent has a postgres credential; inside it (--pg-trial) a libpq session
// logs in with the task's role and sends `SELECT pg_sleep(60)`, then
//   violation: a child stamps CLOCK_MONOTONIC and opens the denied file (revoke response);
//   cli:       it prints "ready <task>" and the driver stamps the clock and runs `writ revoke
//   <task>`;
// the session stamps the clock when the server's termination arrives. Latency = the two stamps
// apart: the violation (or the CLI and its control request), writd's outbox, the provider's
// connection as the admin (SCRAM), NOLOGIN, its membership grant, pg_terminate_backend and the
// client seeing the error.
//   creds_latency --pg-driver --writ BIN --intent I --param dir=D --path FILE [--trials N]
#include <arpa/inet.h>
#include <fcntl.h>
#include <grpcpp/grpcpp.h>
#include <libpq-fe.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "writ/v1/workload.grpc.pb.h"

namespace
{

int64_t MonoNs()
{
	timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

double Percentile(std::vector<double> v, double q)
{
	if (v.empty())
		return 0;
	std::sort(v.begin(), v.end());
	size_t i = static_cast<size_t>(q * (v.size() - 1) + 0.5);
	return v[std::min(i, v.size() - 1)];
}

std::map<std::string, std::string> ParseArgs(int argc, char **argv)
{
	std::map<std::string, std::string> a;
	for (int i = 1; i < argc; i++) {
		std::string k = argv[i];
		if (k.rfind("--", 0) != 0)
			continue;
		k = k.substr(2);
		if (k == "driver" || k == "trial" || k == "pg-driver" || k == "pg-trial") {
			a[k] = "1";
		} else if (i + 1 < argc) {
			a[k] = argv[++i];
		}
	}
	return a;
}

// One POST /introspect on a fresh loopback connection; returns the body ("" on error).
std::string Introspect(const sockaddr_in &addr, const std::string &token)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return "";
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	timeval tv{2, 0};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (connect(fd, reinterpret_cast<const sockaddr *>(&addr), sizeof(addr)) != 0) {
		close(fd);
		return "";
	}
	std::string body = "token=" + token; // base64url and dots: nothing to form-encode
	std::string req = "POST /introspect HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: "
			  "application/x-www-form-urlencoded\r\n"
			  "Connection: close\r\nContent-Length: " +
			  std::to_string(body.size()) + "\r\n\r\n" + body;
	if (write(fd, req.data(), req.size()) != static_cast<ssize_t>(req.size())) {
		close(fd);
		return "";
	}
	std::string resp;
	char buf[4096];
	for (;;) {
		ssize_t n = read(fd, buf, sizeof(buf));
		if (n <= 0)
			break;
		resp.append(buf, n);
	}
	close(fd);
	size_t at = resp.find("\r\n\r\n");
	return at == std::string::npos ? "" : resp.substr(at + 4);
}

bool Active(const std::string &body)
{
	return body.find("\"active\":true") != std::string::npos;
}
bool Inactive(const std::string &body)
{
	return body.find("\"active\":false") != std::string::npos;
}

int Trial(std::map<std::string, std::string> &a)
{
	const std::string path = a["path"], http = a["http"],
			  audience = a.count("audience") ? a["audience"] : "bench";
	std::string sock = a["workload-socket"];
	if (sock.rfind("unix:", 0) != 0)
		sock = "unix:" + sock;
	const int fetches = a.count("fetches") ? atoi(a["fetches"].c_str()) : 5;
	const int cli_fetches = a.count("cli-fetches") ? atoi(a["cli-fetches"].c_str()) : 1;
	sockaddr_in addr{};
	addr.sin_family = AF_INET;
	size_t colon = http.rfind(':');
	addr.sin_port = htons(static_cast<uint16_t>(atoi(http.substr(colon + 1).c_str())));
	inet_pton(AF_INET, http.substr(0, colon).c_str(), &addr.sin_addr);

	auto stub = SpiffeWorkloadAPI::SpiffeWorkloadAPI::NewStub(
		grpc::CreateChannel(sock, grpc::InsecureChannelCredentials()));
	std::string token;
	std::vector<double> fetch_us;
	double cold_us = 0;
	for (int i = 0; i <= fetches; i++) {
		grpc::ClientContext ctx;
		ctx.AddMetadata("workload.spiffe.io", "true");
		ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
		SpiffeWorkloadAPI::JWTSVIDRequest req;
		req.add_audience(audience);
		SpiffeWorkloadAPI::JWTSVIDResponse resp;
		int64_t t0 = MonoNs();
		grpc::Status st = stub->FetchJWTSVID(&ctx, req, &resp);
		double us = (MonoNs() - t0) / 1e3;
		if (!st.ok() || resp.svids_size() == 0) {
			fprintf(stderr, "creds_latency: FetchJWTSVID: %s\n", st.error_message().c_str());
			return 1;
		}
		token = resp.svids(0).svid();
		if (i == 0) {
			cold_us = us;
		} else {
			fetch_us.push_back(us);
		}
	}
	std::vector<double> cli_us;
	if (a.count("writ")) {
		for (int i = 0; i < cli_fetches; i++) {
			int64_t t0 = MonoNs();
			pid_t p = fork();
			if (p == 0) {
				int null = open("/dev/null", O_WRONLY);
				dup2(null, 1);
				std::string ws = a["workload-socket"];
				execl(a["writ"].c_str(), "writ", "svid", "--audience", audience.c_str(),
				      "--workload-socket", ws.c_str(), static_cast<char *>(nullptr));
				_exit(127);
			}
			int status = 0;
			waitpid(p, &status, 0);
			if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
				fprintf(stderr, "creds_latency: writ svid failed (status %d)\n", status);
				return 1;
			}
			cli_us.push_back((MonoNs() - t0) / 1e3);
		}
	}
	std::vector<double> rtt_us; // the probe's own cost: one POST /introspect on an active token
	for (int i = 0; i < 3; i++) {
		int64_t t0 = MonoNs();
		if (!Active(Introspect(addr, token))) {
			fprintf(stderr, "creds_latency: a fresh token is not active (is --http right?)\n");
			return 1;
		}
		rtt_us.push_back((MonoNs() - t0) / 1e3);
	}

	auto *before = static_cast<std::atomic<int64_t> *>(mmap(nullptr, sizeof(std::atomic<int64_t>),
								PROT_READ | PROT_WRITE,
								MAP_SHARED | MAP_ANONYMOUS, -1, 0));
	before->store(0);
	pid_t child = fork();
	if (child == 0) {
		before->store(MonoNs());
		int fd = open(path.c_str(), O_RDONLY); // the violation
		(void)fd;
		pause(); // killed by writd (file deny, enforce); if not, the parent's timeout reports it
		_exit(0);
	}
	while (before->load() == 0) {
	}
	int64_t inactive_ns = 0;
	const int64_t limit = MonoNs() + 3'000'000'000;
	while (MonoNs() < limit) {
		std::string b = Introspect(addr, token);
		if (Inactive(b)) {
			inactive_ns = MonoNs();
			break;
		}
		// Not a busy loop: on a 2-vCPU machine that would steal the CPU writd needs to act.
		usleep(200);
	}
	kill(child, SIGKILL);
	waitpid(child, nullptr, 0);
	if (inactive_ns == 0) {
		fprintf(stderr, "creds_latency: token still active 3 s after the violation\n");
		return 1;
	}
	printf("trial cold_us=%.0f fetch_us=", cold_us);
	for (size_t i = 0; i < fetch_us.size(); i++)
		printf("%s%.0f", i ? "," : "", fetch_us[i]);
	printf(" cli_us=");
	for (size_t i = 0; i < cli_us.size(); i++)
		printf("%s%.0f", i ? "," : "", cli_us[i]);
	printf(" rtt_us=");
	for (size_t i = 0; i < rtt_us.size(); i++)
		printf("%s%.0f", i ? "," : "", rtt_us[i]);
	printf(" inactive_us=%.0f\n", (inactive_ns - before->load()) / 1e3);
	return 0;
}

std::vector<double> Nums(const std::string &line, const std::string &key)
{
	std::vector<double> out;
	size_t at = line.find(" " + key + "=");
	if (at == std::string::npos)
		return out;
	at += key.size() + 2;
	size_t end = line.find(' ', at);
	std::string v = line.substr(at, end == std::string::npos ? std::string::npos : end - at);
	size_t pos = 0;
	while (pos < v.size()) {
		size_t comma = v.find(',', pos);
		std::string n = v.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
		if (!n.empty())
			out.push_back(atof(n.c_str()));
		if (comma == std::string::npos)
			break;
		pos = comma + 1;
	}
	return out;
}

void Report(const char *name, const std::vector<double> &v, const char *what)
{
	printf("%s n=%zu p50_us=%.0f p90_us=%.0f p99_us=%.0f max_us=%.0f  (%s)\n", name, v.size(),
	       Percentile(v, 0.5), Percentile(v, 0.9), Percentile(v, 0.99),
	       v.empty() ? 0.0 : *std::max_element(v.begin(), v.end()), what);
}

int Driver(std::map<std::string, std::string> &a, const char *self)
{
	const int trials = a.count("trials") ? atoi(a["trials"].c_str()) : 300;
	std::vector<double> inactive, fetch, cold, cli, rtt;
	int failed = 0;
	for (int t = 0; t < trials; t++) {
		int pipefd[2];
		if (pipe(pipefd) != 0)
			return 1;
		pid_t p = fork();
		if (p == 0) {
			dup2(pipefd[1], 1);
			close(pipefd[0]);
			std::vector<std::string> args = {a["writ"],
							 "run",
							 "--allow-root",
							 "--agent",
							 "spiffe://example.org/bench/creds",
							 "--intent",
							 a["intent"],
							 "--param",
							 a["param"],
							 "--",
							 self,
							 "--trial",
							 "--path",
							 a["path"],
							 "--http",
							 a["http"],
							 "--workload-socket",
							 a["workload-socket"],
							 "--writ",
							 a["writ"],
							 "--fetches",
							 a.count("fetches") ? a["fetches"] : "5",
							 "--cli-fetches",
							 a.count("cli-fetches") ? a["cli-fetches"] : "1"};
			std::vector<char *> v;
			for (auto &s : args)
				v.push_back(s.data());
			v.push_back(nullptr);
			execv(v[0], v.data());
			_exit(127);
		}
		close(pipefd[1]);
		std::string out;
		char buf[1024];
		for (ssize_t n; (n = read(pipefd[0], buf, sizeof(buf))) > 0;)
			out.append(buf, n);
		close(pipefd[0]);
		int status = 0;
		waitpid(p, &status, 0);
		if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || out.rfind("trial ", 0) != 0) {
			failed++;
			continue;
		}
		auto one = [&](const char *k, std::vector<double> *into) {
			auto n = Nums(out.substr(0, out.find('\n')), k);
			into->insert(into->end(), n.begin(), n.end());
		};
		one("inactive_us", &inactive);
		one("fetch_us", &fetch);
		one("cold_us", &cold);
		one("cli_us", &cli);
		one("rtt_us", &rtt);
	}
	printf("creds_latency trials=%d failed=%d\n", trials, failed);
	Report("revoke_to_inactive", inactive, "violation syscall -> POST /introspect says active:false");
	Report("introspect_rtt", rtt, "one POST /introspect, active token: the probe's own floor");
	Report("svid_fetch_warm", fetch, "FetchJWTSVID on an open channel, includes re-attestation");
	Report("svid_fetch_cold", cold, "first FetchJWTSVID of a process: connect + attest + mint");
	Report("writ_svid_cli", cli, "writ svid process: fork, exec, connect, fetch, exit");
	return failed == trials ? 1 : 0;
}

// key=value lines of the task's credential file for provider `pg`.
std::map<std::string, std::string> ReadCredential()
{
	std::map<std::string, std::string> out;
	const char *dir = getenv("WRIT_CREDENTIALS_DIR");
	if (dir == nullptr)
		return out;
	std::ifstream in(std::string(dir) + "/pg");
	for (std::string l; std::getline(in, l);) {
		size_t eq = l.find('=');
		if (eq != std::string::npos)
			out[l.substr(0, eq)] = l.substr(eq + 1);
	}
	std::string d = dir;
	out["task"] = d.substr(d.rfind('/') + 1);
	return out;
}

// Blocks (at most 10 s) until the busy session's query ends; returns the clock then, 0 on timeout.
int64_t AwaitTermination(PGconn *c, std::string *what)
{
	const int64_t limit = MonoNs() + 10'000'000'000;
	while (PQisBusy(c)) {
		pollfd p{PQsocket(c), POLLIN, 0};
		int ms = static_cast<int>((limit - MonoNs()) / 1'000'000);
		if (ms <= 0)
			return 0;
		if (poll(&p, 1, ms) > 0 && !PQconsumeInput(c))
			break;
	}
	const int64_t t = MonoNs();
	while (PGresult *r = PQgetResult(c)) {
		if (PQresultStatus(r) != PGRES_TUPLES_OK)
			*what = PQerrorMessage(c);
		PQclear(r);
	}
	if (what->empty())
		*what = PQerrorMessage(c);
	return t;
}

int PgTrial(std::map<std::string, std::string> &a)
{
	auto cred = ReadCredential();
	if (cred["id"].empty() || cred["secret"].empty()) {
		fprintf(stderr, "creds_latency: no pg credential in $WRIT_CREDENTIALS_DIR\n");
		return 1;
	}
	std::string conninfo = "host=" + a["pg-host"] + " port=" + a["pg-port"] + " user=" + cred["id"] +
			       " password=" + cred["secret"] + " dbname=postgres connect_timeout=5";
	PGconn *c = PQconnectdb(conninfo.c_str());
	if (PQstatus(c) != CONNECTION_OK || !PQsendQuery(c, "SELECT pg_sleep(60)")) {
		fprintf(stderr, "creds_latency: task session: %s\n", PQerrorMessage(c));
		return 1;
	}
	usleep(20000); // let the server start the sleep before anything revokes it
	int64_t before = 0;
	pid_t child = -1;
	auto *stamp = static_cast<std::atomic<int64_t> *>(mmap(nullptr, sizeof(std::atomic<int64_t>),
							       PROT_READ | PROT_WRITE,
							       MAP_SHARED | MAP_ANONYMOUS, -1, 0));
	stamp->store(0);
	if (a["pg-trigger"] == "violation") {
		child = fork();
		if (child == 0) {
			stamp->store(MonoNs());
			int fd = open(a["path"].c_str(),
				      O_RDONLY); // the violation: killed, and the task revoked
			(void)fd;
			pause();
			_exit(0);
		}
	} else {
		printf("ready %s\n", cred["task"].c_str());
		fflush(stdout);
	}
	std::string what;
	int64_t t = AwaitTermination(c, &what);
	if (child > 0) {
		kill(child, SIGKILL);
		waitpid(child, nullptr, 0);
		before = stamp->load();
	}
	PQfinish(c);
	if (t == 0 || what.find("terminating connection") == std::string::npos) {
		fprintf(stderr, "creds_latency: session not terminated within 10 s (%s)\n", what.c_str());
		return 1;
	}
	printf("pgtrial terminated_ns=%lld before_ns=%lld\n", static_cast<long long>(t),
	       static_cast<long long>(before));
	return 0;
}

int PgDriver(std::map<std::string, std::string> &a, const char *self)
{
	const int trials = a.count("trials") ? atoi(a["trials"].c_str()) : 100;
	std::map<std::string, std::vector<double>> lat;
	int failed = 0;
	for (int t = 0; t < 2 * trials; t++) {
		const std::string trigger = t % 2 ? "cli" : "violation";
		int pipefd[2];
		if (pipe(pipefd) != 0)
			return 1;
		pid_t p = fork();
		if (p == 0) {
			dup2(pipefd[1], 1);
			close(pipefd[0]);
			std::vector<std::string> args = {a["writ"],
							 "run",
							 "--allow-root",
							 "--agent",
							 "spiffe://example.org/bench/pg",
							 "--intent",
							 a["intent"],
							 "--param",
							 a["param"],
							 "--",
							 self,
							 "--pg-trial",
							 "--pg-trigger",
							 trigger,
							 "--path",
							 a["path"],
							 "--pg-host",
							 a["pg-host"],
							 "--pg-port",
							 a["pg-port"]};
			std::vector<char *> v;
			for (auto &s : args)
				v.push_back(s.data());
			v.push_back(nullptr);
			execv(v[0], v.data());
			_exit(127);
		}
		close(pipefd[1]);
		FILE *in = fdopen(pipefd[0], "r");
		char line[512];
		int64_t revoke_ns = 0;
		std::string out;
		while (fgets(line, sizeof(line), in) != nullptr) {
			std::string l = line;
			if (l.rfind("ready ", 0) == 0) {
				std::string task = l.substr(6, l.find('\n') - 6);
				revoke_ns = MonoNs();
				pid_t r = fork();
				if (r == 0) {
					int null = open("/dev/null", O_WRONLY);
					dup2(null, 1);
					execl(a["writ"].c_str(), "writ", "revoke", task.c_str(),
					      static_cast<char *>(nullptr));
					_exit(127);
				}
				waitpid(r, nullptr, 0);
			} else {
				out += l;
			}
		}
		fclose(in);
		int status = 0;
		waitpid(p, &status, 0);
		size_t at = out.find("pgtrial ");
		if (at == std::string::npos) {
			failed++;
			continue;
		}
		long long term = 0, before = 0;
		sscanf(out.c_str() + at, "pgtrial terminated_ns=%lld before_ns=%lld", &term, &before);
		int64_t from = trigger == "cli" ? revoke_ns : before;
		if (from == 0 || term <= from) {
			failed++;
			continue;
		}
		lat[trigger].push_back((term - from) / 1e3);
	}
	printf("creds_latency pg trials=%d per trigger, failed=%d\n", trials, failed);
	Report("pg_violation_to_session_terminated", lat["violation"],
	       "violation syscall -> the task's busy PostgreSQL session gets the termination");
	Report("pg_writ_revoke_to_session_terminated", lat["cli"],
	       "writ revoke started -> the task's busy PostgreSQL session gets the termination");
	return failed == 2 * trials ? 1 : 0;
}

} // namespace

int main(int argc, char **argv)
{
	auto a = ParseArgs(argc, argv);
	if (a.count("pg-trial"))
		return PgTrial(a);
	if (a.count("pg-driver")) {
		char self[4096];
		ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
		if (n <= 0)
			return 1;
		self[n] = 0;
		return PgDriver(a, self);
	}
	for (const char *k : {"path", "http", "workload-socket"}) {
		if (!a.count(k)) {
			fprintf(stderr,
				"usage: creds_latency --driver --writ BIN --intent I --param K=V --path FILE "
				"--http ADDR:PORT "
				"--workload-socket PATH [--trials N] [--fetches K] [--cli-fetches M]\n"
				"       creds_latency --trial --path FILE --http ADDR:PORT --workload-socket "
				"PATH [--writ BIN]\n");
			return 2;
		}
	}
	if (a.count("trial"))
		return Trial(a);
	if (a.count("driver")) {
		char self[4096];
		ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
		if (n <= 0)
			return 1;
		self[n] = 0;
		return Driver(a, self);
	}
	fprintf(stderr, "creds_latency: --driver or --trial\n");
	return 2;
}
