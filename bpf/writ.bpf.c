// SPDX-License-Identifier: GPL-2.0
/*
 * writ kernel side: attribute exec, fork, exit, open and connect of task processes, decide in the kernel
 * where compiled tables can, and stream fixed-layout records to userspace.
 *
 * Every program starts with the same filter: is the current task's cgroup (its ancestor at the task level)
 * a registered task? If not, return after one hash lookup: processes outside any task pay ~nothing.
 *
 * The hook families share maps (task map, scratch, ring buffer, tables) and helpers, which live in
 * writ_common.bpf.h; writ_lsm.bpf.c includes the same header and reuses these maps by fd. The families
 * are kept apart by section below.
 */
#include "writ_common.bpf.h"
#include "writ_adopt.bpf.h"

char LICENSE[] SEC("license") = "GPL";

/* ---- exec, fork, exit ---------------------------------------------------------------------------- */

/* The host's dynamic loaders (ld-linux-x86-64.so.2, ...) by file identity (writ_file_id_hash of device and
 * inode), written by writd at start. An exec whose image is one of them runs the loader as a program
 * (`ld.so ./binary`): the program that will run is an argument, which userspace resolves and judges
 * (WRIT_F_LOADER), as it does a shebang script. By identity, so every name of the file (symlinks such as
 * /lib64/ld-linux-x86-64.so.2, hard links, bind mounts) is one. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, __u64);
	__type(value, __u32);
} loader_map SEC(".maps");

static __always_inline int exec_is_loader(struct file *file)
{
	__u64 id = writ_file_id_hash(BPF_CORE_READ(file, f_inode, i_sb, s_dev),
				     BPF_CORE_READ(file, f_inode, i_ino));

	return bpf_map_lookup_elem(&loader_map, &id) != NULL;
}

SEC("tp_btf/sched_process_exec")
int BPF_PROG(handle_exec, struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)
{
	struct writ_task_info *t;
	union writ_scratch *s;
	struct writ_exec_event *e;
	__u64 cgid, arg_start, arg_end, len;
	struct file *file;
	struct path fpath;
	__u32 flags = 0;
	long n;

	t = lookup_task(&cgid);
	if (!t)
		return adopt_candidate(p, bprm); /* in no task: maybe an agent to adopt (writ_adopt.bpf.h) */
	s = scratch();
	if (!s)
		return 0;
	e = &s->exec;
	fill_hdr(&e->hdr, WRIT_EV_EXEC, cgid, t, p);

	/* The image actually loaded: for a script this is the interpreter; filename is what was asked. */
	file = BPF_CORE_READ(bprm, file);
	bpf_core_read(&fpath, sizeof(fpath), &file->f_path);
	e->path_len = walk_path(&fpath, 1, &flags);
	struct hash_ctx hc = {.is_exec = 1, .slot = t->slot};
	e->path_hash = path_hash(&hc, e->path_len);

	n = bpf_probe_read_kernel_str(e->filename, sizeof(e->filename), BPF_CORE_READ(bprm, filename));
	e->filename_len = n > 0 ? n : 0;
	/* bprm->interp starts as bprm->filename; binfmt_script and binfmt_misc replace it with the
	 * interpreter's path. By this tracepoint the script's own file is closed: userspace resolves its
	 * name (WRIT_F_SCRIPT). */
	if (BPF_CORE_READ(bprm, interp) != BPF_CORE_READ(bprm, filename))
		flags |= WRIT_F_SCRIPT;
	/* Only where exec rules exist: elsewhere nothing would judge what the loader runs. */
	if ((t->flags & WRIT_TASK_EXEC_JUDGED) && exec_is_loader(file))
		flags |= WRIT_F_LOADER;

	arg_start = BPF_CORE_READ(p, mm, arg_start);
	arg_end = BPF_CORE_READ(p, mm, arg_end);
	len = arg_end - arg_start;
	if (len > WRIT_ARGS_MAX) {
		len = WRIT_ARGS_MAX;
		flags |= WRIT_F_ARGS_TRUNC;
	}
	if (bpf_probe_read_user(e->args, len, (void *)arg_start))
		len = 0;
	e->args_len = len;

	/* In-kernel verdict from the task's exec table. */
	e->verdict = WRIT_KV_NONE;
	struct writ_path_key key = {.slot = t->slot, .hash = e->path_hash};
	__u32 *v = bpf_map_lookup_elem(&exec_map, &key);
	if (v)
		e->verdict = *v;
	else if (t->flags & WRIT_TASK_EXEC_TABLE)
		e->verdict = WRIT_KV_DENY;
	else if (t->flags & WRIT_TASK_EXEC_USER)
		e->verdict = WRIT_KV_USER;
	/* The table judged the interpreter; a deny or approval rule may name the script. */
	if ((flags & WRIT_F_SCRIPT) && (t->flags & WRIT_TASK_EXEC_SCRIPT) &&
	    (e->verdict == WRIT_KV_NONE || e->verdict == WRIT_KV_ALLOW))
		e->verdict = WRIT_KV_USER;
	/* What runs is not what the table saw: the program a loader was asked to run, or an exe whose walk
	 * stopped short of the root (its hash is of a tail, which may look like an allowed path). Unless the
	 * table denies the image itself (an exec.deny entry), userspace judges it: stopped until then. */
	if ((t->flags & WRIT_TASK_EXEC_JUDGED) && (flags & (WRIT_F_LOADER | WRIT_F_PATH_TRUNC)) &&
	    !(v && *v == WRIT_KV_DENY))
		e->verdict = WRIT_KV_USER;

	/* Only enforce mode makes a record urgent: there the kernel has killed or stopped the process and
	 * userspace must follow up now. A monitor-mode violation is reported with the batch (a prompt
	 * wakeup per denied exec cost the exec'ing process two IPIs, ~50 us of its CPU per exec here). */
	if (t->flags & WRIT_TASK_ENFORCE) {
		/* bpf_send_signal targets current: the exec'ing task. Delivered on return to user mode,
		 * before the new image's first instruction. An exe the table cannot decide is stopped the
		 * same way as one needing approval: userspace judges it, then continues or kills it. */
		if (e->verdict == WRIT_KV_DENY) {
			bpf_send_signal(SIGKILL);
			kill_lineage(t, cgid, e->hdr.ppid);
			flags |= WRIT_F_KERNEL_DENY | WRIT_F_NEEDS_VERDICT;
		} else if (e->verdict == WRIT_KV_APPROVAL || e->verdict == WRIT_KV_USER) {
			bpf_send_signal(SIGSTOP);
			flags |= WRIT_F_KERNEL_STOP | WRIT_F_NEEDS_VERDICT;
		}
	}
	e->hdr.flags = flags;
	e->hdr.size = offsetof(struct writ_exec_event, args) + len;
	submit(e, e->hdr.size, WRIT_EV_EXEC, flags, t, 1);
	return 0;
}

