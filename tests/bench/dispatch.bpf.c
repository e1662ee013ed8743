// SPDX-License-Identifier: GPL-2.0
/*
 * "dispatch": what the kernel charges a process for a BPF program on its syscalls before the program
 * does anything, measured by scripts/bench/dispatch.sh for the processes writd does not watch. Each
 * program is attached alone:
 *   tp_empty    syscalls/sys_exit_openat, returns at once: the syscall tracepoint slow path that every
 *               syscall of every process takes once any syscall tracepoint is attached, plus one
 *               perf-event BPF dispatch per openat
 *   tp_filter   the same plus writd's filter (ancestor cgroup id, one hash lookup in an empty map): what
 *               writd's exit_openat costs a process outside every task
 *   raw_empty   tp_btf/sys_exit (raw_syscalls): one program for every syscall, returning at once
 *   raw_filter  the same, returning unless the syscall is openat, then the filter
 */
#include "vmlinux.h"

#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

char LICENSE[] SEC("license") = "GPL";

#define NR_OPENAT 257

const volatile __u32 cfg_level = 1;

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u64);
	__type(value, __u64);
} dispatch_task_map SEC(".maps");

static __always_inline int filter(void)
{
	__u64 id = bpf_get_current_ancestor_cgroup_id(cfg_level);

	return bpf_map_lookup_elem(&dispatch_task_map, &id) != NULL;
}

SEC("tracepoint/syscalls/sys_exit_openat")
int tp_empty(void *ctx)
{
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_openat")
int tp_filter(void *ctx)
{
	filter();
	return 0;
}

SEC("tp_btf/sys_exit")
int BPF_PROG(raw_empty, struct pt_regs *regs, long ret)
{
	return 0;
}

SEC("tp_btf/sys_exit")
int BPF_PROG(raw_filter, struct pt_regs *regs, long ret)
{
	if (regs->orig_ax != NR_OPENAT)
		return 0;
	filter();
	return 0;
}
