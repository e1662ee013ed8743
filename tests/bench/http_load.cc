// Load for the HTTP server comparison (scripts/bench/http.sh): holds connections open the way a
// hostile local client would, then measures /introspect latency.
//
//   http_load --port P --token JWT [--idle N] [--slow N] [--held N] [--requests M] [--hold-seconds
//   S]
//
//   --idle N      connections opened and never written to
//   --slow N      connections that send part of a request header, then one more byte per connection
//                 every second (slowloris)
//   --held N      connections that complete one keep-alive /introspect and stay open (memory per
//                 connection: the caller reads the server's RSS while they are held); at most 30 s
//                 are spent opening them
//   --requests M  then M POST /introspect, one after another, each on a new connection; a request
//                 gets 10 s (twice the servers' 5 s timeouts) before it counts as failed, and the
//                 requests stop after 60 s (run= says how many ran)
//   --hold-seconds S  after "ready", keep everything open S seconds before measuring (RSS window)
//
// Prints "ready ..." once the connections are open, then one result line:
//   requests=M ok=K failed=F p50_us=.. p99_us=.. max_us=.. idle_open=.. slow_open=.. held_ok=..
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

namespace
{

using Clock = std::chrono::steady_clock;

int Connect(int port)
{
	int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	sockaddr_in a{};
	a.sin_family = AF_INET;
	a.sin_port = htons(static_cast<uint16_t>(port));
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (::connect(fd, reinterpret_cast<sockaddr *>(&a), sizeof(a)) != 0) {
		::close(fd);
		return -1;
	}
	int one = 1;
	::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return fd;
}

bool SendAll(int fd, const std::string &s)
{
	size_t off = 0;
	while (off < s.size()) {
		ssize_t n = ::send(fd, s.data() + off, s.size() - off, MSG_NOSIGNAL);
		if (n <= 0)
			return false;
		off += static_cast<size_t>(n);
	}
	return true;
}

// Reads one Content-Length-framed response within `deadline`; its status, or 0.
int ReadResponse(int fd, Clock::time_point deadline)
{
	std::string buf;
	char tmp[8192];
	for (;;) {
		const size_t he = buf.find("\r\n\r\n");
		if (he != std::string::npos) {
			std::string head = buf.substr(0, he);
			for (auto &c : head)
				c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
			const size_t cl = head.find("content-length:");
			const size_t need = cl == std::string::npos
						    ? 0
						    : std::strtoul(head.c_str() + cl + 15, nullptr, 10);
			if (buf.size() >= he + 4 + need)
				return std::atoi(buf.c_str() + 9);
		}
		const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now())
					.count();
		pollfd p{fd, POLLIN, 0};
		if (ms <= 0 || ::poll(&p, 1, static_cast<int>(ms)) <= 0)
			return 0;
		ssize_t n = ::recv(fd, tmp, sizeof(tmp), 0);
		if (n <= 0)
			return 0;
		buf.append(tmp, static_cast<size_t>(n));
	}
}

bool StillOpen(int fd)
{
	char c;
	ssize_t n = ::recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
	return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

} // namespace