SEC("tp_btf/sched_process_fork")
int BPF_PROG(handle_fork, struct task_struct *parent, struct task_struct *child)
{
	struct writ_task_info *t;
	union writ_scratch *s;
	__u64 cgid;

	/* Threads share the process: only a new thread group is a new process. */
	if (BPF_CORE_READ(child, pid) != BPF_CORE_READ(child, tgid))
		return 0;
	t = lookup_task(&cgid);
	if (!t)
		return 0;
	s = scratch();
	if (!s)
		return 0;
	fill_hdr(&s->fork.hdr, WRIT_EV_FORK, cgid, t, child);
	/* The child's real_parent may be a subreaper's choice later; at fork it is the parent. */
	s->fork.hdr.ppid = BPF_CORE_READ(parent, tgid);
	s->fork.hdr.start_time_ns = BPF_CORE_READ(child, start_boottime);
	s->fork.parent_tgid = BPF_CORE_READ(parent, tgid);
	s->fork._pad0 = 0;
	s->fork.parent_start_time_ns = BPF_CORE_READ(parent, group_leader, start_boottime);
	s->fork.hdr.size = sizeof(s->fork);
	submit(&s->fork, sizeof(s->fork), WRIT_EV_FORK, 0, t, 0);
	return 0;
}

/*
 * The tracepoint's group_dead argument is recent (6.18 has it; Debian 12's 6.1 passes the task only, and
 * its verifier refuses even a read of a second argument). The loader reads the tracepoint's prototype
 * from the kernel's BTF into cfg_exit_group_dead; a frozen rodata constant, so the verifier drops the
 * branch not taken (clang 14 has no CO-RE type-match to decide it in the object). Without the
 * argument, the same fact comes from the counter it is computed from: do_exit decrements signal->live
 * before this tracepoint, and the last thread takes it to zero. (Two threads of one process exiting at
 * once may both read zero there: the process then gets two exit records, never none.)
 */
