// SPDX-License-Identifier: GPL-2.0
/*
 * writ kernel side: attribute exec, fork, exit, open and connect of task processes, decide in the kernel
 * where compiled tables can, and stream fixed-layout records to userspace.
 *
 * Every program starts with the same filter: is the current task's cgroup (its ancestor at the task level)
 * a registered task? If not, return after one hash lookup: processes outside any task pay ~nothing.
 *
 * One compilation unit: the hook families share maps (task map, scratch, ring buffer), and BPF static
 * linking of several objects would need every shared map declared extern in each. The families are kept
 * apart by section below.
 */
#include "vmlinux.h"

#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "writ/abi/events.h"

char LICENSE[] SEC("license") = "GPL";

#define EPERM 1
#define SIGKILL 9
#define SIGSTOP 19
#define AF_INET 2
#define AF_INET6 10
#define O_ACCMODE 3
#define O_WRONLY 1
#define O_CREAT 0100
#define O_TRUNC 01000

/* Load-time configuration (rodata), set by the loader between open and load. */
const volatile __u32 cfg_task_level = 0;         /* cgroup level of task cgroups; 0 = use own cgroup */
const volatile __u64 cfg_wakeup_bytes = 1 << 20; /* force a wakeup when this much data is pending */

/* Ring buffer; its size is set by the loader (bpf_map__set_max_entries) before load. */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4 << 20);
} events_map SEC(".maps");

/* cgroup id of a task cgroup -> task. Written by userspace before the task's first process joins. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, WRIT_MAX_TASKS);
	__type(key, __u64);
	__type(value, struct writ_task_info);
} task_map SEC(".maps");

/* counters_map[kind * WRIT_CNT_MAX + counter], per CPU: emitted and dropped records by kind. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, WRIT_EV_KIND_MAX * WRIT_CNT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} counters_map SEC(".maps");

/* Records are built in a per-CPU scratch buffer (too large for the 512-byte stack), then copied into the
 * ring buffer with bpf_ringbuf_output at their actual size. The slack absorbs the verifier's view of a
 * masked write at the end of a region. */
union writ_scratch {
	struct writ_exec_event exec;
	struct writ_open_event open;
	struct writ_connect_event connect;
	struct writ_fork_event fork;
	struct writ_exit_event exit;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, union writ_scratch);
} scratch_map SEC(".maps");

/* Syscall arguments saved at sys_enter for sys_exit, keyed by pid_tgid (one syscall in flight per thread). */
struct open_args {
	__u64 filename; /* user pointer */
	__u32 flags;
	__u32 nr;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, struct open_args);
} open_args_map SEC(".maps");

struct connect_args {
	__u16 family;
	__u16 port;
	__u32 verdict; /* set by the cgroup hook during the syscall */
	__u8 addr[16];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, struct connect_args);
} connect_args_map SEC(".maps");

/* In-kernel decision tables, filled per task by userspace from the compiled intent. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, struct writ_path_key);
	__type(value, __u32); /* enum writ_kernel_verdict */
} exec_map SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, struct writ_path_key);
	__type(value, __u32); /* WRIT_KV_DENY for exact paths and for directory prefixes */
} file_map SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 16384);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct writ_net4_key);
	__type(value, struct writ_net_value);
} net4_map SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 16384);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct writ_net6_key);
	__type(value, struct writ_net_value);
} net6_map SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, struct writ_grant_key);
	__type(value, __u32);
} grant_map SEC(".maps");

/* Kernel functions (6.13+); weak, so the object still loads where they are missing. */
extern int bpf_send_signal_task(struct task_struct *task, int sig, enum pid_type type, __u64 value) __ksym __weak;
extern struct task_struct *bpf_task_from_pid(__s32 pid) __ksym __weak;
extern void bpf_task_release(struct task_struct *p) __ksym __weak;
#ifndef bpf_ksym_exists
#define bpf_ksym_exists(sym) (!!(sym)) /* libbpf 1.1 predates the helper macro */
#endif

/* ---- common helpers ------------------------------------------------------------------------------ */

static __always_inline struct writ_task_info *lookup_task(__u64 *cgid)
{
	__u64 id = cfg_task_level ? bpf_get_current_ancestor_cgroup_id(cfg_task_level)
				  : bpf_get_current_cgroup_id();
	*cgid = id;
	return bpf_map_lookup_elem(&task_map, &id);
}

