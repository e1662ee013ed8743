/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Network paths around connect(2), included by writ.bpf.c after its connect section (which this reuses:
 * fill_connect, net_verdict, connect_args_map's discipline).
 *
 * Datagrams sent to an address without connect() (UDP sendto/sendmsg): cgroup/sendmsg4|6 on the writ
 * subtree decide each from the same per-task LPM tables and grants as cgroup/connect4|6, and return 0 (the
 * send fails with EPERM) where connect would. Only what is not plainly allowed is reported -- a refusal, a
 * monitor-mode would-deny, a destination userspace must judge -- and at most once a second per task and
 * destination and WRIT_SEND_BUDGET times a second per task: a flood of sends costs the ring buffer a few
 * records, the rest is counted (WRIT_CNT_SUPPRESSED; the next record carries how many of its destination).
 *
 * Unix sockets: connect(2) to a path or abstract name is judged by the task's unix table (unix_map: exact
 * names and directory prefixes, WRIT_UK_*), cgroup/connect_unix (Linux 6.7+) refusing with EPERM before the
 * socket is looked up, from the kernel's own copy of the name. sys_enter/exit_connect programs of their own
 * (the inet ones return early for AF_UNIX) report every unix connect of a task with its result and the
 * socket file actually reached (the peer's bound path, walked like an opened file): a symlink to a denied
 * socket is seen for what it is. Where cgroup/connect_unix does not load, the sys_enter program decides from
 * the caller's copy of the name and the exit program SIGKILLs a denied connect (killed_after). Datagrams to
 * a unix name without connect(): cgroup/sendmsg_unix, reported like UDP sends. Where BPF-LSM loads,
 * writ_lsm.bpf.c decides the same from lsm/socket_connect and lsm/socket_sendmsg (Linux 6.1 has neither
 * cgroup hook): it includes this file with WRIT_NET_NO_PROGRAMS for the maps and helpers alone.
 */
#ifndef WRIT_NET_BPF_H
#define WRIT_NET_BPF_H

#define AF_UNIX 1
#define WRIT_SEND_REPORT_NS 1000000000ULL /* one record per task and destination per second */
#define WRIT_SEND_BUDGET 64		  /* records of refused sends per task per second */

/* ---- datagram sends: which refusals to report ------------------------------------------------------ */

struct send_seen {
	__u64 last_ns;	  /* when the last record for this destination was emitted */
	__u64 generation; /* the task's: a slot reused by a new task starts afresh */
	__u32 suppressed; /* refusals since then, not reported */
	__u32 _pad0;
};

/* (slot, destination) -> last report. LRU: a scan of many destinations evicts old ones, never blocks. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, struct writ_grant_key);
	__type(value, struct send_seen);
} send_seen_map SEC(".maps");

struct send_budget {
	__u64 window_ns;
	__u64 generation;
	__u32 n;
	__u32 _pad0;
};

/* slot -> records of refused sends in the current one-second window. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, WRIT_MAX_TASKS);
	__type(key, __u32);
	__type(value, struct send_budget);
} send_budget_map SEC(".maps");

/* 1 when a send that is not plainly allowed should be reported now, 0 when the same destination was
 * reported within the last second, -1 when the task's budget of records for this second is spent;
 * *suppressed is how many sends to the same destination were not reported, since the last record. Counters
 * are approximate across CPUs (no lock): the bound, not the exact count, is what matters here. */
static __always_inline int send_report(const struct writ_task_info *t, __u16 family, const __u8 *addr,
				       __u16 port, __u32 *suppressed)
{
	struct writ_grant_key k = {.slot = t->slot, .port = port, .family = family};
	struct send_seen *seen, fresh = {};
	struct send_budget *b;
	__u64 now = bpf_ktime_get_boot_ns();
	__u32 slot = t->slot;

	__builtin_memcpy(k.addr, addr, 16);
	seen = bpf_map_lookup_elem(&send_seen_map, &k);
	if (seen && seen->generation == t->generation && now - seen->last_ns < WRIT_SEND_REPORT_NS) {
		__sync_fetch_and_add(&seen->suppressed, 1);
		count(WRIT_EV_CONNECT, WRIT_CNT_SUPPRESSED);
		return 0;
	}
	b = bpf_map_lookup_elem(&send_budget_map, &slot);
	if (b) {
		if (b->generation != t->generation || now - b->window_ns >= WRIT_SEND_REPORT_NS) {
			b->generation = t->generation;
			b->window_ns = now;
			b->n = 0;
		}
		if (b->n >= WRIT_SEND_BUDGET) {
			count(WRIT_EV_CONNECT, WRIT_CNT_SUPPRESSED);
			return -1;
		}
		b->n++;
	}
	*suppressed = seen && seen->generation == t->generation ? seen->suppressed : 0;
	fresh.last_ns = now;
	fresh.generation = t->generation;
	bpf_map_update_elem(&send_seen_map, &k, &fresh, BPF_ANY);
	return 1;
}

/* A send or hook-seen connect only userspace can judge (WRIT_KV_USER) that no record reports (the send
 * budget is spent, the ring is full) would go unjudged: in enforce mode it is refused instead (EPERM: a
 * cgroup hook cannot signal), and counted as failed closed. */
static __always_inline int unreported_send(const struct writ_task_info *t, __u32 verdict, int allow)
{
	if (verdict == WRIT_KV_USER && (t->flags & WRIT_TASK_ENFORCE)) {
		count(WRIT_EV_CONNECT, WRIT_CNT_FAIL_CLOSED);
		return 0;
	}
	return allow;
}

static __always_inline int cgroup_sendmsg(struct bpf_sock_addr *ctx, __u16 family)
{
	struct writ_task_info *t;
	struct writ_connect_event *e;
	__u8 addr[16] = {};
	__u32 verdict, suppressed = 0;
	__u64 cgid;
	__u16 port;
	int allow, report;

	t = lookup_task(&cgid);
	if (!t)
		return 1;
	port = sock_addr_dst(ctx, family, addr);
#ifndef WRIT_NET_NO_PROGRAMS
	if (dns_redirect(ctx, family, addr, port))
		return 1; /* a DNS query: the stub judges and reports it */
#endif
	verdict = net_verdict(t, family, addr, port);
	/* Allowed datagrams are not reported: a UDP stream would be a record per packet. */
	if (verdict == WRIT_KV_ALLOW || verdict == WRIT_KV_NONE)
		return 1;
	allow = !((t->flags & WRIT_TASK_ENFORCE) && (verdict == WRIT_KV_DENY || verdict == WRIT_KV_APPROVAL));
	report = send_report(t, family, addr, port, &suppressed);
	if (report > 0) {
		e = fill_connect(t, cgid, family, port, addr, allow ? 0 : -EPERM, verdict,
				 WRIT_F_CGROUP_HOOK | WRIT_F_SEND);
		if (!e)
			return unreported_send(t, verdict, allow);
		e->suppressed = suppressed;
		if (submit(e, sizeof(*e), WRIT_EV_CONNECT, e->hdr.flags, t, 0))
			return unreported_send(t, verdict, allow);
	}
	return report < 0 ? unreported_send(t, verdict, allow) : allow;
}

#ifndef WRIT_NET_NO_PROGRAMS /* writ_lsm.bpf.c takes the maps and helpers only */
SEC("cgroup/sendmsg4")
int cg_sendmsg4(struct bpf_sock_addr *ctx)
{
	return cgroup_sendmsg(ctx, AF_INET);
}
#endif

#ifndef WRIT_NET_NO_PROGRAMS
SEC("cgroup/sendmsg6")
int cg_sendmsg6(struct bpf_sock_addr *ctx)
{
	return cgroup_sendmsg(ctx, AF_INET6);
}
#endif

/* ---- unix sockets ---------------------------------------------------------------------------------- */

/* Kernel functions the unix hooks read the kernel's copy of the address with (6.3+ and 6.2+). */
extern void *bpf_cast_to_kern_ctx(void *obj) __ksym __weak;

/* A unix connect in flight: sys_enter -> cgroup/connect_unix -> sys_exit, keyed by pid_tgid. */
struct unix_args {
	__u32 verdict;
	__u32 name_len;
	__u32 from_hook; /* cgroup/connect_unix ran: name is the kernel's copy and the verdict was applied */
	__u32 lsm; /* lsm/socket_connect saved it (writ_lsm.bpf.c): the same, and it refused a denied one */
	char name[WRIT_UNIX_NAME_MAX];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 8192);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, __u64);
	__type(value, struct unix_args);
} unix_args_map SEC(".maps");

