// SPDX-License-Identifier: GPL-2.0
/*
 * "floor": the least a BPF monitor of open/exec/connect can cost, the physical reference writd's
 * overhead is compared with in scripts/bench/side_by_side.sh. Three tracepoints, the same cgroup filter as
 * writd (one hash lookup on the ancestor cgroup id; other processes return at once), one small fixed record
 * per event reserved in a ring buffer and submitted with BPF_RB_NO_WAKEUP: userspace drains on a timer,
 * so no event pays for a wakeup. No path resolution, no argument maps, no in-kernel verdicts: whatever
 * writd costs beyond this is the price of those features.
 */
#include "vmlinux.h"

#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "floor.h"

char LICENSE[] SEC("license") = "GPL";

#define AF_INET 2
#define AF_INET6 10

const volatile __u32 cfg_level = 0; /* cgroup level of the monitored cgroup; 0 = own cgroup */

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4 << 20);
} floor_events_map SEC(".maps");

/* Monitored cgroup ids (like writd's task_map). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, __u64);
	__type(value, __u32);
} floor_cgroup_map SEC(".maps");

/* [kind * 2 + 0] = emitted, [kind * 2 + 1] = dropped (ring buffer full); per CPU. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, FLOOR_KIND_MAX * 2);
	__type(key, __u32);
	__type(value, __u64);
} floor_counters_map SEC(".maps");

static __always_inline int watched(__u64 *cgid)
{
	*cgid = cfg_level ? bpf_get_current_ancestor_cgroup_id(cfg_level) : bpf_get_current_cgroup_id();
	return bpf_map_lookup_elem(&floor_cgroup_map, cgid) != NULL;
}

static __always_inline void count(__u32 kind, __u32 dropped)
{
	__u32 key = kind * 2 + dropped;
	__u64 *v = bpf_map_lookup_elem(&floor_counters_map, &key);

	if (v)
		*v += 1;
}

static __always_inline struct floor_event *reserve(__u32 kind, __u64 cgid)
{
	struct floor_event *e = bpf_ringbuf_reserve(&floor_events_map, sizeof(*e), 0);
	__u64 id;

	if (!e) {
		count(kind, 1);
		return NULL;
	}
	id = bpf_get_current_pid_tgid();
	e->ktime_ns = bpf_ktime_get_boot_ns();
	e->cgroup_id = cgid;
	e->kind = kind;
	e->tgid = id >> 32;
	e->pid = (__u32)id;
	e->port = 0;
	e->family = 0;
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	return e;
}

static __always_inline void submit(struct floor_event *e, __u32 kind)
{
	bpf_ringbuf_submit(e, BPF_RB_NO_WAKEUP);
	count(kind, 0);
}

SEC("tracepoint/syscalls/sys_enter_openat")
int floor_openat(struct trace_event_raw_sys_enter *ctx)
{
	struct floor_event *e;
	__u64 cgid;

	if (!watched(&cgid))
		return 0;
	e = reserve(FLOOR_OPEN, cgid);
	if (!e)
		return 0;
	if (bpf_probe_read_user_str(e->name, sizeof(e->name), (void *)ctx->args[1]) < 0)
		e->name[0] = 0;
	submit(e, FLOOR_OPEN);
	return 0;
}

SEC("tp_btf/sched_process_exec")
int BPF_PROG(floor_exec, struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)
{
	struct floor_event *e;
	__u64 cgid;

	if (!watched(&cgid))
		return 0;
	e = reserve(FLOOR_EXEC, cgid);
	if (!e)
		return 0;
	if (bpf_probe_read_kernel_str(e->name, sizeof(e->name), BPF_CORE_READ(bprm, filename)) < 0)
		e->name[0] = 0;
	submit(e, FLOOR_EXEC);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_connect")
int floor_connect(struct trace_event_raw_sys_enter *ctx)
{
	struct floor_event *e;
	struct sockaddr_in sin = {};
	__u64 cgid;

	if (!watched(&cgid))
		return 0;
	e = reserve(FLOOR_CONNECT, cgid);
	if (!e)
		return 0;
	/* sin_family and sin_port sit at the same offsets in sockaddr_in6. */
	bpf_probe_read_user(&sin, sizeof(sin), (void *)ctx->args[1]);
	e->family = sin.sin_family;
	e->port = bpf_ntohs(sin.sin_port);
	e->name[0] = 0;
	submit(e, FLOOR_CONNECT);
	return 0;
}
