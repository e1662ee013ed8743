/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Self-protection hooks, included at the end of writ.bpf.c (their own section: the other hook families
 * do not depend on them).
 *
 * What they watch: the syscalls a task could use against writd, its guardian or writ's enforcement —
 * the kill family and pidfd_open aimed at writd/guardian (any of their threads, their process groups,
 * kill(0) from inside writd's group, setpgid into it), signal ownership handed to them (fcntl F_SETOWN and
 * F_SETOWN_EX, ioctl FIOSETOWN and SIOCSPGRP: the kernel then signals the owner, SIGKILL included with
 * F_SETSIG, when the file becomes ready), ptrace attach, process_vm_readv/writev and pidfd_getfd (reaching
 * into another process), bpf() (detaching or overriding writ's programs), io_uring (its OPENAT never passes
 * the open tracepoints), and the kernel itself: init_module, finit_module, kexec_load, kexec_file_load.
 *
 * Two paths, told apart by whether sys_enter ran:
 *  - A process started by `writ run` carries a seccomp filter (src/cli/self_filter.cc) that refuses
 *    these with EPERM. seccomp runs before the sys_enter tracepoint, so a refused call never reaches
 *    it; sys_exit still fires with ret = -EPERM (probed on 6.18). The record says WRIT_F_SECCOMP.
 *  - A process without the filter (started with --no-seccomp, or by a launcher that predates it)
 *    reaches sys_enter: the same classification SIGKILLs it there (WRIT_TASK_SELF_KILL: enforce mode). A
 * tracepoint cannot refuse the syscall, so it still runs (the record at sys_exit has its result), but the
 * caller never returns to user mode to use what it got (an attached tracee, a BPF fd, a ring). Syscall
 * arguments at sys_exit are read from the task's saved user registers (x86_64: di, si), which these syscalls
 * do not change: the refused path has no sys_enter to save them.
 *
 * Where BPF-LSM loads, none of these programs is attached: writ_lsm.bpf.c refuses and reports in the
 * kernel, whatever the caller's filter, a signal to writd or its guardian (task_kill: the whole kill family,
 * pidfd_send_signal, a process-group kill that would reach them, any thread of theirs), ptrace attach,
 * process_vm_* and pidfd_getfd (ptrace_access_check), bpf(), signal ownership aimed at them (file_fcntl,
 * file_ioctl, task_setpgid) and modules and kexec images (kernel_read_file, kernel_load_data). It includes
 * this file with WRIT_SELF_NO_PROGRAMS for the maps and helpers (self_classify).
 */
#ifndef WRIT_SELF_BPF_H
#define WRIT_SELF_BPF_H

/* x86_64 syscall numbers (the records carry them; the decoder names them). */
#define NR_KILL 62
#define NR_PTRACE 101
#define NR_RT_SIGQUEUEINFO 129
#define NR_TKILL 200
#define NR_TGKILL 234
#define NR_RT_TGSIGQUEUEINFO 297
#define NR_PROCESS_VM_READV 310
#define NR_PROCESS_VM_WRITEV 311
#define NR_BPF 321
#define NR_IO_URING_SETUP 425
#define NR_IO_URING_ENTER 426
#define NR_IO_URING_REGISTER 427
#define NR_PIDFD_OPEN 434
#define NR_PIDFD_GETFD 438
#define NR_IOCTL 16
#define NR_FCNTL 72
#define NR_SETPGID 109
#define NR_INIT_MODULE 175
#define NR_KEXEC_LOAD 246
#define NR_KEXEC_FILE_LOAD 320
#define NR_FINIT_MODULE 313
#define PTRACE_ATTACH 16
#define PTRACE_SEIZE 0x4206
#define F_SETOWN 8
#define F_SETOWN_EX 15
#define F_OWNER_TID 0
#define F_OWNER_PID 1
#define F_OWNER_PGRP 2
#define FIOSETOWN 0x8901
#define SIOCSPGRP 0x8902