SEC("tp_btf/sched_process_exit")
int handle_exit(__u64 *ctx)
{
	struct task_struct *p = (struct task_struct *)ctx[0];
	struct writ_task_info *t;
	union writ_scratch *s;
	__u64 cgid;
	__s32 code;

	/* One record per process: when its last thread exits. */
	if (cfg_exit_group_dead) {
		if (!(__u8)ctx[1])
			return 0;
	} else if (BPF_CORE_READ(p, signal, live.counter)) {
		return 0;
	}
	t = lookup_task(&cgid);
	if (!t)
		return 0;
	s = scratch();
	if (!s)
		return 0;
	fill_hdr(&s->exit.hdr, WRIT_EV_EXIT, cgid, t, p);
	if (BPF_CORE_READ(p, signal, flags) & 0x00000004 /* SIGNAL_GROUP_EXIT */)
		code = BPF_CORE_READ(p, signal, group_exit_code);
	else
		code = BPF_CORE_READ(p, exit_code);
	s->exit.exit_code = code;
	s->exit._pad0 = 0;
	s->exit.hdr.size = sizeof(s->exit);
	submit(&s->exit, sizeof(s->exit), WRIT_EV_EXIT, 0, t, 0);
	return 0;
}

/* ---- open ---------------------------------------------------------------------------------------- */

#include "writ_open.bpf.h"

SEC("tracepoint/syscalls/sys_exit_openat")
int exit_openat(struct trace_event_raw_sys_exit *ctx)
{
	return open_exit(ctx->ret, NR_OPENAT);
}

SEC("tracepoint/syscalls/sys_exit_openat2")
int exit_openat2(struct trace_event_raw_sys_exit *ctx)
{
	return open_exit(ctx->ret, NR_OPENAT2);
}

SEC("tracepoint/syscalls/sys_exit_open")
int exit_open(struct trace_event_raw_sys_exit *ctx)
{
	return open_exit(ctx->ret, NR_OPEN);
}

SEC("tracepoint/syscalls/sys_exit_creat")
int exit_creat(struct trace_event_raw_sys_exit *ctx)
{
	return open_exit(ctx->ret, NR_CREAT);
}

/* open_by_handle_at(2) opens a file by the handle name_to_handle_at(2) gave (CAP_DAC_READ_SEARCH: a root
 * task). No name passes through the call, so the opened file is all there is to judge: the same walk,
 * tables and kill at exit as the other opens. */
SEC("tracepoint/syscalls/sys_exit_open_by_handle_at")
int exit_open_by_handle_at(struct trace_event_raw_sys_exit *ctx)
{
	return open_exit(ctx->ret, NR_OPEN_BY_HANDLE_AT);
}

/* ---- DNS egress: the task's resolver traffic goes to writd's stub ----------------------------------- */