static __always_inline void count(__u32 kind, __u32 which)
{
	__u32 key = kind * WRIT_CNT_MAX + which;
	__u64 *v = bpf_map_lookup_elem(&counters_map, &key);
	if (v)
		*v += 1; /* per-CPU slot: no atomics needed */
}

static __always_inline union writ_scratch *scratch(void)
{
	__u32 zero = 0;
	return bpf_map_lookup_elem(&scratch_map, &zero);
}

static __always_inline void fill_hdr(struct writ_event_hdr *h, __u16 kind, __u64 cgid,
				     const struct writ_task_info *t, struct task_struct *task)
{
	__u64 uid_gid = bpf_get_current_uid_gid();

	h->abi_version = WRIT_ABI_VERSION;
	h->kind = kind;
	h->ktime_ns = bpf_ktime_get_boot_ns();
	h->cgroup_id = cgid;
	h->task_slot = t->slot;
	h->pid = BPF_CORE_READ(task, pid);
	h->tgid = BPF_CORE_READ(task, tgid);
	h->ppid = BPF_CORE_READ(task, real_parent, tgid);
	h->start_time_ns = BPF_CORE_READ(task, group_leader, start_boottime);
	h->uid = (__u32)uid_gid;
	h->gid = (__u32)(uid_gid >> 32);
	h->flags = 0;
	h->_pad0 = 0;
	bpf_get_current_comm(h->comm, sizeof(h->comm));
}

/* Submit a record built in scratch. Telemetry is batched (no wakeup: the consumer drains on a timer); a
 * record that needs a prompt verdict, or a filling buffer, forces the wakeup. A failed output is counted
 * per kind: nothing is lost silently. */
static __always_inline void submit(void *rec, __u64 size, __u16 kind, __u32 flags,
				   const struct writ_task_info *t)
{
	__u64 rb_flags = BPF_RB_NO_WAKEUP;

	if ((flags & WRIT_F_NEEDS_VERDICT) || (t->flags & WRIT_TASK_PROMPT) ||
	    bpf_ringbuf_query(&events_map, BPF_RB_AVAIL_DATA) > cfg_wakeup_bytes)
		rb_flags = BPF_RB_FORCE_WAKEUP;
	if (size > sizeof(union writ_scratch))
		size = sizeof(union writ_scratch);
	if (bpf_ringbuf_output(&events_map, rec, size, rb_flags))
		count(kind, WRIT_CNT_DROPPED);
	else
		count(kind, WRIT_CNT_EMITTED);
}

/*
 * Walk a struct path up to the global root, writing components leaf first ("file\0dir\0usr\0") into the
 * scratch record's path. Crosses mount points through struct mount (mnt_parent / mnt_mountpoint), so the
 * result is the absolute path in the initial mount namespace's view, whatever the caller's cwd, dirfd,
 * symlinks or chroot. Runs as a bpf_loop callback (one iteration per component or mount crossing): an
 * open-coded loop with this many branches exceeds the verifier's state budget. Kernel pointers travel in
 * ctx as plain integers; every dereference is a CO-RE probe read.
 * Each write starts below WRIT_PATH_MAX - WRIT_NAME_MAX; the region's WRIT_NAME_MAX slack is what lets the
 * verifier accept the masked offset.
 */
struct walk_ctx {
	struct dentry *d;
	struct mount *m;
	struct dentry *mnt_root;
	__u32 off;
	__u32 flags;
	__u32 is_exec;
	__u32 done;
};

static long walk_step(__u32 i, void *data)
{
	struct walk_ctx *c = data;
	/* Locals, not c->x: BPF_CORE_READ relocates the whole access chain, and walk_ctx has no kernel BTF. */
	struct dentry *d = c->d;
	struct mount *m = c->m;
	union writ_scratch *s;
	struct dentry *parent;
	char *buf;
	long n;

	parent = BPF_CORE_READ(d, d_parent);
	if (d == c->mnt_root || d == parent) {
		struct mount *mp = BPF_CORE_READ(m, mnt_parent);

		if (m == mp || !mp) {
			c->done = 1; /* the global root */
			return 1;
		}
		c->d = BPF_CORE_READ(m, mnt_mountpoint);
		c->m = mp;
		c->mnt_root = BPF_CORE_READ(mp, mnt.mnt_root);
		return 0;
	}
	if (c->off > WRIT_PATH_MAX - WRIT_NAME_MAX)
		return 1; /* too long: truncated */
	s = scratch();
	if (!s)
		return 1;
	buf = c->is_exec ? s->exec.path : s->open.path;
	n = bpf_probe_read_kernel_str(buf + (c->off & (WRIT_PATH_MAX - 1)), WRIT_NAME_MAX,
				      BPF_CORE_READ(d, d_name.name));
	if (n <= 0) {
		c->done = 1;
		return 1;
	}
	c->off += n;
	c->d = parent;
	return 0;
}

