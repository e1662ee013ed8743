/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Maps and helpers shared by writ's BPF objects: writ.bpf.c (tracepoints, cgroup hooks: what runs on
 * every kernel) and writ_lsm.bpf.c (BPF-LSM hooks: loaded only where the kernel allows, with this
 * header's maps reused from the main object by fd). Included once per object; everything is static.
 */
#ifndef WRIT_COMMON_BPF_H
#define WRIT_COMMON_BPF_H

#include "vmlinux.h"

#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "writ/abi/events.h"

#define EPERM 1
#define SIGKILL 9
#define SIGSTOP 19
#define AF_INET 2
#define AF_INET6 10
#define O_ACCMODE 3
#define O_WRONLY 1
#define O_CREAT 0100
#define O_TRUNC 01000
#ifndef READ_ONCE
#define READ_ONCE(x) (*(const volatile typeof(x) *)&(x))
#endif

/* Load-time configuration (rodata), set by the loader between open and load. */
const volatile __u32 cfg_task_level = 0;	 /* cgroup level of task cgroups; 0 = use own cgroup */
const volatile __u64 cfg_wakeup_bytes = 1 << 20; /* force a wakeup when this much data is pending */
/* Kernel features the loader probes before load (src/bpf/loader.cc, ProbeKernelFeatures). Constants to
 * the verifier: the branch a kernel cannot take is never verified there, and costs nothing here. */
const volatile __u32 cfg_exit_group_dead = 1; /* tp_btf/sched_process_exit has its group_dead argument */

/* Ring buffer; its size is set by the loader (bpf_map__set_max_entries) before load. */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4 << 20);
} events_map SEC(".maps");

/* The consumer's sleep flag (struct writ_consumer_state, see the ABI header). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__uint(map_flags, BPF_F_MMAPABLE);
	__type(key, __u32);
	__type(value, struct writ_consumer_state);
} consumer_map SEC(".maps");

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
	__uint(max_entries, WRIT_EV_KIND_MAX *WRIT_CNT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} counters_map SEC(".maps");

/* Records are built in a per-CPU scratch buffer (too large for the 512-byte stack), then copied into the
 * ring buffer at their actual size (ring_emit). The slack absorbs the verifier's view of a
 * masked write at the end of a region. */
union writ_scratch {
	struct writ_exec_event exec;
	struct writ_open_event open;
	struct writ_connect_event connect;
	struct writ_unix_connect_event unix_conn; /* starts with a writ_connect_event: connect's fields */
	struct writ_link_event link;
	struct writ_fork_event fork;
	struct writ_exit_event exit;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, union writ_scratch);
} scratch_map SEC(".maps");

/* A path being built or checked apart from any record (bpf/writ_link.bpf.h): leaf-first components, as
 * the walk writes them, for the hash pass. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, char[WRIT_PATH_MAX + WRIT_NAME_MAX]);
} work_map SEC(".maps");

/* Which buffer a path walk writes and a hash pass reads: a record's path in scratch, or work_map. */
enum writ_path_buf {
	WRIT_BUF_OPEN = 0, /* scratch: writ_open_event.path */
	WRIT_BUF_EXEC = 1, /* scratch: writ_exec_event.path */
	WRIT_BUF_UNIX = 2, /* scratch: writ_unix_connect_event.peer */
	WRIT_BUF_WORK = 3, /* work_map */
};

/* connect arguments saved at sys_enter for sys_exit, keyed by pid_tgid (one syscall in flight per thread).
 * (Opens need no such map: their exit programs read the saved user registers, see open_exit.) */
struct connect_args {
	__u16 family;
	__u16 port;
	__u32 verdict; /* set by the cgroup hook (or lsm/socket_connect) during the syscall */
	__u8 addr[16];
	__u32 flags; /* WRIT_F_LSM | WRIT_F_LSM_HOOK: lsm/socket_connect decided it (and refused it) */
	__u32 _pad0;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, struct connect_args);
} connect_args_map SEC(".maps");

