// SPDX-License-Identifier: GPL-2.0
/*
 * writ's top enforcement rung: BPF-LSM hooks that refuse a denied exec, open or connect with -EPERM before
 * it happens, from the same per-task tables as the tracepoint rungs (maps reused from the main object by
 * fd). A separate object because many kernels refuse LSM programs (this project's CI kernel answers
 * EPERM at load): writd probes by loading it and falls back to the signal/cgroup rungs when it cannot.
 *
 * Only enforce-mode tasks are refused here. The syscall then fails with EPERM, and the record says so
 * (WRIT_F_KERNEL_DENY | WRIT_F_LSM, outcome `prevented`):
 *  - exec: the tracepoint rung sees no exec (it never happened): this hook reports it;
 *  - open: this hook reports it, with the path it resolved (the syscall-exit program would only have
 *    the string passed, unresolved), and marks the thread so that the exit program does not report it
 *    twice (lsm_refused_map);
 *  - connect: the verdict goes to the syscall-exit program through connect_args_map, as the cgroup
 *    hook's does (this hook runs first and the cgroup hook never sees a refused connect); a connect
 *    without a syscall (io_uring) is reported from here. A unix connect is judged by the task's unix
 *    table from the kernel's copy of the name, before the socket is looked up, its verdict handed to
 *    the unix syscall-exit program through unix_args_map (bpf/writ_net.bpf.h);
 *  - a datagram sent to a unix name without connect(): judged and reported like cgroup/sendmsg_unix
 *    (rate-limited per name), where that cgroup hook is not attached (Linux < 6.7);
 *  - self-protection (bpf/writ_self.bpf.h), for every task process whether or not `writ run`'s seccomp
 *    filter is on it: a signal to writd or its guardian, ptrace-attach access to any process (ptrace,
 *    process_vm_*, pidfd_getfd, /proc/<pid>/mem), any access to writd's or the guardian's, and bpf().
 *    The syscall's exit program reports the refusal (lsm_self_map).
 * A task whose responses include kill (WRIT_TASK_KILL_LINEAGE) has a refused exec's or open's actor
 * (and its parent, where the kfuncs exist) killed here as well, as the tracepoint rung does: the
 * agent's shell must not run its next command while userspace kills the rest of the task.
 */
#include "writ_common.bpf.h"
#define WRIT_NET_NO_PROGRAMS
#include "writ_net.bpf.h"
#define WRIT_SELF_NO_PROGRAMS
#include "writ_self.bpf.h"

char LICENSE[] SEC("license") = "GPL";

/* Set by the loader: the main object's cgroup/sendmsg_unix is attached (6.7+) and judges datagrams to unix
 * names itself. */
const volatile __u32 cfg_unix_cgroup = 0;

static __always_inline void lsm_kill(const struct writ_task_info *t, __u64 cgid, __u32 ppid)
{
	if (!(t->flags & WRIT_TASK_KILL_LINEAGE))
		return;
	bpf_send_signal(SIGKILL);
	kill_lineage(t, cgid, ppid);
}