static __always_inline __u32 walk_path(struct path *p, int is_exec, __u32 *flags)
{
	struct walk_ctx c = {};
	struct vfsmount *vm = BPF_CORE_READ(p, mnt);

	c.d = BPF_CORE_READ(p, dentry);
	c.m = container_of(vm, struct mount, mnt);
	c.mnt_root = BPF_CORE_READ(vm, mnt_root);
	c.is_exec = is_exec;
	bpf_loop(WRIT_PATH_DEPTH, walk_step, &c, 0);
	if (!c.done)
		*flags |= WRIT_F_PATH_TRUNC;
	return c.off;
}

/*
 * Path hashing runs in a bpf_loop callback: an open-coded 4096-iteration loop over a variable length
 * exceeds the verifier's budget, while a callback is verified once. The callback re-fetches the per-CPU
 * scratch record (same CPU, same value) instead of receiving a pointer through ctx.
 */
struct hash_ctx {
	__u64 h;
	__u32 len;
	__u32 is_exec;     /* which record in scratch holds the path */
	__u32 slot;
	__u32 check_file;  /* look every prefix up in file_map */
	__u32 hit;         /* a file_map entry matched */
	__u32 _pad0;
};

static long hash_step(__u32 i, void *data)
{
	struct hash_ctx *c = data;
	union writ_scratch *s = scratch();
	const char *buf;
	__u32 pos;

	if (!s || i >= c->len)
		return 1;
	buf = c->is_exec ? s->exec.path : s->open.path;
	pos = (c->len - 1 - i) & (WRIT_PATH_MAX - 1);
	c->h ^= (__u8)buf[pos];
	c->h *= WRIT_FNV_PRIME;
	/* A component (read backwards) ends where the previous byte is a NUL, or at the buffer start. */
	if (c->check_file && (pos == 0 || buf[(pos - 1) & (WRIT_PATH_MAX - 1)] == 0)) {
		struct writ_path_key key = { .slot = c->slot, .hash = c->h };

		if (bpf_map_lookup_elem(&file_map, &key)) {
			c->hit = 1;
			return 1;
		}
	}
	return 0;
}

static __always_inline __u64 path_hash(struct hash_ctx *c, __u32 len)
{
	c->h = WRIT_FNV_OFFSET;
	c->len = len > WRIT_PATH_MAX ? WRIT_PATH_MAX : len;
	c->hit = 0;
	bpf_loop(c->len, hash_step, c, 0);
	return c->h;
}

/*
 * After an in-kernel deny of a task whose responses include kill: SIGKILL the acting process's parent
 * too, if it belongs to the same task. Userspace kills the whole cgroup a few hundred microseconds later;
 * in that window an agent's shell would otherwise run its next command. The parent's membership is
 * checked through its cgroup's ancestor at the task level, so the `writ run` launcher (outside the task)
 * is never hit.
 */
static __always_inline void kill_lineage(const struct writ_task_info *t, __u64 cgid, __u32 ppid)
{
	struct task_struct *parent;
	struct cgroup *cg, *anc = NULL;
	__u64 pcg = 0;

	if (!(t->flags & WRIT_TASK_KILL_LINEAGE) || !bpf_ksym_exists(bpf_task_from_pid) ||
	    !bpf_ksym_exists(bpf_send_signal_task))
		return;
	parent = bpf_task_from_pid(ppid);
	if (!parent)
		return;
	cg = BPF_CORE_READ(parent, cgroups, dfl_cgrp);
	if (cg && BPF_CORE_READ(cg, level) >= (int)cfg_task_level) {
		bpf_core_read(&anc, sizeof(anc), &cg->ancestors[cfg_task_level & 0xff]);
		if (anc)
			pcg = BPF_CORE_READ(anc, kn, id);
	}
	if (pcg == cgid)
		bpf_send_signal_task(parent, SIGKILL, PIDTYPE_TGID, 0);
	bpf_task_release(parent);
}