/* Threads whose open lsm/file_open refused and reported (writ_lsm.bpf.c): their open's syscall-exit
 * program reports nothing more. LRU: an open with no syscall exit (io_uring) leaves an entry nobody
 * deletes. Only looked up for opens that failed with EPERM. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, __u64);
	__type(value, __u32);
} lsm_refused_map SEC(".maps");

/* lsm/socket_connect (writ_lsm.bpf.c) reported this thread's connect (one with no syscall exit: io_uring's):
 * cgroup/connect4|6, which runs next inside the same connect, reports nothing more when the destination
 * matches. LRU: a connect that fails between the two hooks leaves a mark nobody takes. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, __u64);
	__type(value, struct connect_args);
} lsm_connect_map SEC(".maps");

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
	__type(value, __u32); /* WRIT_KV_DENY for exact paths, directory prefixes and path components */
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

/* DNS egress (#17): the stub resolver's address and port (struct writ_dns_cfg). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct writ_dns_cfg);
} dns_cfg_map SEC(".maps");

/* The stub, or NULL when writd runs none. */
static __always_inline const struct writ_dns_cfg *dns_cfg(void)
{
	__u32 zero = 0;
	const struct writ_dns_cfg *c = bpf_map_lookup_elem(&dns_cfg_map, &zero);

	return c && c->port ? c : NULL;
}

/* Addresses a task's own DNS answers named (#17): {slot, family, addr} -> expiry, generation, ports. Written
 * by writd's stub resolver before the answer reaches the task; checked by net_verdict after the LPM tables.
 */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct writ_pin_key);
	__type(value, struct writ_pin_value);
} pin_map SEC(".maps");

/* Kernel functions (6.13+); weak, so the object still loads where they are missing. */
extern int bpf_send_signal_task(struct task_struct *task, int sig, enum pid_type type,
				__u64 value) __ksym __weak;
extern struct task_struct *bpf_task_from_pid(__s32 pid) __ksym __weak;
extern void bpf_task_release(struct task_struct *p) __ksym __weak;
/* 6.2+: an integer becomes a read-only BTF pointer, so the path walk loads fields directly (a faulting load
 * reads 0) instead of one bpf_probe_read_kernel helper call per field. */
extern void *bpf_rdonly_cast(const void *obj, __u32 btf_id) __ksym __weak;
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

/* The buffer `which` (enum writ_path_buf), WRIT_PATH_MAX + WRIT_NAME_MAX bytes; NULL if the map has none. */
static __always_inline char *path_buf(__u32 which)
{
	union writ_scratch *s;
	__u32 zero = 0;

	if (which == WRIT_BUF_WORK)
		return bpf_map_lookup_elem(&work_map, &zero);
	s = scratch();
	if (!s)
		return NULL;
	if (which == WRIT_BUF_EXEC)
		return s->exec.path;
	if (which == WRIT_BUF_UNIX)
		return s->unix_conn.peer;
	return s->open.path;
}

static __always_inline void fill_hdr_ids(struct writ_event_hdr *h, __u16 kind, __u64 cgid,
					 const struct writ_task_info *t, struct task_struct *task, __u32 pid,
					 __u32 tgid)
{
	__u64 uid_gid = bpf_get_current_uid_gid();

	h->abi_version = WRIT_ABI_VERSION;
	h->kind = kind;
	h->ktime_ns = bpf_ktime_get_boot_ns();
	h->cgroup_id = cgid;
	h->task_slot = t->slot;
	h->pid = pid;
	h->tgid = tgid;
	/* task is a BTF pointer (bpf_get_current_task_btf, a tp_btf argument): direct loads, no probe reads.
	 */
	h->ppid = task->real_parent->tgid;
	h->start_time_ns = task->group_leader->start_boottime;
	h->uid = (__u32)uid_gid;
	h->gid = (__u32)(uid_gid >> 32);
	h->flags = 0;
	h->_pad0 = 0;
	bpf_get_current_comm(h->comm, sizeof(h->comm));
}

