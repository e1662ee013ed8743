// One HTTP server library serving writd's /introspect, for the side-by-side choice of issue 24
// (scripts/bench/http.sh; numbers in docs/performance.md, "HTTP server"):
//   writ     http::Server (Boost.Beast over Asio, what writd runs)
//   mhd      GNU libmicrohttpd, epoll with an internal thread pool
//   httplib  cpp-httplib, a thread pool of --threads (its default: 8 here)
// Every candidate has the same limits where the library has them (64 KiB requests, 5 s timeouts,
// 256 connections) and the same handler: the form parsed with http::ParseForm and the token checked
// by the real creds::Issuer (ES256 signature, revocation lookup), a token minted at start.
//
//   http_server_bench --server writ|mhd|httplib [--threads N] [--port P]
// prints "port P" and "token JWT", then serves until stdin closes.
#include <httplib.h>
#include <microhttpd.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <memory>
#include <string>

#include "absl/strings/numbers.h"
#include "creds/issuer.h"
#include "creds/keystore.h"
#include "creds/revocation_store.h"
#include "http/server.h"
#include "spdlog/spdlog.h"

namespace
{

using namespace writ;

struct Introspector {
	std::unique_ptr<creds::KeyStore> keys;
	std::unique_ptr<creds::RevocationStore> revs;
	std::unique_ptr<creds::Issuer> issuer;
	std::string token;

	// -> (status, JSON body), exactly what writd's /introspect answers.
	std::pair<int, std::string> Handle(std::string_view body) const
	{
		auto form = http::ParseForm(body);
		if (!form.ok() || !form->count("token"))
			return {400, R"({"error":"invalid_request"})"};
		return {200, issuer->Introspect(form->at("token")).dump()};
	}
};

constexpr size_t kMaxRequest = 64 * 1024;
constexpr int kTimeoutSeconds = 5;
constexpr unsigned kMaxConnections = 256;

// ---- libmicrohttpd
// --------------------------------------------------------------------------------

struct MhdRequest {
	std::string body;
	bool too_large = false;
};

MHD_Result MhdAnswer(MHD_Connection *c, int status, const std::string &body, const char *type)
{
	MHD_Response *r = MHD_create_response_from_buffer(body.size(), const_cast<char *>(body.data()),
							  MHD_RESPMEM_MUST_COPY);
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
	MHD_Result ret = MHD_queue_response(c, static_cast<unsigned>(status), r);
	MHD_destroy_response(r);
	return ret;
}

MHD_Result MhdHandler(void *cls, MHD_Connection *c, const char *url, const char *method, const char *,
		      const char *upload, size_t *upload_size, void **state)
{
	auto *in = static_cast<Introspector *>(cls);
	if (*state == nullptr) {
		*state = new MhdRequest;
		return MHD_YES;
	}
	auto *req = static_cast<MhdRequest *>(*state);
	if (*upload_size != 0) {
		if (req->body.size() + *upload_size > kMaxRequest)
			req->too_large = true;
		if (!req->too_large)
			req->body.append(upload, *upload_size);
		*upload_size = 0;
		return MHD_YES;
	}
	if (req->too_large)
		return MhdAnswer(c, 413, "request too large\n", "text/plain");
	if (std::strcmp(url, "/introspect") != 0)
		return MhdAnswer(c, 404, "not found\n", "text/plain");
	if (std::strcmp(method, "POST") != 0)
		return MhdAnswer(c, 405, "method not allowed\n", "text/plain");
	auto [status, body] = in->Handle(req->body);
	return MhdAnswer(c, status, body, "application/json");
}

void MhdCompleted(void *, MHD_Connection *, void **state, MHD_RequestTerminationCode)
{
	delete static_cast<MhdRequest *>(*state);
	*state = nullptr;
}

int RunMhd(Introspector *in, int port, int threads)
{
	MHD_Daemon *d = MHD_start_daemon(
		MHD_USE_EPOLL_INTERNAL_THREAD | MHD_USE_ERROR_LOG, static_cast<uint16_t>(port), nullptr,
		nullptr, &MhdHandler, in, MHD_OPTION_NOTIFY_COMPLETED, &MhdCompleted, nullptr,
		MHD_OPTION_THREAD_POOL_SIZE, static_cast<unsigned>(threads), MHD_OPTION_CONNECTION_LIMIT,
		kMaxConnections, MHD_OPTION_CONNECTION_TIMEOUT, static_cast<unsigned>(kTimeoutSeconds),
		MHD_OPTION_CONNECTION_MEMORY_LIMIT, static_cast<size_t>(32 * 1024), MHD_OPTION_END);
	if (d == nullptr) {
		std::fprintf(stderr, "MHD_start_daemon failed\n");
		return 1;
	}
	const MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
	std::printf("port %u\ntoken %s\n", info->port, in->token.c_str());
	std::fflush(stdout);
	char c;
	while (::read(STDIN_FILENO, &c, 1) > 0) {
	}
	MHD_stop_daemon(d);
	return 0;
}

// ---- cpp-httplib
// ---------------------------------------------------------------------------------

int RunHttplib(Introspector *in, int port, int threads)
{
	httplib::Server s;
	s.new_task_queue = [threads] { return new httplib::ThreadPool(static_cast<size_t>(threads)); };
	s.set_read_timeout(kTimeoutSeconds, 0);
	s.set_write_timeout(kTimeoutSeconds, 0);
	s.set_keep_alive_timeout(kTimeoutSeconds);
	s.set_payload_max_length(kMaxRequest);
	s.Post("/introspect", [in](const httplib::Request &req, httplib::Response &res) {
		auto [status, body] = in->Handle(req.body);
		res.status = status;
		res.set_content(body, "application/json");
	});
	if (port == 0) {
		port = s.bind_to_any_port("127.0.0.1");
	} else if (!s.bind_to_port("127.0.0.1", port)) {
		port = -1;
	}
	if (port < 0) {
		std::fprintf(stderr, "httplib: bind failed\n");
		return 1;
	}
	std::printf("port %d\ntoken %s\n", port, in->token.c_str());
	std::fflush(stdout);
	std::thread t([&s] { s.listen_after_bind(); });
	char c;
	while (::read(STDIN_FILENO, &c, 1) > 0) {
	}
	s.stop();
	t.join();
	return 0;
}

// ---- writ (Boost.Beast)
// --------------------------------------------------------------------------

int RunWrit(Introspector *in, int port, int threads)
{
	http::ServerOptions o;
	o.address = "127.0.0.1:" + std::to_string(port);
	o.workers = threads;
	o.max_request_bytes = kMaxRequest;
	o.max_connections = kMaxConnections;
	o.io_timeout = absl::Seconds(kTimeoutSeconds);
	auto s = http::Server::Create(o);
	if (!s.ok()) {
		std::fprintf(stderr, "%s\n", s.status().ToString().c_str());
		return 1;
	}
	(*s)->AddRoute("POST", "/introspect", [in](const http::Request &req) {
		auto [status, body] = in->Handle(req.body);
		http::Response r;
		r.status = status;
		r.content_type = "application/json";
		r.body = std::move(body);
		return r;
	});
	if (absl::Status st = (*s)->Start(); !st.ok()) {
		std::fprintf(stderr, "%s\n", st.ToString().c_str());
		return 1;
	}
	std::printf("port %d\ntoken %s\n", (*s)->port(), in->token.c_str());
	std::fflush(stdout);
	char c;
	while (::read(STDIN_FILENO, &c, 1) > 0) {
	}
	(*s)->Stop();
	return 0;
}

} // namespace

