// floor: userspace half of the bench's minimal BPF monitor (see floor.bpf.c). Loads the three
// tracepoints, registers the monitored cgroup, drains the ring buffer every --drain-ms (records are
// submitted without wakeups, so a timer is the only consumer trigger) and counts what it sees. On
// SIGTERM/SIGINT (or --max-seconds) it drains a last time and prints one line:
//   floor events=N open=N exec=N connect=N drops=N
// It prints "floor ready" on stdout once every program is attached, so a harness can wait for it.
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "floor.h"
#include "floor.skel.h"
#include "util/status_macros.h"

namespace writ::bench
{
namespace
{

volatile sig_atomic_t g_stop = 0;
void OnSignal(int)
{
	g_stop = 1;
}

struct Options {
	std::string cgroup; // absolute path of a cgroup2 directory
	int drain_ms = 10;
	double max_seconds = 3600;
};

struct CgroupRef {
	uint64_t id = 0;
	uint32_t level = 0;
};

// cgroup2 mount point from /proc/mounts.
absl::StatusOr<std::string> Cgroup2Mount()
{
	std::ifstream in("/proc/mounts");
	std::string line;
	while (std::getline(in, line)) {
		std::istringstream ls(line);
		std::string dev, dir, type;
		ls >> dev >> dir >> type;
		if (type == "cgroup2")
			return dir;
	}
	return absl::FailedPreconditionError("no cgroup2 mount in /proc/mounts");
}

// On cgroup2 the directory's inode number is the cgroup id bpf_get_current_cgroup_id() returns; the
// level is its depth below the mount (the mount itself is level 0).
absl::StatusOr<CgroupRef> ResolveCgroup(const std::string &path)
{
	ASSIGN_OR_RETURN(std::string mount, Cgroup2Mount());
	if (path.compare(0, mount.size(), mount) != 0 ||
	    (path.size() > mount.size() && path[mount.size()] != '/')) {
		return absl::InvalidArgumentError(
			absl::StrCat("--cgroup ", path, ": not under the cgroup2 mount ", mount));
	}
	struct stat st;
	if (stat(path.c_str(), &st) != 0)
		return ErrnoStatus(errno, absl::StrCat("--cgroup ", path));
	CgroupRef ref;
	ref.id = st.st_ino;
	for (size_t i = mount.size(); i < path.size(); i++) {
		if (path[i] == '/' && i + 1 < path.size() && path[i + 1] != '/')
			ref.level++;
	}
	return ref;
}

struct SkelDeleter {
	void operator()(floor_bpf *s) const
	{
		floor_bpf__destroy(s);
	}
};
struct RingDeleter {
	void operator()(ring_buffer *r) const
	{
		ring_buffer__free(r);
	}
};

struct Seen {
	uint64_t by_kind[FLOOR_KIND_MAX] = {};
	uint64_t malformed = 0;
};

int OnRecord(void *ctx, void *data, size_t size)
{
	auto *seen = static_cast<Seen *>(ctx);
	if (size < sizeof(floor_event)) {
		seen->malformed++;
		return 0;
	}
	const auto *e = static_cast<const floor_event *>(data);
	if (e->kind < FLOOR_KIND_MAX) {
		seen->by_kind[e->kind]++;
	} else {
		seen->malformed++;
	}
	return 0;
}

absl::Status Run(const Options &o)
{
	ASSIGN_OR_RETURN(CgroupRef cg, ResolveCgroup(o.cgroup));
	std::unique_ptr<floor_bpf, SkelDeleter> skel(floor_bpf__open());
	if (!skel)
		return ErrnoStatus(errno, "open floor skeleton");
	skel->rodata->cfg_level = cg.level;
	int err = floor_bpf__load(skel.get());
	if (err)
		return ErrnoStatus(-err, "load floor BPF programs (needs root and kernel BTF)");
	err = floor_bpf__attach(skel.get());
	if (err)
		return ErrnoStatus(-err, "attach floor BPF programs");
	uint32_t one = 1;
	if (bpf_map__update_elem(skel->maps.floor_cgroup_map, &cg.id, sizeof(cg.id), &one, sizeof(one),
				 BPF_ANY) != 0) {
		return ErrnoStatus(errno, "register the monitored cgroup");
	}
	Seen seen;
	std::unique_ptr<ring_buffer, RingDeleter> rb(
		ring_buffer__new(bpf_map__fd(skel->maps.floor_events_map), OnRecord, &seen, nullptr));
	if (!rb)
		return ErrnoStatus(errno, "ring_buffer__new");

	printf("floor ready cgroup_id=%llu level=%u\n", static_cast<unsigned long long>(cg.id), cg.level);
	fflush(stdout);

	// Batched consumer: sleep, then take everything pending. Bounded by --max-seconds.
	const long max_iters = static_cast<long>(o.max_seconds * 1000 / o.drain_ms) + 1;
	for (long i = 0; i < max_iters && !g_stop; i++) {
		usleep(o.drain_ms * 1000);
		if (ring_buffer__consume(rb.get()) < 0 && errno != EINTR) {
			return ErrnoStatus(errno, "ring_buffer__consume");
		}
	}
	ring_buffer__consume(rb.get());

	uint64_t drops = 0, emitted = 0;
	const int ncpus = libbpf_num_possible_cpus();
	if (ncpus <= 0)
		return ErrnoStatus(-ncpus, "libbpf_num_possible_cpus");
	std::vector<uint64_t> vals(ncpus);
	for (uint32_t key = 0; key < FLOOR_KIND_MAX * 2; key++) {
		if (bpf_map__lookup_elem(skel->maps.floor_counters_map, &key, sizeof(key), vals.data(),
					 vals.size() * sizeof(uint64_t), 0) != 0) {
			return ErrnoStatus(errno, "read floor counters");
		}
		for (uint64_t v : vals)
			(key % 2 ? drops : emitted) += v;
	}
	const uint64_t events =
		seen.by_kind[FLOOR_OPEN] + seen.by_kind[FLOOR_EXEC] + seen.by_kind[FLOOR_CONNECT];
	printf("floor events=%llu open=%llu exec=%llu connect=%llu drops=%llu emitted=%llu malformed=%llu\n",
	       static_cast<unsigned long long>(events),
	       static_cast<unsigned long long>(seen.by_kind[FLOOR_OPEN]),
	       static_cast<unsigned long long>(seen.by_kind[FLOOR_EXEC]),
	       static_cast<unsigned long long>(seen.by_kind[FLOOR_CONNECT]),
	       static_cast<unsigned long long>(drops), static_cast<unsigned long long>(emitted),
	       static_cast<unsigned long long>(seen.malformed));
	fflush(stdout);
	if (events != emitted) {
		fprintf(stderr, "floor: %llu records emitted by the kernel but %llu consumed\n",
			static_cast<unsigned long long>(emitted), static_cast<unsigned long long>(events));
	}
	return absl::OkStatus();
}

} // namespace
} // namespace writ::bench