/* Header of a record about `task`, a BTF pointer (uid, gid and comm are the current task's). */
static __always_inline void fill_hdr(struct writ_event_hdr *h, __u16 kind, __u64 cgid,
				     const struct writ_task_info *t, struct task_struct *task)
{
	fill_hdr_ids(h, kind, cgid, t, task, task->pid, task->tgid);
}

/* fill_hdr for the current task: pid and tgid from the helper instead of two probe reads. */
static __always_inline void fill_hdr_current(struct writ_event_hdr *h, __u16 kind, __u64 cgid,
					     const struct writ_task_info *t, struct task_struct *task)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();

	fill_hdr_ids(h, kind, cgid, t, task, (__u32)pid_tgid, (__u32)(pid_tgid >> 32));
}

/*
 * Put one record of `size` bytes (a constant, or bounded by the caller) into the ring buffer; 0 when it
 * is there. Telemetry is batched (no wakeup: the consumer drains on a timer). A prompt record (one that
 * needs a verdict now), or any record once a lot is pending, wakes the consumer -- only if it sleeps
 * (consumer_map, see struct writ_consumer_state for why that loses no wakeup): the sleep flag is read
 * after the reservation and a full barrier, as the protocol needs. Hence
 * reserve + copy + submit instead of bpf_ringbuf_output, which reserves and commits in one call.
 */
static __always_inline int ring_emit(const void *rec, __u64 size, int prompt)
{
	struct bpf_dynptr ptr;
	__u64 rb_flags = BPF_RB_NO_WAKEUP;

	if (bpf_ringbuf_reserve_dynptr(&events_map, size, 0, &ptr)) {
		bpf_ringbuf_discard_dynptr(&ptr, 0); /* the verifier wants every dynptr released */
		return -1;
	}
	bpf_dynptr_write(&ptr, 0, (void *)rec, size, 0);
	if (prompt || bpf_ringbuf_query(&events_map, BPF_RB_AVAIL_DATA) > cfg_wakeup_bytes) {
		__u32 zero = 0;
		struct writ_consumer_state *c = bpf_map_lookup_elem(&consumer_map, &zero);

		/* A locked add (BPF_XADD: "lock xadd" on x86, a full barrier) orders the reservation's
		 * store of the producer position before the read of the flag. It counts the checks, to
		 * have something to add: clang turns an add of 0 into an atomic or, and the fetching
		 * atomics (which could return the flag itself) need -mcpu=v3, whose 32-bit codegen the
		 * verifier rejects elsewhere in this object. x86 only: arm64's JIT emits an unordered
		 * atomic add, so a port would need the fetching form. */
		if (c)
			__sync_fetch_and_add(&c->wake_checks, 1);
		if (!c || READ_ONCE(c->sleeping))
			rb_flags = BPF_RB_FORCE_WAKEUP;
	}
	bpf_ringbuf_submit_dynptr(&ptr, rb_flags);
	return 0;
}

/* Submit a record built in scratch (or on the stack) through ring_emit. A failed emit is counted per
 * kind: nothing is lost silently.
 * judged: the record is one userspace judges (exec, open, self-protection). In an enforce-mode task such
 * a record that cannot be delivered fails closed: the acting process (current) is SIGKILLed, as a
 * violation would be, and counted (WRIT_CNT_FAIL_CLOSED) -- otherwise an agent could flood the ring buffer
 * to get an unjudged open or exec through, or leave an exec stopped for a verdict nobody will give.
 * Callers pass a constant; programs that may not signal (cgroup/connect) pass 0. */