SEC("lsm/bprm_check_security")
int BPF_PROG(lsm_exec, struct linux_binprm *bprm, int ret)
{
	struct writ_task_info *t;
	union writ_scratch *s;
	struct writ_exec_event *e;
	struct path fpath;
	__u32 flags = 0, verdict = WRIT_KV_NONE, *v;
	__u64 cgid;
	long n;

	if (ret)
		return ret;
	t = lookup_task(&cgid);
	if (!t || !(t->flags & WRIT_TASK_ENFORCE))
		return 0;
	s = scratch();
	if (!s)
		return 0;
	e = &s->exec;
	bpf_core_read(&fpath, sizeof(fpath), &bprm->file->f_path);
	e->path_len = walk_path(&fpath, 1, &flags);
	struct hash_ctx hc = {.is_exec = 1, .slot = t->slot};
	e->path_hash = path_hash(&hc, e->path_len);
	struct writ_path_key key = {.slot = t->slot, .hash = e->path_hash};
	/* Only an explicit exec.deny entry is refused here. This hook runs once per binfmt round: for a
	 * shebang script first with bprm->file = the script, then with its interpreter, and deny rules judge
	 * both (docs/policy.md, Scripts). The allow list judges only the image that finally runs, which the
	 * exec tracepoint kills before its first instruction when the table does not list it; approvals and
	 * undecidable execs are stopped there too. */
	v = bpf_map_lookup_elem(&exec_map, &key);
	if (v)
		verdict = *v;
	if (verdict != WRIT_KV_DENY)
		return 0;

	fill_hdr(&e->hdr, WRIT_EV_EXEC, cgid, t, bpf_get_current_task_btf());
	n = bpf_probe_read_kernel_str(e->filename, sizeof(e->filename), BPF_CORE_READ(bprm, filename));
	e->filename_len = n > 0 ? n : 0;
	e->args_len = 0;
	e->verdict = verdict;
	e->hdr.flags = flags | WRIT_F_KERNEL_DENY | WRIT_F_LSM | WRIT_F_NEEDS_VERDICT;
	e->hdr.size = offsetof(struct writ_exec_event, args);
	submit(e, e->hdr.size, WRIT_EV_EXEC, e->hdr.flags, t, 0); /* the LSM hook denies in place */
	lsm_kill(t, cgid, e->hdr.ppid);
	return -EPERM;
}

SEC("lsm/file_open")
int BPF_PROG(lsm_open, struct file *file, int ret)
{
	struct writ_task_info *t;
	union writ_scratch *s;
	struct writ_open_event *e;
	struct task_struct *task;
	struct path fpath;
	__u32 flags = 0, len, one = 1;
	__u64 cgid, ino, id;

	if (ret)
		return ret;
	t = lookup_task(&cgid);
	if (!t || (t->flags & (WRIT_TASK_ENFORCE | WRIT_TASK_FILE_TABLE)) !=
			  (WRIT_TASK_ENFORCE | WRIT_TASK_FILE_TABLE))
		return 0;
	s = scratch();
	if (!s)
		return 0;
	bpf_core_read(&fpath, sizeof(fpath), &file->f_path);
	len = walk_path(&fpath, 0, &flags);
	struct hash_ctx hc = {.is_exec = 0,
			      .slot = t->slot,
			      .check_file = 1,
			      .check_comp = !!(t->flags & WRIT_TASK_FILE_COMP)};
	path_hash(&hc, len);
	ino = BPF_CORE_READ(file, f_inode, i_ino);
	e = &s->open;
	e->dev = BPF_CORE_READ(file, f_inode, i_sb, s_dev);
	if (!hc.hit) {
		/* A hard link of a denied file: its identity (see open_exit in writ.bpf.c). */
		struct writ_path_key key = {
			.slot = t->slot, .kind = WRIT_PK_INODE, .hash = writ_file_id_hash(e->dev, ino)};

		hc.hit = ino && bpf_map_lookup_elem(&file_map, &key);
	}
	if (!hc.hit)
		return 0;

	/* Refused: the record the syscall-exit program would have made, with the resolved path. */
	task = bpf_get_current_task_btf();
	fill_hdr_current(&e->hdr, WRIT_EV_OPEN, cgid, t, task);
	e->result = -EPERM;
	e->open_flags = BPF_CORE_READ(file, f_flags); /* O_CREAT/O_TRUNC are cleared only after this hook */
	e->syscall_nr = ((struct pt_regs *)bpf_task_pt_regs(task))->orig_ax;
	e->path_len = len;
	e->ino = ino;
	e->_pad0 = 0;
	e->hdr.flags = flags | WRIT_F_KERNEL_DENY | WRIT_F_LSM | WRIT_F_NEEDS_VERDICT;
	e->hdr.size = offsetof(struct writ_open_event, path) + (len & (WRIT_PATH_MAX - 1));
	if (len >= WRIT_PATH_MAX)
		e->hdr.size = offsetof(struct writ_open_event, path) + WRIT_PATH_MAX;
	id = bpf_get_current_pid_tgid();
	bpf_map_update_elem(&lsm_refused_map, &id, &one, BPF_ANY);
	submit(e, e->hdr.size, WRIT_EV_OPEN, e->hdr.flags, t, 0); /* refused in place */
	lsm_kill(t, cgid, e->hdr.ppid);
	return -EPERM;
}