/* Per-task unix-socket decisions (WRIT_UK_*: exact names, directory prefixes; slot WRIT_SLOT_ALL: every
 * task), filled by userspace from the intent's network.unix and writd's own sockets. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, struct writ_path_key);
	__type(value, __u32); /* WRIT_KV_ALLOW or WRIT_KV_DENY */
} unix_map SEC(".maps");

struct unix_scan {
	__u64 h;
	__u32 len;
	__u32 slot;
	__u32 allow;	 /* an entry allowed it (exact or prefix) */
	__u32 deny;	 /* an entry denied it */
	__u32 abnormal;	 /* relative, or "//", "." or ".." components: no entry can name it as written */
	__u32 comp_len;	 /* bytes of the current component (a path) */
	__u32 comp_dots; /* of which dots, while the component is nothing else */
	__u32 path;	 /* a path name (not abstract): its components are checked */
};

static __always_inline void unix_lookup(struct unix_scan *c, __u32 kind, __u64 h)
{
	struct writ_path_key k = {.slot = c->slot, .kind = kind, .hash = h};
	__u32 *v = bpf_map_lookup_elem(&unix_map, &k);

	if (v && *v == WRIT_KV_DENY)
		c->deny = 1;
	else if (v && *v == WRIT_KV_ALLOW)
		c->allow = 1;
}