static __always_inline int submit(void *rec, __u64 size, __u16 kind, __u32 flags,
				  const struct writ_task_info *t, const int judged)
{
	if (size > sizeof(union writ_scratch))
		size = sizeof(union writ_scratch);
	if (ring_emit(rec, size, (flags & WRIT_F_NEEDS_VERDICT) || (t->flags & WRIT_TASK_PROMPT))) {
		count(kind, WRIT_CNT_DROPPED);
		if (judged && (t->flags & WRIT_TASK_ENFORCE)) {
			bpf_send_signal(SIGKILL);
			count(kind, WRIT_CNT_FAIL_CLOSED);
		}
		return -1;
	}
	count(kind, WRIT_CNT_EMITTED);
	return 0;
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
	__u32 buf; /* enum writ_path_buf */
	__u32 done;
	__u32 skip; /* leaf-side components to leave out (a relative name's ".." reaching into its base) */
	__u32 _pad0;
};

/* The tail both walk steps share: copy one component's name (leaf first) and step to the parent.
 * name is a kernel pointer; 1 = stop the loop. */
static __always_inline long walk_copy_name(struct walk_ctx *c, const unsigned char *name,
					   struct dentry *parent)
{
	char *buf;
	long n;

	if (c->skip) {
		c->skip--;
		c->d = parent;
		return 0;
	}
	if (c->off > WRIT_PATH_MAX - WRIT_NAME_MAX)
		return 1; /* too long: truncated */
	buf = path_buf(c->buf);
	if (!buf)
		return 1;
	n = bpf_probe_read_kernel_str(buf + (c->off & (WRIT_PATH_MAX - 1)), WRIT_NAME_MAX, name);
	if (n <= 0) {
		c->done = 1;
		return 1;
	}
	c->off += n;
	c->d = parent;
	return 0;
}

static long walk_step(__u32 i, void *data)
{
	struct walk_ctx *c = data;
	/* Locals, not c->x: BPF_CORE_READ relocates the whole access chain, and walk_ctx has no kernel BTF.
	 */
	struct dentry *d = c->d;
	struct mount *m = c->m;
	struct dentry *parent;
	const unsigned char *name;

	/* d_parent and d_name.name in one read where they are adjacent (struct dentry has kept d_parent
	 * right before d_name {hash_len, name} for years); two reads elsewhere. One probe read less per
	 * component is a few percent of a monitored open. */
	if (bpf_core_field_offset(struct dentry, d_name) ==
		    bpf_core_field_offset(struct dentry, d_parent) + 8 &&
	    bpf_core_field_size(struct dentry, d_parent) == 8 &&
	    bpf_core_field_size(struct dentry, d_name) == 16) {
		struct {
			struct dentry *parent;
			__u64 hash_len;
			const unsigned char *name;
		} dn;

		if (bpf_probe_read_kernel(&dn, sizeof(dn),
					  (void *)d + bpf_core_field_offset(struct dentry, d_parent)))
			dn.parent = NULL, dn.name = NULL;
		parent = dn.parent;
		name = dn.name;
	} else {
		parent = BPF_CORE_READ(d, d_parent);
		name = NULL;
	}
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
	if (!name)
		name = BPF_CORE_READ(d, d_name.name);
	return walk_copy_name(c, name, parent);
}

/* walk_step with direct loads: c->d, c->m and c->mnt_root are read-only BTF pointers (bpf_rdonly_cast), so
 * d_parent, d_name.name and the mount fields are plain loads (a faulting one reads 0). What is left of the
 * helper calls per component is the name copy. Same walk, same output as walk_step. */
static long walk_step_btf(__u32 i, void *data)
{
	struct walk_ctx *c = data;
	struct dentry *d = c->d;
	struct mount *m = c->m;
	struct dentry *parent = d->d_parent;

	if (d == c->mnt_root || d == parent) {
		struct mount *mp = m->mnt_parent;

		if (m == mp || !mp) {
			c->done = 1; /* the global root */
			return 1;
		}
		c->d = m->mnt_mountpoint;
		c->m = mp;
		c->mnt_root = mp->mnt.mnt_root;
		return 0;
	}
	return walk_copy_name(c, d->d_name.name, parent);
}

