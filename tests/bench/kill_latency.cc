// kill_latency: violation -> process dead, measured from inside a writ task in enforce mode.
//
// Each trial forks a child that stamps CLOCK_BOOTTIME into shared memory and immediately opens a
// forbidden file. The parent holds a pidfd for the child; the pidfd polls readable when the child has
// exited, and the parent stamps CLOCK_BOOTTIME at that moment. Latency = death stamp - pre-syscall
// stamp: it covers the syscall, the kernel event, writd's wakeup, decode, verdict and kill, and the
// parent's own wakeup (the "self" mode measures that floor: the child SIGKILLs itself instead).
// A child the monitor does not kill sleeps --timeout-ms and exits 0: counted as "survived".
//
//   kill_latency --mode glob|exact|component|self --path FILE [--trials N] [--timeout-ms MS]
// Output, one line: "kill_latency mode=glob trials=N killed=K survived=S p50_us=.. p90_us=.. p99_us=..
// max_us=.."
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace
{

int64_t BootNs()
{
	struct timespec ts;
	clock_gettime(CLOCK_BOOTTIME, &ts);
	return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

int PidfdOpen(pid_t pid)
{
	return static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
}

double Percentile(std::vector<double> v, double q)
{
	if (v.empty())
		return 0;
	std::sort(v.begin(), v.end());
	size_t i = static_cast<size_t>(q * (v.size() - 1) + 0.5);
	return v[std::min(i, v.size() - 1)];
}

struct Shared {
	std::atomic<int64_t> before_ns;
};

int Usage()
{
	fprintf(stderr, "usage: kill_latency --mode glob|exact|component|self --path FILE [--trials N] "
			"[--timeout-ms MS]\n");
	return 2;
}

} // namespace

int main(int argc, char **argv)
{
	std::string mode, path;
	long trials = 200, timeout_ms = 1000;
	for (int i = 1; i < argc; i++) {
		std::string a = argv[i];
		if (i + 1 >= argc) {
			fprintf(stderr, "kill_latency: %s needs a value\n", a.c_str());
			return Usage();
		}
		const char *v = argv[++i];
		if (a == "--mode") {
			mode = v;
		} else if (a == "--path") {
			path = v;
		} else if (a == "--trials") {
			trials = atol(v);
		} else if (a == "--timeout-ms") {
			timeout_ms = atol(v);
		} else {
			fprintf(stderr, "kill_latency: unknown option %s\n", a.c_str());
			return Usage();
		}
	}
	if ((mode != "glob" && mode != "exact" && mode != "component" && mode != "self") || path.empty() ||
	    trials <= 0 || trials > 100000 || timeout_ms <= 0) {
		return Usage();
	}
	auto *shared = static_cast<Shared *>(
		mmap(nullptr, sizeof(Shared), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0));
	if (shared == MAP_FAILED) {
		perror("kill_latency: mmap");
		return 1;
	}
	std::vector<double> lat_us;
	long killed = 0, survived = 0, other = 0;
	for (long t = 0; t < trials; t++) {
		shared->before_ns.store(0);
		pid_t pid = fork();
		if (pid < 0) {
			perror("kill_latency: fork");
			return 1;
		}
		if (pid == 0) {
			shared->before_ns.store(BootNs());
			if (mode == "self") {
				kill(getpid(), SIGKILL);
			} else {
				int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
				if (fd >= 0)
					close(fd);
			}
			// Not killed (yet): give the monitor until the timeout, then report survival by
			// exiting 0.
			struct timespec ts = {timeout_ms / 1000, (timeout_ms % 1000) * 1000000};
			while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
			}
			_exit(0);
		}
		int pfd = PidfdOpen(pid);
		if (pfd < 0) {
			perror("kill_latency: pidfd_open");
			kill(pid, SIGKILL);
			waitpid(pid, nullptr, 0);
			return 1;
		}
		struct pollfd p = {pfd, POLLIN, 0};
		int r;
		do {
			r = poll(&p, 1, static_cast<int>(timeout_ms + 2000));
		} while (r < 0 && errno == EINTR);
		const int64_t dead_ns = BootNs();
		if (r == 0)
			kill(pid, SIGKILL); // hung child: never leave it behind
		siginfo_t si = {};
		while (waitid(P_PID, pid, &si, WEXITED) != 0 && errno == EINTR) {
		}
		close(pfd);
		const int64_t before = shared->before_ns.load();
		if (r > 0 && si.si_code == CLD_KILLED && si.si_status == SIGKILL && before > 0) {
			killed++;
			lat_us.push_back((dead_ns - before) / 1000.0);
		} else if (si.si_code == CLD_EXITED && si.si_status == 0) {
			survived++;
		} else {
			other++;
		}
		usleep(1000); // let writd's pipeline settle between trials: each trial stands alone
	}
	printf("kill_latency mode=%s trials=%ld killed=%ld survived=%ld other=%ld p50_us=%.0f p90_us=%.0f "
	       "p99_us=%.0f max_us=%.0f\n",
	       mode.c_str(), trials, killed, survived, other, Percentile(lat_us, 0.50),
	       Percentile(lat_us, 0.90), Percentile(lat_us, 0.99),
	       lat_us.empty() ? 0.0 : *std::max_element(lat_us.begin(), lat_us.end()));
	return 0;
}