/* One byte of the name in scratch's unix record, forward. A '/' ends a directory: its hash (before the
 * '/') is looked up as a prefix. */
static long unix_scan_step(__u32 i, void *data)
{
	struct unix_scan *c = data;
	union writ_scratch *s = scratch();
	__u8 ch;

	if (!s || i >= c->len)
		return 1;
	ch = s->unix_conn.name[i & (WRIT_UNIX_NAME_MAX - 1)];
	if (c->path && ch == 0)
		return 1; /* a path ends at its NUL (the kernel's own reading of sun_path) */
	if (i == 0 && ch == 0) {
		ch = '@'; /* an abstract name is written @name */
	} else if (ch == '/') {
		/* An empty, "." or ".." component before this '/' ("//", "/./", "/../"). */
		if (c->path && i > 0 &&
		    (c->comp_len == 0 || (c->comp_len <= 2 && c->comp_dots == c->comp_len)))
			c->abnormal = 1;
		if (i > 0)
			unix_lookup(c, WRIT_UK_PREFIX, c->h);
		c->comp_len = 0;
		c->comp_dots = 0;
	} else {
		if (ch == '.' && c->comp_dots == c->comp_len)
			c->comp_dots++;
		c->comp_len++;
	}
	c->h ^= ch;
	c->h *= WRIT_FNV_PRIME;
	return 0;
}

/* The kernel's verdict on the name in scratch's unix record (name_len bytes as given in sun_path); *hash
 * its hash (what rate-limited send reports key on). */
static __always_inline __u32 unix_verdict(const struct writ_task_info *t, __u32 name_len, __u64 *hash)
{
	union writ_scratch *s = scratch();
	struct unix_scan c = {.h = WRIT_FNV_OFFSET, .slot = t->slot};
	struct writ_path_key all = {.slot = WRIT_SLOT_ALL, .kind = WRIT_UK_EXACT};
	__u32 len = name_len > WRIT_UNIX_NAME_MAX ? WRIT_UNIX_NAME_MAX : name_len;
	__u8 first;

	*hash = 0;
	if (!s || len == 0)
		return (t->flags & WRIT_TASK_UNIX_DENY) ? WRIT_KV_DENY : WRIT_KV_NONE;
	first = s->unix_conn.name[0];
	if (first != 0) {
		if (first != '/')
			c.abnormal = 1;
		c.path = 1;
	}
	c.len = len;
	bpf_loop(len, unix_scan_step, &c, 0);
	/* The last component: "." or ".." (or nothing: a trailing '/'). */
	if (first != 0 && (c.comp_len == 0 || (c.comp_len <= 2 && c.comp_dots == c.comp_len)))
		c.abnormal = 1;
	*hash = c.h;
	all.hash = c.h;
	if (bpf_map_lookup_elem(&unix_map, &all))
		return WRIT_KV_ALLOW; /* writd's own sockets: writd authorizes every request on them */
	if (!(t->flags & WRIT_TASK_UNIX))
		return WRIT_KV_NONE;
	unix_lookup(&c, WRIT_UK_EXACT, c.h);
	if (c.deny)
		return WRIT_KV_DENY;
	if (c.allow && !c.abnormal)
		return WRIT_KV_ALLOW;
	if (c.abnormal && (t->flags & WRIT_TASK_UNIX_DENY))
		return WRIT_KV_DENY; /* an allow list names sockets by their absolute paths */
	if (c.abnormal || (t->flags & WRIT_TASK_UNIX_USER))
		return WRIT_KV_USER;
	return (t->flags & WRIT_TASK_UNIX_DENY) ? WRIT_KV_DENY : WRIT_KV_NONE;
}