/* writd's and the guardian's tgids (and writd's process group), written by writd at start. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, WRIT_SELF_PIDS);
	__type(key, __u32);
	__type(value, __u32);
} self_pids_map SEC(".maps");

/* sys_enter -> sys_exit: 1 = the call reached sys_enter (no seccomp refusal), 2 = and was SIGKILLed. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u64);
	__type(value, __u32);
} self_enter_map SEC(".maps");

/* Which protected process a tgid (or, for a group kill, a process group id) is. */
static __always_inline __u32 self_pid_kind(__u32 id, int group)
{
	__u32 k;

	if (!id)
		return WRIT_SELF_NONE;
	for (k = 0; k < WRIT_SELF_PIDS; k++) {
		__u32 key = k;
		__u32 *v = bpf_map_lookup_elem(&self_pids_map, &key);

		if (!v || *v != id)
			continue;
		if (k == WRIT_SELF_PID_GUARDIAN)
			return WRIT_SELF_GUARDIAN;
		if (k == WRIT_SELF_PID_WRITD || (group && k == WRIT_SELF_PGID_WRITD))
			return WRIT_SELF_WRITD;
	}
	return WRIT_SELF_NONE;
}

/* Thread id -> its process: kill(2), rt_sigqueueinfo(2), tkill(2) and ptrace(2) all accept any thread
 * of a process, and a signal to one thread of writd (SIGKILL) takes all of it. */
static __always_inline __u32 self_tgid_of(__s32 pid)
{
	struct task_struct *p;
	__u32 tgid;

	if (pid <= 0)
		return 0;
	if (!bpf_ksym_exists(bpf_task_from_pid))
		return pid;
	p = bpf_task_from_pid(pid);
	if (!p)
		return 0;
	tgid = BPF_CORE_READ(p, tgid);
	bpf_task_release(p);
	return tgid;
}

/* The caller's process group (in the initial pid namespace, as writd reads its own). */
static __always_inline __u32 self_own_pgid(void)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct pid *pg = task->signal->pids[PIDTYPE_PGID];

	return pg ? BPF_CORE_READ(pg, numbers[0].nr) : 0;
}

/* A signal owner (F_SETOWN's argument, FIOSETOWN's int: a pid, or minus a process group). */
static __always_inline int self_owner(__s32 owner, __u32 *tpid)
{
	__u32 k;

	if (owner < 0) {
		*tpid = -owner;
		k = self_pid_kind(*tpid, 1);
	} else {
		*tpid = self_tgid_of(owner);
		k = self_pid_kind(*tpid, 0);
	}
	return k ? k : -1;
}