#include "writ_dns.bpf.h"

/* ---- connect ------------------------------------------------------------------------------------- */

SEC("tracepoint/syscalls/sys_enter_connect")
int enter_connect(struct trace_event_raw_sys_enter *ctx)
{
	struct connect_args a = {};
	__u64 cgid, id;
	__u16 family = 0;
	void *uaddr = (void *)ctx->args[1];

	if (!lookup_task(&cgid))
		return 0;
	if (bpf_probe_read_user(&family, sizeof(family), uaddr))
		return 0;
	if (family == AF_INET) {
		struct sockaddr_in sin = {};

		bpf_probe_read_user(&sin, sizeof(sin), uaddr);
		a.port = bpf_ntohs(sin.sin_port);
		__builtin_memcpy(a.addr, &sin.sin_addr.s_addr, 4);
	} else if (family == AF_INET6) {
		struct sockaddr_in6 sin6 = {};

		bpf_probe_read_user(&sin6, sizeof(sin6), uaddr);
		a.port = bpf_ntohs(sin6.sin6_port);
		__builtin_memcpy(a.addr, &sin6.sin6_addr, 16);
	} else {
		return 0; /* unix, netlink, ...: not network egress */
	}
	a.family = family;
	id = bpf_get_current_pid_tgid();
	bpf_map_update_elem(&connect_args_map, &id, &a, BPF_ANY);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_connect")
int exit_connect(struct trace_event_raw_sys_exit *ctx)
{
	return connect_exit(ctx->ret);
}

/*
 * cgroup/connect4|6 run inside connect(2) (and io_uring's connect, which the syscall tracepoints never see)
 * for every socket of the writ cgroup subtree. Returning 0 makes connect fail with EPERM before any packet
 * leaves. The verdict is handed to sys_exit_connect through connect_args_map; a connect with no syscall
 * record (io_uring, in-kernel callers) is reported from here.
 */
static __always_inline int cgroup_connect(struct bpf_sock_addr *ctx, __u16 family)
{
	struct writ_task_info *t;
	struct connect_args *a;
	__u8 addr[16] = {};
	__u64 cgid, id;
	__u16 port;
	__u32 verdict;
	int allow;

	t = lookup_task(&cgid);
	if (!t)
		return 1;
	port = sock_addr_dst(ctx, family, addr);
	id = bpf_get_current_pid_tgid();
	if (dns_redirect(ctx, family, addr, port)) {
		/* A DNS query, reported by the stub as a dns event: not a connect to report here. */
		bpf_map_delete_elem(&connect_args_map, &id);
		bpf_map_delete_elem(&lsm_connect_map, &id);
		return 1;
	}
	verdict = net_verdict(t, family, addr, port);
	allow = !((t->flags & WRIT_TASK_ENFORCE) && (verdict == WRIT_KV_DENY || verdict == WRIT_KV_APPROVAL));

	a = bpf_map_lookup_elem(&connect_args_map, &id);
	if (a)
		a->verdict = verdict;
	else if (!lsm_connect_reported(family, port, addr))
		emit_connect(t, cgid, family, port, addr, allow ? 0 : -EPERM, verdict, WRIT_F_CGROUP_HOOK);
	return allow;
}

SEC("cgroup/connect4")
int cg_connect4(struct bpf_sock_addr *ctx)
{
	return cgroup_connect(ctx, AF_INET);
}

SEC("cgroup/connect6")
int cg_connect6(struct bpf_sock_addr *ctx)
{
	return cgroup_connect(ctx, AF_INET6);
}

/* ---- datagram sends and unix sockets --------------------------------------------------------------- */

#include "writ_net.bpf.h"

/* ---- renames, links and symlinks ------------------------------------------------------------------ */

#include "writ_link.bpf.h"

/* ---- self-protection (bpf, io_uring, ptrace, signals to writd) ------------------------------------ */

#include "writ_self.bpf.h"