/* Copies a name of `len` bytes (<= WRIT_UNIX_NAME_MAX) into scratch's unix record. */
static __always_inline void unix_put_name(const char *src, __u32 len, int kernel)
{
	union writ_scratch *s = scratch();

	if (!s)
		return;
	/* Keep the mask: the verifier has lost the caller's bound by here. */
	asm volatile("" : "+r"(len));
	len &= WRIT_UNIX_NAME_MAX - 1;
	if (kernel)
		bpf_probe_read_kernel(s->unix_conn.name, len, src);
	else
		bpf_probe_read_user(s->unix_conn.name, len, src);
	s->unix_conn.name_len = len;
}

#ifndef WRIT_NET_NO_PROGRAMS
SEC("tracepoint/syscalls/sys_enter_connect")
int unix_enter_connect(struct trace_event_raw_sys_enter *ctx)
{
	struct writ_task_info *t;
	union writ_scratch *s;
	struct unix_args a = {};
	__u64 cgid, h, id = bpf_get_current_pid_tgid();
	void *uaddr = (void *)ctx->args[1];
	__u64 alen = ctx->args[2];
	__u16 family = 0;
	__u32 len;

	t = lookup_task(&cgid);
	if (!t)
		return 0;
	if (bpf_probe_read_user(&family, sizeof(family), uaddr) || family != AF_UNIX)
		return 0;
	s = scratch();
	if (!s)
		return 0;
	len = alen > 2 ? alen - 2 : 0;
	if (len > 108)
		len = 108;
	unix_put_name(uaddr + 2, len, 0);
	a.verdict = unix_verdict(t, len, &h); /* from the caller's copy: cgroup/connect_unix overrides it */
	a.name_len = len;
	bpf_probe_read_kernel(a.name, sizeof(a.name), s->unix_conn.name);
	if (bpf_map_update_elem(&unix_args_map, &id, &a, BPF_ANY)) {
		/* Full (connects blocked on a listener's backlog can fill it): sys_exit would find nothing to
		 * report. A connect the kernel must refuse or userspace must judge is killed here instead. */
		count(WRIT_EV_CONNECT, WRIT_CNT_DROPPED);
		if ((a.verdict == WRIT_KV_DENY || a.verdict == WRIT_KV_USER) &&
		    (t->flags & WRIT_TASK_ENFORCE)) {
			bpf_send_signal(SIGKILL);
			count(WRIT_EV_CONNECT, WRIT_CNT_FAIL_CLOSED);
		}
	}
	return 0;
}
#endif

/* The unix record in scratch, name set already; peer walked from `peer_path` (NULL: none). `judged`: a
 * record userspace must judge, whose loss kills the caller in enforce mode (only programs that may signal
 * pass 1). 0 when the record went out, -1 when it did not. */
static __always_inline int emit_unix(const struct writ_task_info *t, __u64 cgid, __s32 result, __u32 verdict,
				     __u32 flags, struct path *peer_path, __u32 suppressed, const int judged)
{
	union writ_scratch *s = scratch();
	struct writ_connect_event *e;
	__u8 none[16] = {};
	__u32 plen = 0, nlen;

	if (!s)
		return -1;
	nlen = s->unix_conn.name_len; /* fill_connect leaves the tail alone */
	if (peer_path)
		plen = walk_path_at(peer_path, WRIT_BUF_UNIX, 0, 0, &flags);
	e = fill_connect(t, cgid, AF_UNIX, 0, none, result, verdict, flags);
	if (!e)
		return -1;
	e->suppressed = suppressed;
	s->unix_conn.name_len = nlen;
	s->unix_conn.peer_len = plen;
	plen &= WRIT_PATH_MAX - 1;
	if (s->unix_conn.peer_len >= WRIT_PATH_MAX)
		plen = WRIT_PATH_MAX;
	e->hdr.size = offsetof(struct writ_unix_connect_event, peer) + plen;
	return submit(e, e->hdr.size, WRIT_EV_CONNECT, e->hdr.flags, t, judged);
}