/* The target of a watched syscall, or -1 when this call is of no concern (a kill of a sibling). */
static __always_inline int self_classify(__u32 nr, __s64 a0, __s64 a1, __s64 a2, __u32 *tpid)
{
	/* The kernel reads pid arguments as int: compare the low 32 bits, whatever the upper ones hold. */
	__s32 p0 = (__s32)a0, p1 = (__s32)a1;
	__u32 k;

	*tpid = 0;
	switch (nr) {
	case NR_BPF:
	case NR_IO_URING_SETUP:
	case NR_IO_URING_ENTER:
	case NR_IO_URING_REGISTER:
	case NR_INIT_MODULE:
	case NR_FINIT_MODULE:
	case NR_KEXEC_LOAD:
	case NR_KEXEC_FILE_LOAD:
		return WRIT_SELF_NONE;
	case NR_FCNTL:
		if ((__u32)a1 == F_SETOWN)
			return self_owner((__s32)a2, tpid);
		if ((__u32)a1 == F_SETOWN_EX) {
			/* Its argument points at the owner: refused outright by the filter (seccomp cannot
			 * read it), so every call is reported, aimed at whom it names. */
			struct {
				__s32 type;
				__s32 pid;
			} own = {};

			bpf_probe_read_user(&own, sizeof(own), (void *)a2);
			if (own.type == F_OWNER_PGRP)
				own.pid = -own.pid;
			k = self_owner(own.pid, tpid);
			return k >= 0 ? k : (*tpid ? WRIT_SELF_OTHER : WRIT_SELF_NONE);
		}
		return -1;
	case NR_IOCTL:
		if ((__u32)a1 == FIOSETOWN || (__u32)a1 == SIOCSPGRP) {
			/* The same through ioctl: an int owner behind a pointer, refused outright. */
			__s32 owner = 0;

			bpf_probe_read_user(&owner, sizeof(owner), (void *)a2);
			k = self_owner(owner, tpid);
			return k >= 0 ? k : (*tpid ? WRIT_SELF_OTHER : WRIT_SELF_NONE);
		}
		return -1;
	case NR_PIDFD_GETFD:
		return WRIT_SELF_OTHER;
	case NR_PROCESS_VM_READV:
	case NR_PROCESS_VM_WRITEV:
		*tpid = self_tgid_of(p0);
		k = self_pid_kind(*tpid, 0);
		return k ? k : WRIT_SELF_OTHER;
	case NR_PTRACE:
		*tpid = self_tgid_of(p1);
		k = self_pid_kind(*tpid, 0);
		if (k)
			return k;
		return (a0 == PTRACE_ATTACH || a0 == PTRACE_SEIZE) ? WRIT_SELF_OTHER : -1;
	case NR_SETPGID:
		/* Joining a protected process group: kill(0) would then signal writd. */
		*tpid = p1 > 0 ? p1 : 0;
		k = self_pid_kind(*tpid, 1);
		return k ? k : -1;
	case NR_KILL:
		if (p0 == -1)
			return WRIT_SELF_ALL;
		if (p0 == 0) {
			/* kill(0, ...): the caller's own process group, which may hold writd. */
			*tpid = self_own_pgid();
			k = self_pid_kind(*tpid, 1);
			return k ? k : -1;
		}
		if (p0 < -1) {
			*tpid = -p0;
			k = self_pid_kind(*tpid, 1);
			return k ? k : -1;
		}
		/* fallthrough: a positive pid names a process (or any of its threads) */
	case NR_TKILL:
	case NR_RT_SIGQUEUEINFO:
	case NR_PIDFD_OPEN:
		*tpid = self_tgid_of(p0);
		k = self_pid_kind(*tpid, 0);
		return k ? k : -1;
	case NR_TGKILL:
	case NR_RT_TGSIGQUEUEINFO:
		/* The kernel checks that the thread belongs to this tgid. */
		*tpid = p0 > 0 ? p0 : 0;
		k = self_pid_kind(*tpid, 0);
		return k ? k : -1;
	}
	return -1;
}

/* A self record, its args set by the caller: the rest filled, submitted (`judged`: see submit). */
static __always_inline void self_submit(struct writ_self_event *e, const struct writ_task_info *t, __u64 cgid,
					struct task_struct *task, __u32 nr, long ret, __u32 kind, __u32 tpid,
					__u32 flags, const int judged)
{
	fill_hdr_current(&e->hdr, WRIT_EV_SELF, cgid, t, task);
	e->hdr.flags = flags;
	e->hdr.size = sizeof(*e);
	e->syscall_nr = nr;
	e->result = ret;
	e->target = kind;
	e->target_pid = tpid;
	submit(e, sizeof(*e), WRIT_EV_SELF, flags, t, judged);
}

static __always_inline int self_enter(__u32 nr, __s64 a0, __s64 a1, __s64 a2)
{
	struct writ_task_info *t;
	__u64 cgid, id;
	__u32 tpid, v = 1;

	t = lookup_task(&cgid);
	if (!t)
		return 0;
	if (self_classify(nr, a0, a1, a2, &tpid) < 0)
		return 0;
	/* No seccomp refusal happened (or this call would not be here): the syscall will run. Kill the
	 * caller now so that it never returns to user mode with the result. */
	if (t->flags & WRIT_TASK_SELF_KILL) {
		bpf_send_signal(SIGKILL);
		v = 2;
	}
	id = bpf_get_current_pid_tgid();
	bpf_map_update_elem(&self_enter_map, &id, &v, BPF_ANY);
	return 0;
}