/* Walks p into buffer `buf` from byte `start` (after what is already there), leaving out the first `skip`
 * components; returns the end offset. */
static __always_inline __u32 walk_path_at(struct path *p, __u32 buf, __u32 start, __u32 skip, __u32 *flags)
{
	struct walk_ctx c = {};
	struct vfsmount *vm = p->mnt; /* p is the caller's copy of the struct path: no probe read */

	c.buf = buf;
	c.off = start;
	c.skip = skip;
	if (bpf_ksym_exists(bpf_rdonly_cast)) {
		c.d = bpf_rdonly_cast(p->dentry, bpf_core_type_id_kernel(struct dentry));
		c.m = bpf_rdonly_cast((void *)((unsigned long)vm - bpf_core_field_offset(struct mount, mnt)),
				      bpf_core_type_id_kernel(struct mount));
		c.mnt_root = c.m->mnt.mnt_root;
		bpf_loop(WRIT_PATH_DEPTH, walk_step_btf, &c, 0);
	} else {
		c.d = p->dentry;
		c.m = container_of(vm, struct mount, mnt);
		c.mnt_root = BPF_CORE_READ(vm, mnt_root);
		bpf_loop(WRIT_PATH_DEPTH, walk_step, &c, 0);
	}
	if (!c.done)
		*flags |= WRIT_F_PATH_TRUNC;
	return c.off;
}

static __always_inline __u32 walk_path(struct path *p, int is_exec, __u32 *flags)
{
	return walk_path_at(p, is_exec ? WRIT_BUF_EXEC : WRIT_BUF_OPEN, 0, 0, flags);
}

/*
 * Path hashing runs in a bpf_loop callback: an open-coded 4096-iteration loop over a variable length
 * exceeds the verifier's budget, while a callback is verified once. The callback re-fetches the per-CPU
 * scratch record (same CPU, same value) instead of receiving a pointer through ctx.
 */
struct hash_ctx {
	__u64 h;
	__u64 ch; /* hash of the current component alone (check_comp) */
	__u32 len;
	__u32 is_exec; /* which buffer holds the path: WRIT_BUF_* (0 open, 1 exec, as before) */
	__u32 slot;
	__u32 check_file; /* look every prefix up in file_map */
	__u32 check_comp; /* also look every component up (WRIT_TASK_FILE_COMP); needs check_file */
	__u32 hit;	  /* a file_map entry matched */
	__u32 comp_only;  /* with check_file: components only, no path prefixes (a relative name) */
	__u32 _pad0;
	__u64 leaf_hash; /* out, with check_comp: the component hash of the leaf (the buffer's first) */
};

static long hash_step(__u32 i, void *data)
{
	struct hash_ctx *c = data;
	const char *buf = path_buf(c->is_exec);
	__u32 pos;

	if (!buf || i >= c->len)
		return 1;
	pos = (c->len - 1 - i) & (WRIT_PATH_MAX - 1);
	c->h ^= (__u8)buf[pos];
	c->h *= WRIT_FNV_PRIME;
	if (c->check_comp) {
		c->ch ^= (__u8)buf[pos];
		c->ch *= WRIT_FNV_PRIME;
	}
	/* A component (read backwards) ends where the previous byte is a NUL, or at the buffer start. */
	if (c->check_file && (pos == 0 || buf[(pos - 1) & (WRIT_PATH_MAX - 1)] == 0)) {
		struct writ_path_key key = {.slot = c->slot, .hash = c->h};

		if (!c->comp_only && bpf_map_lookup_elem(&file_map, &key)) {
			c->hit = 1;
			return 1;
		}
		if (c->check_comp) {
			/* The buffer is leaf first, so the component ending at byte 0 is the opened file's
			 * own name; every other one is an ancestor directory. */
			key.kind = pos == 0 ? WRIT_PK_LEAF : WRIT_PK_DIR;
			key.hash = c->ch;
			if (pos == 0)
				c->leaf_hash = c->ch;
			if (bpf_map_lookup_elem(&file_map, &key)) {
				c->hit = 1;
				return 1;
			}
			c->ch = WRIT_FNV_OFFSET;
		}
	}
	return 0;
}