/* ---- exec, fork, exit ---------------------------------------------------------------------------- */

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
		return 0;
	s = scratch();
	if (!s)
		return 0;
	e = &s->exec;
	fill_hdr(&e->hdr, WRIT_EV_EXEC, cgid, t, p);

	/* The image actually loaded: for a script this is the interpreter; filename is what was asked. */
	file = BPF_CORE_READ(bprm, file);
	bpf_core_read(&fpath, sizeof(fpath), &file->f_path);
	e->path_len = walk_path(&fpath, 1, &flags);
	struct hash_ctx hc = { .is_exec = 1, .slot = t->slot };
	e->path_hash = path_hash(&hc, e->path_len);

	n = bpf_probe_read_kernel_str(e->filename, sizeof(e->filename), BPF_CORE_READ(bprm, filename));
	e->filename_len = n > 0 ? n : 0;

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
	struct writ_path_key key = { .slot = t->slot, .hash = e->path_hash };
	__u32 *v = bpf_map_lookup_elem(&exec_map, &key);
	if (v)
		e->verdict = *v;
	else if (t->flags & WRIT_TASK_EXEC_TABLE)
		e->verdict = WRIT_KV_DENY;
	else if (t->flags & WRIT_TASK_EXEC_USER)
		e->verdict = WRIT_KV_USER;

	if (e->verdict == WRIT_KV_USER)
		flags |= WRIT_F_NEEDS_VERDICT;
	if (t->flags & WRIT_TASK_ENFORCE) {
		/* bpf_send_signal targets current: the exec'ing task. Delivered on return to user mode, before
		 * the new image's first instruction. An exe the table cannot decide is stopped the same way
		 * as one needing approval: userspace judges it, then continues or kills it. */
		if (e->verdict == WRIT_KV_DENY) {
			bpf_send_signal(SIGKILL);
			kill_lineage(t, cgid, e->hdr.ppid);
			flags |= WRIT_F_KERNEL_DENY | WRIT_F_NEEDS_VERDICT;
		} else if (e->verdict == WRIT_KV_APPROVAL || e->verdict == WRIT_KV_USER) {
			bpf_send_signal(SIGSTOP);
			flags |= WRIT_F_KERNEL_STOP | WRIT_F_NEEDS_VERDICT;
		}
	} else if (e->verdict == WRIT_KV_DENY || e->verdict == WRIT_KV_APPROVAL) {
		flags |= WRIT_F_NEEDS_VERDICT;
	}
	e->hdr.flags = flags;
	e->hdr.size = offsetof(struct writ_exec_event, args) + len;
	submit(e, e->hdr.size, WRIT_EV_EXEC, flags, t);
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
	submit(&s->fork, sizeof(s->fork), WRIT_EV_FORK, 0, t);
	return 0;
}

SEC("tp_btf/sched_process_exit")
int BPF_PROG(handle_exit, struct task_struct *p, bool group_dead)
{
	struct writ_task_info *t;
	union writ_scratch *s;
	__u64 cgid;
	__s32 code;

	/* One record per process: when its last thread exits. */
	if (!group_dead)
		return 0;
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
	submit(&s->exit, sizeof(s->exit), WRIT_EV_EXIT, 0, t);
	return 0;
}

/* ---- open ---------------------------------------------------------------------------------------- */

static __always_inline int open_enter(__u64 filename, __u32 flags, __u32 nr)
{
	struct open_args a = { .filename = filename, .flags = flags, .nr = nr };
	__u64 cgid, id;

	if (!lookup_task(&cgid))
		return 0;
	id = bpf_get_current_pid_tgid();
	bpf_map_update_elem(&open_args_map, &id, &a, BPF_ANY);
	return 0;
}