int main(int argc, char **argv)
{
	int port = 0, idle = 0, slow = 0, held = 0, requests = 0, hold_seconds = 0;
	std::string token = "x";
	for (int i = 1; i + 1 < argc; i += 2) {
		const std::string f = argv[i];
		const char *v = argv[i + 1];
		if (f == "--port")
			port = std::atoi(v);
		else if (f == "--token")
			token = v;
		else if (f == "--idle")
			idle = std::atoi(v);
		else if (f == "--slow")
			slow = std::atoi(v);
		else if (f == "--held")
			held = std::atoi(v);
		else if (f == "--requests")
			requests = std::atoi(v);
		else if (f == "--hold-seconds")
			hold_seconds = std::atoi(v);
		else {
			std::fprintf(stderr, "http_load: unknown flag %s\n", argv[i]);
			return 2;
		}
	}
	if (port <= 0) {
		std::fprintf(stderr, "http_load: --port is required\n");
		return 2;
	}
	const std::string host = "127.0.0.1:" + std::to_string(port);
	const std::string body = "token=" + token;
	auto request = [&](bool close) {
		return "POST /introspect HTTP/1.1\r\nHost: " + host +
		       "\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: " +
		       std::to_string(body.size()) + (close ? "\r\nConnection: close" : "") + "\r\n\r\n" +
		       body;
	};

	std::vector<int> idle_fds, slow_fds, held_fds;
	for (int i = 0; i < idle; ++i)
		idle_fds.push_back(Connect(port));
	const std::string partial = "POST /introspect HTTP/1.1\r\nHost: " + host + "\r\nX-Slow: ";
	for (int i = 0; i < slow; ++i) {
		slow_fds.push_back(Connect(port));
		if (slow_fds.back() >= 0)
			SendAll(slow_fds.back(), partial);
	}
	int held_ok = 0;
	const auto held_budget = Clock::now() + std::chrono::seconds(30); // a starved server ends this too
	for (int i = 0; i < held && Clock::now() < held_budget; ++i) {
		int fd = Connect(port);
		if (fd >= 0 && SendAll(fd, request(false)) &&
		    ReadResponse(fd, Clock::now() + std::chrono::seconds(10)) == 200) {
			held_ok++;
		}
		held_fds.push_back(fd);
	}
	std::atomic<bool> stop{false};
	std::thread trickle([&] {
		for (int round = 0; round < 600 && !stop.load(); ++round) {
			for (int fd : slow_fds) {
				if (fd >= 0)
					(void)::send(fd, "a", 1, MSG_NOSIGNAL | MSG_DONTWAIT);
			}
			for (int i = 0; i < 10 && !stop.load(); ++i)
				std::this_thread::sleep_for(std::chrono::milliseconds(100));
		}
	});
	std::printf("ready idle=%d slow=%d held=%d held_ok=%d\n", idle, slow, held, held_ok);
	std::fflush(stdout);
	for (int i = 0; i < hold_seconds * 10; ++i)
		std::this_thread::sleep_for(std::chrono::milliseconds(100));

	std::vector<int64_t> lat;
	int ok = 0, failed = 0;
	const std::string req = request(true);
	const auto budget = Clock::now() + std::chrono::seconds(60); // a starved server ends the run
	int run = 0;
	for (int i = 0; i < requests && Clock::now() < budget; ++i, ++run) {
		const auto t0 = Clock::now();
		int fd = Connect(port);
		int status = 0;
		if (fd >= 0 && SendAll(fd, req))
			status = ReadResponse(fd, t0 + std::chrono::seconds(10));
		if (fd >= 0)
			::close(fd);
		lat.push_back(
			std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - t0).count());
		(status == 200 ? ok : failed)++;
	}
	stop = true;
	trickle.join();
	int idle_open = 0, slow_open = 0;
	for (int fd : idle_fds)
		idle_open += fd >= 0 && StillOpen(fd);
	for (int fd : slow_fds)
		slow_open += fd >= 0 && StillOpen(fd);
	std::sort(lat.begin(), lat.end());
	auto pct = [&lat](double p) -> int64_t {
		if (lat.empty())
			return 0;
		return lat[std::min(lat.size() - 1,
				    static_cast<size_t>(p * static_cast<double>(lat.size())))];
	};
	std::printf("requests=%d run=%d ok=%d failed=%d p50_us=%lld p99_us=%lld max_us=%lld idle_open=%d "
		    "slow_open=%d held_ok=%d\n",
		    requests, run, ok, failed, static_cast<long long>(pct(0.5)),
		    static_cast<long long>(pct(0.99)), static_cast<long long>(lat.empty() ? 0 : lat.back()),
		    idle_open, slow_open, held_ok);
	for (int fd : idle_fds)
		::close(fd);
	for (int fd : slow_fds)
		::close(fd);
	for (int fd : held_fds)
		::close(fd);
	return 0;
}