static __always_inline __u64 path_hash(struct hash_ctx *c, __u32 len)
{
	c->h = WRIT_FNV_OFFSET;
	c->ch = WRIT_FNV_OFFSET;
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

/* The destination a cgroup sock_addr program (connect4|6, sendmsg4|6) is called for: the address into
 * addr (4 bytes for AF_INET, 16 for AF_INET6, network order) and the port, host order. */
static __always_inline __u16 sock_addr_dst(struct bpf_sock_addr *ctx, __u16 family, __u8 addr[16])
{
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
	return bpf_ntohs((__u16)ctx->user_port);
}

/* Decide a destination from the task's LPM table: the longest prefix's port ranges, first match wins. An
 * IPv4-mapped IPv6 destination (::ffff:a.b.c.d: a dual-stack socket reaching IPv4) is decided by the IPv4
 * table, as userspace judges it; without this a deny-only rule was not applied to it in the kernel. */
static __always_inline __u32 net_verdict(const struct writ_task_info *t, __u16 family, const __u8 *addr,
					 __u16 port)
{
	struct writ_net_value *v = NULL;
	struct writ_grant_key g = {.slot = t->slot, .port = port, .family = family};
	int i, mapped;

	__builtin_memcpy(g.addr, addr, 16);
	if (bpf_map_lookup_elem(&grant_map, &g))
		return WRIT_KV_ALLOW;
	mapped = family == AF_INET6 &&
		 !(addr[0] | addr[1] | addr[2] | addr[3] | addr[4] | addr[5] | addr[6] | addr[7] | addr[8] |
		   addr[9]) &&
		 addr[10] == 0xff && addr[11] == 0xff;
	if (family == AF_INET || mapped) {
		struct writ_net4_key k = {.prefixlen = 32 + 32, .slot_be = bpf_htonl(t->slot)};

		if (mapped)
			__builtin_memcpy(k.addr, addr + 12, 4);
		else
			__builtin_memcpy(k.addr, addr, 4);
		v = bpf_map_lookup_elem(&net4_map, &k);
	} else {
		struct writ_net6_key k = {.prefixlen = 32 + 128, .slot_be = bpf_htonl(t->slot)};

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
	if ((t->flags & WRIT_TASK_NET_TABLE) && dns_cfg()) {
		/* An address the task's own DNS answer named, for the ports of the rule that named it, until
		 * its TTL runs out. A CIDR rule decided above (a deny included) is not widened by a pin. */
		struct writ_pin_key pk = {.slot = t->slot,
					  .family = (family == AF_INET || mapped) ? AF_INET : family};
		struct writ_pin_value *pv;

		if (pk.family == AF_INET)
			__builtin_memcpy(pk.addr, mapped ? addr + 12 : addr, 4);
		else
			__builtin_memcpy(pk.addr, addr, 16);
		pv = bpf_map_lookup_elem(&pin_map, &pk);
		if (pv && pv->generation == t->generation && bpf_ktime_get_boot_ns() < pv->expires_ns) {
			for (i = 0; i < WRIT_PIN_RANGES; i++) {
				if (i >= pv->nranges)
					break;
				if (port >= pv->ranges[i].lo && port <= pv->ranges[i].hi)
					return WRIT_KV_ALLOW;
			}
		}
	}
	return (t->flags & WRIT_TASK_NET_TABLE) ? WRIT_KV_DENY : WRIT_KV_NONE;
}

/* A connect or datagram of a task to port 53 over TCP or UDP goes to writd's stub resolver instead
 * (cgroup/connect4|6 and sendmsg4|6 rewrite the destination, bpf/writ_dns.bpf.h): it is not judged as a
 * connect to the address the task named. */
static __always_inline int dns_redirected(__u16 port, __u32 protocol)
{
	return port == 53 && (protocol == IPPROTO_TCP || protocol == IPPROTO_UDP) && dns_cfg();
}

/* Takes the current thread's mark in lsm_refused_map, if any: 1 when lsm/file_open refused its open. */
static __always_inline int lsm_refused(void)
{
	__u64 id = bpf_get_current_pid_tgid();

	if (!bpf_map_lookup_elem(&lsm_refused_map, &id))
		return 0;
	bpf_map_delete_elem(&lsm_refused_map, &id);
	return 1;
}

/* Takes the current thread's mark in lsm_connect_map: 1 when lsm/socket_connect reported this connect (to
 * family/port/addr) already. */
static __always_inline int lsm_connect_reported(__u16 family, __u16 port, const __u8 *addr)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct connect_args *m = bpf_map_lookup_elem(&lsm_connect_map, &id);
	__u64 a0, a1, m0, m1;
	int same;

	if (!m)
		return 0;
	__builtin_memcpy(&a0, addr, 8);
	__builtin_memcpy(&a1, addr + 8, 8);
	__builtin_memcpy(&m0, m->addr, 8);
	__builtin_memcpy(&m1, m->addr + 8, 8);
	same = m->family == family && m->port == port && a0 == m0 && a1 == m1;
	bpf_map_delete_elem(&lsm_connect_map, &id);
	return same;
}
/* A connect record: from its syscall exit (the verdict the cgroup or LSM hook left in connect_args_map),
 * or from the hook itself for a connect no syscall tracepoint sees (io_uring). fill_connect builds it in
 * scratch with its header flags set (NULL without scratch) for a caller that adds to it before submitting;
 * emit_connect submits it as is. */
static __always_inline struct writ_connect_event *fill_connect(const struct writ_task_info *t, __u64 cgid,
							       __u16 family, __u16 port, const __u8 *addr,
							       __s32 result, __u32 verdict, __u32 flags)
{
	union writ_scratch *s = scratch();
	struct writ_connect_event *e;

	if (!s)
		return NULL;
	e = &s->connect;
	fill_hdr_current(&e->hdr, WRIT_EV_CONNECT, cgid, t, bpf_get_current_task_btf());
	e->result = result;
	e->family = family;
	e->port = port;
	__builtin_memcpy(e->addr, addr, 16);
	e->verdict = verdict;
	e->suppressed = 0;
	if (verdict == WRIT_KV_DENY && result == -EPERM)
		flags |= WRIT_F_KERNEL_DENY;
	if ((t->flags & WRIT_TASK_ENFORCE) &&
	    (verdict == WRIT_KV_DENY || verdict == WRIT_KV_APPROVAL || verdict == WRIT_KV_USER))
		flags |= WRIT_F_NEEDS_VERDICT;
	e->hdr.flags = flags;
	e->hdr.size = sizeof(*e);
	return e;
}

static __always_inline void emit_connect(const struct writ_task_info *t, __u64 cgid, __u16 family, __u16 port,
					 const __u8 *addr, __s32 result, __u32 verdict, __u32 flags)
{
	struct writ_connect_event *e = fill_connect(t, cgid, family, port, addr, result, verdict, flags);

	if (e) /* decided in the kernel (cgroup hook) */
		submit(e, sizeof(*e), WRIT_EV_CONNECT, e->hdr.flags, t, 0);
}

/* A connect's syscall exit (sys_exit_connect, or fexit of the syscall on the LSM rung): the record of the
 * connect its entry (or lsm/socket_connect) saved, with the result. */
static __always_inline int connect_exit(long ret)
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
		emit_connect(t, cgid, a->family, a->port, a->addr, ret, a->verdict, a->flags);
	bpf_map_delete_elem(&connect_args_map, &id);
	return 0;
}

#endif /* WRIT_COMMON_BPF_H */