/* The unix name of a sockaddr_un of addrlen bytes (the kernel's copy) into scratch; its length. */
static __always_inline __u32 lsm_unix_name(const void *sun, int addrlen)
{
	__u32 len = addrlen > 2 ? addrlen - 2 : 0;

	if (len > 108)
		len = 108;
	unix_put_name((const char *)sun + 2, len, 1);
	return len;
}

/* A unix connect of an enforce-mode task: a denied name refused here (EPERM, before the lookup, so a
 * socket that does not exist is refused too); the verdict from the kernel's copy of the name goes to the
 * syscall-exit program, which reports it with the socket reached (bpf/writ_net.bpf.h). */
static __always_inline int lsm_unix_connect(const struct writ_task_info *t, __u64 cgid,
					    struct sockaddr *address, int addrlen)
{
	struct unix_args *a;
	__u32 verdict, len;
	__u64 h, id;

	len = lsm_unix_name(address, addrlen);
	verdict = unix_verdict(t, len, &h);
	id = bpf_get_current_pid_tgid();
	a = bpf_map_lookup_elem(&unix_args_map, &id);
	if (a) {
		union writ_scratch *s = scratch();

		a->verdict = verdict;
		a->lsm = 1;
		a->name_len = len;
		if (s)
			bpf_probe_read_kernel(a->name, sizeof(a->name), s->unix_conn.name);
	} else if (verdict == WRIT_KV_DENY) {
		/* No syscall record will follow (io_uring's connect): report the refusal from here. */
		emit_unix(t, cgid, -EPERM, verdict, WRIT_F_LSM, NULL, 0, 0);
	}
	return verdict == WRIT_KV_DENY ? -EPERM : 0;
}

SEC("lsm/socket_connect")
int BPF_PROG(lsm_connect, struct socket *sock, struct sockaddr *address, int addrlen, int ret)
{
	struct writ_task_info *t;
	struct connect_args *a;
	__u8 addr[16] = {};
	__u16 family, port;
	__u32 verdict;
	__u64 cgid, id;

	if (ret)
		return ret;
	t = lookup_task(&cgid);
	if (!t || !(t->flags & WRIT_TASK_ENFORCE))
		return 0;
	family = BPF_CORE_READ(address, sa_family);
	if (family == AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)address;

		port = bpf_ntohs(BPF_CORE_READ(sin, sin_port));
		bpf_core_read(addr, 4, &sin->sin_addr.s_addr);
	} else if (family == AF_INET6) {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)address;

		port = bpf_ntohs(BPF_CORE_READ(sin6, sin6_port));
		bpf_core_read(addr, 16, &sin6->sin6_addr);
	} else if (family == AF_UNIX) {
		return lsm_unix_connect(t, cgid, address, addrlen);
	} else {
		return 0;
	}
	verdict = net_verdict(t, family, addr, port);
	if (verdict != WRIT_KV_DENY && verdict != WRIT_KV_APPROVAL)
		return 0;
	id = bpf_get_current_pid_tgid();
	a = bpf_map_lookup_elem(&connect_args_map, &id);
	if (a) {
		a->verdict = verdict;
		a->flags = WRIT_F_LSM;
	} else {
		emit_connect(t, cgid, family, port, addr, -EPERM, verdict, WRIT_F_LSM);
	}
	return -EPERM;
}