static __always_inline int self_exit(__u32 nr, long ret)
{
	struct writ_task_info *t;
	struct writ_self_event e = {};
	struct task_struct *task;
	struct pt_regs *regs;
	__u64 cgid, id = bpf_get_current_pid_tgid();
	__u32 *entered, ent = 0, tpid = 0, flags = WRIT_F_NEEDS_VERDICT;
	int k;

	t = lookup_task(&cgid);
	if (!t)
		return 0;
	entered = bpf_map_lookup_elem(&self_enter_map, &id);
	if (entered) {
		ent = *entered;
		bpf_map_delete_elem(&self_enter_map, &id);
	}
	task = bpf_get_current_task_btf();
	regs = (struct pt_regs *)bpf_task_pt_regs(task);
	e.args[0] = BPF_CORE_READ(regs, di);
	e.args[1] = BPF_CORE_READ(regs, si);
	e.args[2] = BPF_CORE_READ(regs, dx);
	k = self_classify(nr, e.args[0], e.args[1], e.args[2], &tpid);
	if (k < 0) {
		if (!ent)
			return 0; /* an ordinary kill, ptrace, ... */
		k = WRIT_SELF_NONE;
	}
	if (!ent && ret == -EPERM)
		flags |= WRIT_F_SECCOMP;
	if (ent == 2)
		flags |= WRIT_F_KERNEL_DENY;
	self_submit(&e, t, cgid, task, nr, ret, k, tpid, flags, 1);
	return 0;
}

#ifndef WRIT_SELF_NO_PROGRAMS /* writ_lsm.bpf.c takes the maps and helpers only */
#define WRIT_SELF_HOOK(name, nr)                                                 \
	SEC("tracepoint/syscalls/sys_enter_" #name)                              \
	int self_enter_##name(struct trace_event_raw_sys_enter *ctx)             \
	{                                                                        \
		return self_enter(nr, ctx->args[0], ctx->args[1], ctx->args[2]); \
	}                                                                        \
	SEC("tracepoint/syscalls/sys_exit_" #name)                               \
	int self_exit_##name(struct trace_event_raw_sys_exit *ctx)               \
	{                                                                        \
		return self_exit(nr, ctx->ret);                                  \
	}

WRIT_SELF_HOOK(kill, NR_KILL)
WRIT_SELF_HOOK(tkill, NR_TKILL)
WRIT_SELF_HOOK(tgkill, NR_TGKILL)
WRIT_SELF_HOOK(rt_sigqueueinfo, NR_RT_SIGQUEUEINFO)
WRIT_SELF_HOOK(rt_tgsigqueueinfo, NR_RT_TGSIGQUEUEINFO)
WRIT_SELF_HOOK(pidfd_open, NR_PIDFD_OPEN)
WRIT_SELF_HOOK(pidfd_getfd, NR_PIDFD_GETFD)
WRIT_SELF_HOOK(ptrace, NR_PTRACE)
WRIT_SELF_HOOK(process_vm_readv, NR_PROCESS_VM_READV)
WRIT_SELF_HOOK(process_vm_writev, NR_PROCESS_VM_WRITEV)
WRIT_SELF_HOOK(bpf, NR_BPF)
WRIT_SELF_HOOK(io_uring_setup, NR_IO_URING_SETUP)
WRIT_SELF_HOOK(io_uring_enter, NR_IO_URING_ENTER)
WRIT_SELF_HOOK(io_uring_register, NR_IO_URING_REGISTER)
WRIT_SELF_HOOK(fcntl, NR_FCNTL)
WRIT_SELF_HOOK(setpgid, NR_SETPGID)
WRIT_SELF_HOOK(ioctl, NR_IOCTL)
WRIT_SELF_HOOK(init_module, NR_INIT_MODULE)
WRIT_SELF_HOOK(finit_module, NR_FINIT_MODULE)
WRIT_SELF_HOOK(kexec_load, NR_KEXEC_LOAD)
WRIT_SELF_HOOK(kexec_file_load, NR_KEXEC_FILE_LOAD)
#endif

#endif /* WRIT_SELF_BPF_H */