/* The peer a connected unix socket reached: fd -> socket -> its peer's bound path (a stream connect's peer
 * is the server's new socket, which carries the listener's path). 0 with *p filled when there is one. */
static __always_inline int unix_peer_path(struct task_struct *task, int fd, struct path *p)
{
	struct file **fds = task->files->fdt->fd;
	struct file *f = NULL;
	struct socket *sock;
	struct sock *peer;
	struct unix_sock *u;

	bpf_core_read(&f, sizeof(f), &fds[fd & 0xfffff]);
	if (!f)
		return -1;
	sock = BPF_CORE_READ(f, private_data);
	if (!sock)
		return -1;
	u = (struct unix_sock *)BPF_CORE_READ(sock, sk);
	if (!u)
		return -1;
	peer = BPF_CORE_READ(u, peer);
	if (!peer)
		return -1;
	u = (struct unix_sock *)peer;
	bpf_core_read(p, sizeof(*p), &u->path);
	return p->dentry ? 0 : -1;
}

/* A unix connect's syscall exit (sys_exit_connect, or fexit of the syscall on the LSM rung): the record of
 * the connect its entry (or lsm/socket_connect) saved, with the result and the socket it reached. */
static __always_inline int unix_connect_exit(long ret)
{
	__u64 id = bpf_get_current_pid_tgid(), cgid;
	struct writ_task_info *t;
	struct task_struct *task;
	struct unix_args *a;
	struct path peer;
	__u32 flags = 0, verdict;
	int have_peer = 0;

	a = bpf_map_lookup_elem(&unix_args_map, &id);
	if (!a)
		return 0;
	t = lookup_task(&cgid);
	if (!t) {
		bpf_map_delete_elem(&unix_args_map, &id);
		return 0;
	}
	verdict = a->verdict;
	if (a->lsm) {
		/* Decided before the lookup (a denied one refused: WRIT_F_LSM from its verdict below). */
		flags |= WRIT_F_LSM_HOOK;
		if (ret == -EPERM && verdict == WRIT_KV_DENY && (t->flags & WRIT_TASK_ENFORCE))
			flags |= WRIT_F_LSM;
		if (a->from_hook)
			flags |= WRIT_F_CGROUP_HOOK;
	} else if (!a->from_hook) {
		/* cgroup/connect_unix did not run (not loaded here): the connect happened. A denied one is
		 * killed at its exit, before the caller uses the socket (one that failed reached nothing). */
		if (verdict == WRIT_KV_DENY && ret == 0 && (t->flags & WRIT_TASK_ENFORCE)) {
			bpf_send_signal(SIGKILL);
			kill_lineage(t, cgid, bpf_get_current_task_btf()->real_parent->tgid);
			flags |= WRIT_F_KERNEL_DENY;
		}
	} else {
		flags |= WRIT_F_CGROUP_HOOK;
	}
	unix_put_name(a->name, a->name_len, 1);
	bpf_map_delete_elem(&unix_args_map, &id);
	task = bpf_get_current_task_btf();
	if (ret == 0) {
		struct pt_regs *regs = (struct pt_regs *)bpf_task_pt_regs(task);

		have_peer = unix_peer_path(task, (int)regs->di, &peer) == 0;
	}
	emit_unix(t, cgid, ret, verdict, flags, have_peer ? &peer : NULL, 0, verdict == WRIT_KV_USER);
	return 0;
}

#ifndef WRIT_NET_NO_PROGRAMS
SEC("tracepoint/syscalls/sys_exit_connect")
int unix_exit_connect(struct trace_event_raw_sys_exit *ctx)
{
	return unix_connect_exit(ctx->ret);
}
#endif

/* The name from the kernel's copy of the address (struct bpf_sock_addr_kern: uaddr, uaddrlen) into
 * scratch; its length, or -1. */
