// dispatch: loads tests/bench/dispatch.bpf.c and attaches the one program named on the command line
// (tp_empty, tp_filter, raw_empty, raw_filter), prints "dispatch ready", and holds it until SIGTERM,
// SIGINT or --max-seconds. scripts/bench/dispatch.sh times workloads while it runs.
#include <bpf/libbpf.h>
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>

#include "dispatch.skel.h"

namespace
{

volatile sig_atomic_t g_stop = 0;
void OnSignal(int)
{
	g_stop = 1;
}

struct SkelDeleter {
	void operator()(dispatch_bpf *s) const
	{
		dispatch_bpf__destroy(s);
	}
};
struct LinkDeleter {
	void operator()(bpf_link *l) const
	{
		bpf_link__destroy(l);
	}
};

} // namespace

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr,
			"usage: dispatch tp_empty|tp_filter|raw_empty|raw_filter [--max-seconds S]\n");
		return 2;
	}
	double max_seconds = 600;
	if (argc == 4 && std::string(argv[2]) == "--max-seconds")
		max_seconds = atof(argv[3]);
	std::unique_ptr<dispatch_bpf, SkelDeleter> skel(dispatch_bpf__open_and_load());
	if (!skel) {
		fprintf(stderr, "dispatch: load: %s (needs root and kernel BTF)\n", strerror(errno));
		return 1;
	}
	bpf_program *prog = bpf_object__find_program_by_name(skel->obj, argv[1]);
	if (!prog) {
		fprintf(stderr, "dispatch: no program %s\n", argv[1]);
		return 2;
	}
	std::unique_ptr<bpf_link, LinkDeleter> link(bpf_program__attach(prog));
	if (!link) {
		fprintf(stderr, "dispatch: attach %s: %s\n", argv[1], strerror(errno));
		return 1;
	}
	struct sigaction sa = {};
	sa.sa_handler = OnSignal;
	sigaction(SIGTERM, &sa, nullptr);
	sigaction(SIGINT, &sa, nullptr);
	printf("dispatch ready %s\n", argv[1]);
	fflush(stdout);
	for (long ms = 0; !g_stop && ms < static_cast<long>(max_seconds * 1000); ms += 10)
		usleep(10000);
	return 0;
}