int main(int argc, char **argv)
{
	std::string server;
	int threads = 0, port = 0;
	for (int i = 1; i + 1 < argc; i += 2) {
		const std::string flag = argv[i];
		if (flag == "--server") {
			server = argv[i + 1];
		} else if (flag == "--threads") {
			(void)absl::SimpleAtoi(argv[i + 1], &threads);
		} else if (flag == "--port") {
			(void)absl::SimpleAtoi(argv[i + 1], &port);
		} else {
			std::fprintf(stderr, "unknown flag %s\n", argv[i]);
			return 2;
		}
	}
	spdlog::set_level(spdlog::level::warn);
	char tmpl[] = "/tmp/writ-http-bench-XXXXXX";
	const std::string dir = mkdtemp(tmpl);
	Introspector in;
	creds::KeyStoreOptions ko;
	ko.state_dir = dir;
	in.keys = std::move(*creds::KeyStore::Open(ko));
	in.revs = std::move(*creds::RevocationStore::Open(dir + "/revoked.db"));
	in.issuer = std::make_unique<creds::Issuer>(creds::IssuerOptions{"https://writ.local"}, in.keys.get(),
						    in.revs.get());
	creds::TaskClaims task{"t-bench",
			       "spiffe://example.org/agent/bench",
			       {"user:alice@example.org"},
			       "bench",
			       absl::Now() + absl::Hours(1)};
	auto svid = in.issuer->Mint(task, {"https://db.example.org"});
	if (!svid.ok()) {
		std::fprintf(stderr, "mint: %s\n", svid.status().ToString().c_str());
		return 1;
	}
	in.token = svid->token;
	int rc = 2;
	if (server == "writ") {
		rc = RunWrit(&in, port, threads > 0 ? threads : 2);
	} else if (server == "mhd") {
		rc = RunMhd(&in, port, threads > 0 ? threads : 2);
	} else if (server == "httplib") {
		rc = RunHttplib(&in, port, threads > 0 ? threads : 8);
	} else {
		std::fprintf(stderr,
			     "usage: http_server_bench --server writ|mhd|httplib [--threads N] [--port P]\n");
	}
	std::filesystem::remove_all(dir);
	return rc;
}