static __always_inline int open_exit(long ret)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct writ_task_info *t;
	struct open_args *a;
	union writ_scratch *s;
	struct writ_open_event *e;
	struct task_struct *task;
	__u32 flags = 0;
	__u64 cgid;

	a = bpf_map_lookup_elem(&open_args_map, &id);
	if (!a)
		return 0;
	t = lookup_task(&cgid);
	s = scratch();
	if (!t || !s) {
		bpf_map_delete_elem(&open_args_map, &id);
		return 0;
	}
	task = (struct task_struct *)bpf_get_current_task();
	e = &s->open;
	fill_hdr(&e->hdr, WRIT_EV_OPEN, cgid, t, task);
	e->result = ret;
	e->open_flags = a->flags;
	e->syscall_nr = a->nr;

	if (ret >= 0) {
		/* The file the kernel actually opened: current->files->fdt->fd[ret]->f_path. */
		struct file **fds = BPF_CORE_READ(task, files, fdt, fd);
		struct file *f = NULL;
		struct path fpath;

		bpf_core_read(&f, sizeof(f), &fds[ret & 0xfffff]);
		if (f) {
			bpf_core_read(&fpath, sizeof(fpath), &f->f_path);
			e->path_len = walk_path(&fpath, 0, &flags);
		} else {
			e->path_len = 0;
			flags |= WRIT_F_UNRESOLVED;
		}
	} else {
		/* Nothing was opened: report the string as passed. */
		long n = bpf_probe_read_user_str(e->path, WRIT_PATH_MAX, (void *)a->filename);
		e->path_len = n > 0 ? n : 0;
		flags |= WRIT_F_UNRESOLVED;
	}
	bpf_map_delete_elem(&open_args_map, &id);

	if ((t->flags & WRIT_TASK_FILE_TABLE) && !(flags & WRIT_F_UNRESOLVED)) {
		/* Exact path and ancestor-directory prefixes, in one backwards pass (see path_hash). */
		struct hash_ctx hc = { .is_exec = 0, .slot = t->slot, .check_file = 1 };

		path_hash(&hc, e->path_len);
		if (hc.hit) {
			flags |= WRIT_F_NEEDS_VERDICT;
			if (t->flags & WRIT_TASK_ENFORCE) {
				bpf_send_signal(SIGKILL);
				kill_lineage(t, cgid, e->hdr.ppid);
				flags |= WRIT_F_KERNEL_DENY;
			}
		}
	}
	e->hdr.flags = flags;
	e->hdr.size = offsetof(struct writ_open_event, path) + (e->path_len & (WRIT_PATH_MAX - 1));
	if (e->path_len >= WRIT_PATH_MAX)
		e->hdr.size = offsetof(struct writ_open_event, path) + WRIT_PATH_MAX;
	submit(e, e->hdr.size, WRIT_EV_OPEN, flags, t);
	return 0;
}

/* Syscall numbers travel with the record so the decoder can name the syscall. x86_64 numbers. */
#define NR_OPEN 2
#define NR_CREAT 85
#define NR_OPENAT 257
#define NR_OPENAT2 437

SEC("tracepoint/syscalls/sys_enter_openat")
int enter_openat(struct trace_event_raw_sys_enter *ctx)
{
	return open_enter(ctx->args[1], ctx->args[2], NR_OPENAT);
}

SEC("tracepoint/syscalls/sys_exit_openat")
int exit_openat(struct trace_event_raw_sys_exit *ctx)
{
	return open_exit(ctx->ret);
}

SEC("tracepoint/syscalls/sys_enter_openat2")
int enter_openat2(struct trace_event_raw_sys_enter *ctx)
{
	__u64 cgid, how_flags = 0;

	if (!lookup_task(&cgid))
		return 0;
	bpf_probe_read_user(&how_flags, sizeof(how_flags), (void *)ctx->args[2]); /* open_how.flags */
	return open_enter(ctx->args[1], (__u32)how_flags, NR_OPENAT2);
}

SEC("tracepoint/syscalls/sys_exit_openat2")
int exit_openat2(struct trace_event_raw_sys_exit *ctx)
{
	return open_exit(ctx->ret);
}

SEC("tracepoint/syscalls/sys_enter_open")
int enter_open(struct trace_event_raw_sys_enter *ctx)
{
	return open_enter(ctx->args[0], ctx->args[1], NR_OPEN);
}

SEC("tracepoint/syscalls/sys_exit_open")
int exit_open(struct trace_event_raw_sys_exit *ctx)
{
	return open_exit(ctx->ret);
}

SEC("tracepoint/syscalls/sys_enter_creat")
int enter_creat(struct trace_event_raw_sys_enter *ctx)
{
	return open_enter(ctx->args[0], O_CREAT | O_WRONLY | O_TRUNC, NR_CREAT);
}