int main(int argc, char **argv)
{
	writ::bench::Options o;
	for (int i = 1; i < argc; i++) {
		std::string a = argv[i];
		if (i + 1 >= argc) {
			fprintf(stderr,
				"floor: %s needs a value\nusage: floor --cgroup PATH [--drain-ms N] "
				"[--max-seconds S]\n",
				a.c_str());
			return 2;
		}
		const char *v = argv[++i];
		if (a == "--cgroup") {
			o.cgroup = v;
		} else if (a == "--drain-ms") {
			o.drain_ms = atoi(v);
		} else if (a == "--max-seconds") {
			o.max_seconds = atof(v);
		} else {
			fprintf(stderr, "floor: unknown option %s\n", a.c_str());
			return 2;
		}
	}
	if (o.cgroup.empty() || o.drain_ms <= 0 || o.max_seconds <= 0) {
		fprintf(stderr, "usage: floor --cgroup PATH [--drain-ms N>0] [--max-seconds S>0]\n");
		return 2;
	}
	struct sigaction sa = {};
	sa.sa_handler = writ::bench::OnSignal;
	sigaction(SIGTERM, &sa, nullptr);
	sigaction(SIGINT, &sa, nullptr);
	absl::Status st = writ::bench::Run(o);
	if (!st.ok()) {
		fprintf(stderr, "floor: %s\n", std::string(st.message()).c_str());
		return 1;
	}
	return 0;
}