static __always_inline int unix_hook_name(struct bpf_sock_addr *ctx)
{
	struct bpf_sock_addr_kern *sa;
	__u32 len;

	if (!bpf_ksym_exists(bpf_cast_to_kern_ctx))
		return -1;
	sa = bpf_cast_to_kern_ctx(ctx);
	len = BPF_CORE_READ(sa, uaddrlen);
	len = len > 2 ? len - 2 : 0;
	if (len > 108)
		len = 108;
	unix_put_name((const char *)BPF_CORE_READ(sa, uaddr) + 2, len, 1);
	return len;
}

/* Loaded as cgroup/connect_unix: libbpf 1.1 has no such section name, so the loader sets the expected
 * attach type (BPF_CGROUP_UNIX_CONNECT, looked up in the kernel's BTF) before load, and does not load it
 * where the kernel lacks it. */
#ifndef WRIT_NET_NO_PROGRAMS
SEC("cgroup/connect4")
int cg_connect_unix(struct bpf_sock_addr *ctx)
{
	struct writ_task_info *t;
	struct unix_args *a;
	__u64 cgid, id, h;
	__u32 verdict;
	int len, allow;

	t = lookup_task(&cgid);
	if (!t)
		return 1;
	len = unix_hook_name(ctx);
	if (len < 0)
		return 1;
	verdict = unix_verdict(t, len, &h);
	allow = !((t->flags & WRIT_TASK_ENFORCE) && verdict == WRIT_KV_DENY);
	id = bpf_get_current_pid_tgid();
	a = bpf_map_lookup_elem(&unix_args_map, &id);
	if (a) {
		union writ_scratch *s = scratch();

		a->verdict = verdict;
		a->from_hook = 1;
		a->name_len = len;
		if (s)
			bpf_probe_read_kernel(a->name, sizeof(a->name), s->unix_conn.name);
	} else {
		/* No syscall record will follow (io_uring's connect): report it from here. */
		if (emit_unix(t, cgid, allow ? 0 : -EPERM, verdict, WRIT_F_CGROUP_HOOK, NULL, 0, 0))
			return unreported_send(t, verdict, allow);
	}
	return allow;
}
#endif

/* A datagram to the unix name in scratch (len bytes) without connect(): 1 to let it go, 0 to refuse it
 * (EPERM). Only what is not plainly allowed is reported, rate-limited per name like UDP destinations (the
 * name's hash stands for the address); one only userspace could judge whose record cannot go out is
 * refused (unreported_send). `hook`: WRIT_F_CGROUP_HOOK or WRIT_F_LSM, the rung that judged it. Shared by
 * cgroup/sendmsg_unix and writ_lsm.bpf.c's socket_sendmsg. */
static __always_inline int unix_send(const struct writ_task_info *t, __u64 cgid, __u32 len, __u32 hook)
{
	__u8 addr[16] = {};
	__u32 verdict, suppressed = 0;
	__u64 h;
	int allow, report;

	verdict = unix_verdict(t, len, &h);
	if (verdict == WRIT_KV_ALLOW || verdict == WRIT_KV_NONE)
		return 1;
	allow = !((t->flags & WRIT_TASK_ENFORCE) && verdict == WRIT_KV_DENY);
	__builtin_memcpy(addr, &h, 8);
	report = send_report(t, AF_UNIX, addr, 0, &suppressed);
	if (report > 0 &&
	    emit_unix(t, cgid, allow ? 0 : -EPERM, verdict, hook | WRIT_F_SEND, NULL, suppressed, 0))
		return unreported_send(t, verdict, allow);
	return report < 0 ? unreported_send(t, verdict, allow) : allow;
}

/* Loaded as cgroup/sendmsg_unix (BPF_CGROUP_UNIX_SENDMSG), like cg_connect_unix. */
#ifndef WRIT_NET_NO_PROGRAMS
SEC("cgroup/sendmsg4")
int cg_sendmsg_unix(struct bpf_sock_addr *ctx)
{
	struct writ_task_info *t;
	__u64 cgid;
	int len;

	t = lookup_task(&cgid);
	if (!t)
		return 1;
	len = unix_hook_name(ctx);
	if (len < 0)
		return 1;
	return unix_send(t, cgid, len, WRIT_F_CGROUP_HOOK);
}
#endif

#endif /* WRIT_NET_BPF_H */