SEC("tracepoint/syscalls/sys_exit_creat")
int exit_creat(struct trace_event_raw_sys_exit *ctx)
{
	return open_exit(ctx->ret);
}

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

static __always_inline void emit_connect(const struct writ_task_info *t, __u64 cgid, __u16 family,
					 __u16 port, const __u8 *addr, __s32 result, __u32 verdict,
					 __u32 flags)
{
	union writ_scratch *s = scratch();
	struct writ_connect_event *e;

	if (!s)
		return;
	e = &s->connect;
	fill_hdr(&e->hdr, WRIT_EV_CONNECT, cgid, t, (struct task_struct *)bpf_get_current_task());
	e->result = result;
	e->family = family;
	e->port = port;
	__builtin_memcpy(e->addr, addr, 16);
	e->verdict = verdict;
	e->_pad0 = 0;
	if (verdict == WRIT_KV_DENY && result == -EPERM)
		flags |= WRIT_F_KERNEL_DENY;
	if (verdict == WRIT_KV_DENY || verdict == WRIT_KV_APPROVAL || verdict == WRIT_KV_USER)
		flags |= WRIT_F_NEEDS_VERDICT;
	e->hdr.flags = flags;
	e->hdr.size = sizeof(*e);
	submit(e, sizeof(*e), WRIT_EV_CONNECT, flags, t);
}

SEC("tracepoint/syscalls/sys_exit_connect")
int exit_connect(struct trace_event_raw_sys_exit *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct writ_task_info *t;
	struct connect_args *a;
	__u64 cgid;

	a = bpf_map_lookup_elem(&connect_args_map, &id);
	if (!a)
		return 0;
	t = lookup_task(&cgid);
	if (t)
		emit_connect(t, cgid, a->family, a->port, a->addr, ctx->ret, a->verdict, 0);
	bpf_map_delete_elem(&connect_args_map, &id);
	return 0;
}

/* Decide a destination from the task's LPM table: the longest prefix's port ranges, first match wins. */
static __always_inline __u32 net_verdict(const struct writ_task_info *t, __u16 family, const __u8 *addr,
					 __u16 port)
{
	struct writ_net_value *v = NULL;
	struct writ_grant_key g = { .slot = t->slot, .port = port, .family = family };
	int i;

	__builtin_memcpy(g.addr, addr, 16);
	if (bpf_map_lookup_elem(&grant_map, &g))
		return WRIT_KV_ALLOW;
	if (family == AF_INET) {
		struct writ_net4_key k = { .prefixlen = 32 + 32, .slot_be = bpf_htonl(t->slot) };

		__builtin_memcpy(k.addr, addr, 4);
		v = bpf_map_lookup_elem(&net4_map, &k);
	} else {
		struct writ_net6_key k = { .prefixlen = 32 + 128, .slot_be = bpf_htonl(t->slot) };

		__builtin_memcpy(k.addr, addr, 16);
		v = bpf_map_lookup_elem(&net6_map, &k);
	}
	if (v) {
		for (i = 0; i < WRIT_NET_RANGES; i++) {
			if (i >= v->nranges)
				break;
			if (port >= v->ranges[i].lo && port <= v->ranges[i].hi)
				return v->ranges[i].verdict;
		}
	}
	return (t->flags & WRIT_TASK_NET_TABLE) ? WRIT_KV_DENY : WRIT_KV_NONE;
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
	port = bpf_ntohs((__u16)ctx->user_port);
	if (family == AF_INET) {
		__u32 ip4 = ctx->user_ip4;

		__builtin_memcpy(addr, &ip4, 4);
	} else {
		__u32 ip6[4];

		ip6[0] = ctx->user_ip6[0];
		ip6[1] = ctx->user_ip6[1];
		ip6[2] = ctx->user_ip6[2];
		ip6[3] = ctx->user_ip6[3];
		__builtin_memcpy(addr, ip6, 16);
	}
	verdict = net_verdict(t, family, addr, port);
	allow = !((t->flags & WRIT_TASK_ENFORCE) &&
		  (verdict == WRIT_KV_DENY || verdict == WRIT_KV_APPROVAL));

	id = bpf_get_current_pid_tgid();
	a = bpf_map_lookup_elem(&connect_args_map, &id);
	if (a)
		a->verdict = verdict;
	else
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