/* A datagram to a unix name without connect() (sendto/sendmsg with a name; msg_name is the kernel's copy
 * here): what cgroup/sendmsg_unix does on 6.7+, for kernels without it. Tasks in every mode: a monitor-mode
 * task's would-deny is reported too. Only what is not plainly allowed is reported, rate-limited per name. */
SEC("lsm/socket_sendmsg")
int BPF_PROG(lsm_sendmsg, struct socket *sock, struct msghdr *msg, int size, int ret)
{
	struct writ_task_info *t;
	__u64 cgid;
	void *name;
	int namelen;

	if (ret || cfg_unix_cgroup)
		return ret;
	t = lookup_task(&cgid);
	if (!t || BPF_CORE_READ(sock, sk, __sk_common.skc_family) != AF_UNIX)
		return 0;
	name = BPF_CORE_READ(msg, msg_name);
	namelen = BPF_CORE_READ(msg, msg_namelen);
	if (!name || namelen <= 2)
		return 0; /* a connected socket: its peer was judged at connect */
	return unix_send(t, cgid, lsm_unix_name(name, namelen), WRIT_F_LSM) ? 0 : -EPERM;
}

/* ---- self-protection ----------------------------------------------------------------------------- */

#define PTRACE_MODE_ATTACH 0x02

/* Refuses the current call and leaves the mark its syscall-exit program reports (bpf/writ_self.bpf.h). */
static __always_inline int lsm_self_refuse(__u32 kind, __u32 tpid)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct lsm_self m = {.kind = kind, .tpid = tpid};
	__u64 id = bpf_get_current_pid_tgid();

	m.nr = ((struct pt_regs *)bpf_task_pt_regs(task))->orig_ax;
	bpf_map_update_elem(&lsm_self_map, &id, &m, BPF_ANY);
	return -EPERM;
}

/* A task process's call aimed at process `tgid`: refused when that is writd or its guardian, or when
 * `any` (attach-mode access) and it is any other process. */
static __always_inline int lsm_self_target(__u32 tgid, int any)
{
	__u32 kind;
	__u64 cgid;

	if (!lookup_task(&cgid))
		return 0;
	kind = self_pid_kind(tgid, 0);
	if (!kind) {
		if (!any)
			return 0;
		kind = WRIT_SELF_OTHER;
	}
	return lsm_self_refuse(kind, tgid);
}

/* Every signal a task process sends to writd or its guardian, however it is spelled (kill, tkill, tgkill,
 * rt_*sigqueueinfo, pidfd_send_signal, a process-group or kill(-1) signal that would reach them: the kernel
 * asks once per receiving process), to whichever of their threads. Signal 0 too: it is a liveness probe of
 * writd. */
SEC("lsm/task_kill")
int BPF_PROG(lsm_task_kill, struct task_struct *p, struct kernel_siginfo *info, int sig,
	     const struct cred *cred, int ret)
{
	return ret ? ret : lsm_self_target(p->tgid, 0);
}

/* ptrace_may_access from a task process: attach-mode access to any process (ptrace attach and seize,
 * process_vm_readv/writev, pidfd_getfd, /proc/<pid>/mem: reading or writing another process's memory), and
 * any access at all to writd's or the guardian's (their /proc/<pid>/environ, maps, fds). A process's access
 * to its own thread group never reaches this hook. */
SEC("lsm/ptrace_access_check")
int BPF_PROG(lsm_ptrace_access, struct task_struct *child, unsigned int mode, int ret)
{
	return ret ? ret : lsm_self_target(child->tgid, mode & PTRACE_MODE_ATTACH);
}

/* bpf() from a task process: it could detach, override or read writ's programs and maps. */
SEC("lsm/bpf")
int BPF_PROG(lsm_bpf, int cmd, union bpf_attr *attr, unsigned int size, int ret)
{
	__u64 cgid;

	if (ret)
		return ret;
	if (!lookup_task(&cgid))
		return 0;
	return lsm_self_refuse(WRIT_SELF_NONE, 0);
}
