// SPDX-License-Identifier: GPL-2.0
/*
 * writ's top rung: BPF-LSM hooks that both report and enforce, with no syscall tracepoint. Where this
 * object loads, writd attaches none of the main object's syscall tracepoints (one attached syscall
 * tracepoint puts every process of the host on the syscall slow path): exec stays with the sched
 * tracepoints (not syscall ones) plus bprm_check_security, datagram sends with the cgroup hooks, and every
 * other record comes from here, from the tables the main object's maps hold (reused by fd). A separate
 * object because many kernels refuse LSM programs (this project's CI kernel answers EPERM at load): writd
 * probes by loading it and falls back to the tracepoint and cgroup rungs when it cannot.
 *
 * Every hook reports for tasks in every mode, and refuses (EPERM, WRIT_F_KERNEL_DENY | WRIT_F_LSM, outcome
 * `prevented`) only for enforce-mode tasks:
 *  - exec: an exec.deny entry refused before the image is loaded (the sched tracepoint reports the rest);
 *  - open (file_open): every open that reaches the hook, with the path the kernel resolved; a file-table
 *    hit refused. Opens that fail earlier (no such file, DAC, O_PATH) are not seen;
 *  - connect (socket_connect: inet and unix, io_uring's too): reported before it is made (result 0 or
 *    -EPERM: the outcome of an allowed connect is not known here); denied and approval-bound
 *    destinations, and denied unix names (before the lookup), refused;
 *  - a datagram to a unix name without connect(): judged and reported like cgroup/sendmsg_unix
 *    (rate-limited per name), where that cgroup hook is not attached (Linux < 6.7);
 *  - renames, hard links and symlinks (path_rename, path_link, path_symlink) of tasks with files.deny
 *    rules, names resolved by the kernel: one that gives a denied file a new name refused;
 *  - self-protection (bpf/writ_self.bpf.h), for every task process whether or not `writ run`'s seccomp
 *    filter is on it: a signal to writd or its guardian, ptrace-attach access to any process (ptrace,
 *    process_vm_*, pidfd_getfd, /proc/<pid>/mem), any access to writd's or the guardian's, bpf(), signal
 *    ownership and process groups aimed at them, modules and kexec images.
 * A task whose responses include kill (WRIT_TASK_KILL_LINEAGE) has a refused exec's, open's or link's actor
 * (and its parent, where the kfuncs exist) killed here as well, as the tracepoint rung does: the agent's
 * shell must not run its next command while userspace kills the rest of the task.
 */
#include "writ_common.bpf.h"
#define WRIT_NET_NO_PROGRAMS
#include "writ_net.bpf.h"
#define WRIT_SELF_NO_PROGRAMS
#include "writ_self.bpf.h"
#define WRIT_LINK_NO_PROGRAMS
#include "writ_link.bpf.h"
#include "writ_open.bpf.h"

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

/* The syscall the current thread is in (x86_64 orig_ax): what the records name. */
static __always_inline __u32 current_nr(struct task_struct *task)
{
	return ((struct pt_regs *)bpf_task_pt_regs(task))->orig_ax;
}

#define NR_EXECVE 59
#define NR_EXECVEAT 322

static __always_inline int is_open_syscall(__u32 nr)
{
	return nr == NR_OPENAT || nr == NR_OPEN || nr == NR_OPENAT2 || nr == NR_CREAT ||
	       nr == NR_OPEN_BY_HANDLE_AT;
}

/* An open of a task process: a file-table hit of an enforce-mode task refused here (EPERM, nothing opened),
 * reported with the path the kernel resolved, the thread marked so that the syscall's exit does not report
 * it twice (lsm_refused_map). Every other open of an open syscall is reported at its exit (fexit below,
 * open_exit: the result, failed opens too); an open from elsewhere (io_uring) is reported from here,
 * result 0. The exec's own opens of the image and its interpreter are the exec record's. */
SEC("lsm/file_open")
int BPF_PROG(lsm_open, struct file *file, int ret)
{
	struct writ_task_info *t;
	union writ_scratch *s;
	struct writ_open_event *e;
	struct task_struct *task;
	struct path fpath;
	__u32 flags = WRIT_F_LSM_HOOK, len, nr, one = 1;
	__u64 cgid, ino, id;
	int refuse = 0, syscall_open;

	if (ret)
		return ret;
	t = lookup_task(&cgid);
	if (!t)
		return 0;
	task = bpf_get_current_task_btf();
	nr = current_nr(task);
	syscall_open = is_open_syscall(nr);
	if ((syscall_open && !(t->flags & WRIT_TASK_FILE_TABLE)) || nr == NR_EXECVE || nr == NR_EXECVEAT)
		return 0;
	s = scratch();
	if (!s)
		return 0;
	e = &s->open;
	bpf_core_read(&fpath, sizeof(fpath), &file->f_path);
	len = walk_path(&fpath, 0, &flags);
	ino = BPF_CORE_READ(file, f_inode, i_ino);
	e->dev = BPF_CORE_READ(file, f_inode, i_sb, s_dev);
	if (t->flags & WRIT_TASK_FILE_TABLE) {
		struct hash_ctx hc = {.is_exec = 0,
				      .slot = t->slot,
				      .check_file = 1,
				      .check_comp = !!(t->flags & WRIT_TASK_FILE_COMP)};

		path_hash(&hc, len);
		if (!hc.hit && ino) {
			/* A hard link of a denied file: its identity (see open_exit). */
			struct writ_path_key key = {.slot = t->slot,
						    .kind = WRIT_PK_INODE,
						    .hash = writ_file_id_hash(e->dev, ino)};

			hc.hit = bpf_map_lookup_elem(&file_map, &key) != NULL;
		}
		if (hc.hit) {
			flags |= WRIT_F_NEEDS_VERDICT;
			if (t->flags & WRIT_TASK_ENFORCE) {
				refuse = 1;
				flags |= WRIT_F_KERNEL_DENY | WRIT_F_LSM;
			}
		}
	}
	if (syscall_open && !refuse)
		return 0; /* its exit reports it */
	fill_hdr_current(&e->hdr, WRIT_EV_OPEN, cgid, t, task);
	e->result = refuse ? -EPERM : 0;
	e->open_flags = BPF_CORE_READ(file, f_flags); /* O_CREAT/O_TRUNC are cleared only after this hook */
	e->syscall_nr = nr;
	e->path_len = len;
	e->ino = ino;
	e->_pad0 = 0;
	e->hdr.flags = flags;
	e->hdr.size = offsetof(struct writ_open_event, path) + (len & (WRIT_PATH_MAX - 1));
	if (len >= WRIT_PATH_MAX)
		e->hdr.size = offsetof(struct writ_open_event, path) + WRIT_PATH_MAX;
	if (!refuse) {
		submit(e, e->hdr.size, WRIT_EV_OPEN, flags, t, 1);
		return 0;
	}
	id = bpf_get_current_pid_tgid();
	bpf_map_update_elem(&lsm_refused_map, &id, &one, BPF_ANY);
	submit(e, e->hdr.size, WRIT_EV_OPEN, flags, t, 0); /* refused in place */
	lsm_kill(t, cgid, e->hdr.ppid);
	return -EPERM;
}

/* The open syscalls' exits, as the tracepoint rung's sys_exit programs make them (writ_open.bpf.h): fexit
 * runs only for these syscalls, where a syscall tracepoint would put every syscall of every process on
 * the slow path. */
SEC("fexit/__x64_sys_openat")
int BPF_PROG(fx_openat, const struct pt_regs *regs, long ret)
{
	return open_exit(ret, NR_OPENAT);
}

SEC("fexit/__x64_sys_openat2")
int BPF_PROG(fx_openat2, const struct pt_regs *regs, long ret)
{
	return open_exit(ret, NR_OPENAT2);
}

SEC("fexit/__x64_sys_open")
int BPF_PROG(fx_open, const struct pt_regs *regs, long ret)
{
	return open_exit(ret, NR_OPEN);
}

SEC("fexit/__x64_sys_creat")
int BPF_PROG(fx_creat, const struct pt_regs *regs, long ret)
{
	return open_exit(ret, NR_CREAT);
}

SEC("fexit/__x64_sys_open_by_handle_at")
int BPF_PROG(fx_open_by_handle_at, const struct pt_regs *regs, long ret)
{
	return open_exit(ret, NR_OPEN_BY_HANDLE_AT);
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

#define NR_CONNECT 42

/* A unix connect of a task process, judged from the kernel's copy of the name before the socket is looked
 * up: a denied name in an enforce-mode task is refused (EPERM; a socket that does not exist is refused
 * too). The syscall's exit reports it with its result and the socket it reached (unix_connect_exit); a
 * connect with no syscall (io_uring's) is reported from here. */
static __always_inline int lsm_unix_connect(const struct writ_task_info *t, __u64 cgid,
					    struct sockaddr *address, int addrlen, __u32 nr)
{
	struct unix_args a = {};
	union writ_scratch *s;
	__u32 verdict, len;
	__u64 h, id;
	int refuse;

	len = lsm_unix_name(address, addrlen);
	verdict = unix_verdict(t, len, &h);
	refuse = (t->flags & WRIT_TASK_ENFORCE) && verdict == WRIT_KV_DENY;
	s = scratch();
	if (nr == NR_CONNECT && s) {
		a.verdict = verdict;
		a.lsm = 1;
		a.name_len = len;
		bpf_probe_read_kernel(a.name, sizeof(a.name), s->unix_conn.name);
		id = bpf_get_current_pid_tgid();
		if (!bpf_map_update_elem(&unix_args_map, &id, &a, BPF_ANY))
			return refuse ? -EPERM : 0;
		count(WRIT_EV_CONNECT, WRIT_CNT_DROPPED); /* full: reported from here instead */
	}
	emit_unix(t, cgid, refuse ? -EPERM : 0, verdict, WRIT_F_LSM_HOOK | (refuse ? WRIT_F_LSM : 0), NULL, 0,
		  verdict == WRIT_KV_USER);
	return refuse ? -EPERM : 0;
}

/* Every connect of a task process, in every mode: a denied or approval-bound destination of an enforce-mode
 * task refused (EPERM, no packet sent). The syscall's exit reports it with its result (connect_exit, from
 * connect_args_map, as sys_exit_connect does on the tracepoint rung). A connect with no syscall (io_uring's)
 * is reported from here, and leaves a mark for cgroup/connect4|6, which runs next and must not report it
 * again (a TCP Fast Open sendto reaches only the cgroup hook, which reports it). */
SEC("lsm/socket_connect")
int BPF_PROG(lsm_connect, struct socket *sock, struct sockaddr *address, int addrlen, int ret)
{
	struct writ_task_info *t;
	struct connect_args a = {};
	__u8 addr[16] = {};
	__u16 family, port;
	__u32 verdict, nr, flags = WRIT_F_LSM_HOOK;
	__u64 cgid, id;
	int refuse;

	if (ret)
		return ret;
	t = lookup_task(&cgid);
	if (!t)
		return 0;
	nr = current_nr(bpf_get_current_task_btf());
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
		return lsm_unix_connect(t, cgid, address, addrlen, nr);
	} else {
		return 0;
	}
	/* A DNS query: cgroup/connect4|6, next, sends it to the stub, which judges and reports it. */
	if (dns_redirected(port, BPF_CORE_READ(sock, sk, sk_protocol)))
		return 0;
	verdict = net_verdict(t, family, addr, port);
	refuse = (t->flags & WRIT_TASK_ENFORCE) && (verdict == WRIT_KV_DENY || verdict == WRIT_KV_APPROVAL);
	if (refuse)
		flags |= WRIT_F_LSM;
	a.family = family;
	a.port = port;
	__builtin_memcpy(a.addr, addr, 16);
	a.verdict = verdict;
	a.flags = flags;
	id = bpf_get_current_pid_tgid();
	if (nr == NR_CONNECT && !bpf_map_update_elem(&connect_args_map, &id, &a, BPF_ANY))
		return refuse ? -EPERM : 0;
	/* io_uring retries a connect that returned EINPROGRESS: a stream socket already connecting or
	 * connected reaches no new destination (EALREADY, EISCONN), and was reported by its first call. */
	if (!refuse && BPF_CORE_READ(sock, type) == SOCK_STREAM &&
	    BPF_CORE_READ(sock, state) != SS_UNCONNECTED)
		return 0;
	emit_connect(t, cgid, family, port, addr, refuse ? -EPERM : 0, verdict, flags);
	if (refuse)
		return -EPERM;
	bpf_map_update_elem(&lsm_connect_map, &id, &a, BPF_ANY);
	return 0;
}

/* The connect syscall's exit: the inet record (connect_exit) or the unix one (unix_connect_exit). */
SEC("fexit/__x64_sys_connect")
int BPF_PROG(fx_connect, const struct pt_regs *regs, long ret)
{
	connect_exit(ret);
	return unix_connect_exit(ret);
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

/* ---- renames, links and symlinks ------------------------------------------------------------------ */

/* One name of the call as the kernel resolved it ({mount, dentry}: the dentry of a name about to be
 * created is in place, negative): walked leaf first into work_map, checked against the task's file table,
 * copied into the link record's data at pos. Its length. */
static __always_inline __u32 lsm_link_name(struct writ_task_info *t, __u32 pos, struct vfsmount *mnt,
					   struct dentry *d, int force_comp, __u32 *hit, __u64 *leaf)
{
	union writ_scratch *s = scratch();
	struct hash_ctx hc = {.is_exec = WRIT_BUF_WORK, .slot = t->slot, .check_file = 1};
	char *work = path_buf(WRIT_BUF_WORK);
	struct path p = {.mnt = mnt, .dentry = d};
	__u32 flags = 0, out;

	*hit = 0;
	*leaf = 0;
	if (!s || !work)
		return 0;
	out = walk_path_at(&p, WRIT_BUF_WORK, 0, 0, &flags);
	hc.check_comp = force_comp || (t->flags & WRIT_TASK_FILE_COMP);
	path_hash(&hc, out);
	*hit = hc.hit;
	*leaf = hc.leaf_hash;
	if (out > WRIT_PATH_MAX)
		out = WRIT_PATH_MAX;
	asm volatile("" : "+r"(pos));
	bpf_probe_read_kernel(s->link.data + (pos & (WRIT_LINK_DATA - 1)), out, work);
	return out;
}

/* A rename, hard link or symlink of a task with files.deny rules, its names resolved by the kernel: the
 * record the tracepoint rung's sys_enter program makes (bpf/writ_link.bpf.h), and a call that gives a
 * denied file a name (or a name below a denied directory) in an enforce-mode task refused (EPERM: the
 * name never exists, so nothing is carried over). `nr`: the syscall the record names, when the call did
 * not come from one of its own (io_uring). */
static __always_inline int lsm_link(struct writ_task_info *t, __u64 cgid, __u32 nr, __u32 old_len,
				    __u32 hit_old, __u32 raw_old, struct vfsmount *new_mnt,
				    struct dentry *new_d, __u32 call_flags)
{
	struct task_struct *task = bpf_get_current_task_btf();
	__u32 hit_new, new_len, flags = WRIT_F_LSM_HOOK, lf = 0, cur = current_nr(task);
	__u64 leaf_new;

	if (old_len > WRIT_PATH_MAX)
		old_len = WRIT_PATH_MAX;
	new_len = lsm_link_name(t, old_len, new_mnt, new_d, 1, &hit_new, &leaf_new);
	lf = link_flags(hit_old, hit_new, raw_old, 0);
	if ((hit_old || hit_new) && (t->flags & WRIT_TASK_FILE_TABLE)) {
		flags |= WRIT_F_NEEDS_VERDICT;
		if (t->flags & WRIT_TASK_ENFORCE)
			flags |= WRIT_F_KERNEL_DENY | WRIT_F_LSM;
	}
	if ((nr == NR_RENAMEAT2 && (cur == NR_RENAME || cur == NR_RENAMEAT)) ||
	    (nr == NR_LINKAT && cur == NR_LINK) || (nr == NR_SYMLINKAT && cur == NR_SYMLINK))
		nr = cur;
	link_submit(t, cgid, task, nr, flags, lf, call_flags, old_len, new_len);
	if (!(flags & WRIT_F_LSM))
		return 0;
	lsm_kill(t, cgid, task->real_parent->tgid);
	return -EPERM;
}

SEC("lsm/path_rename")
int BPF_PROG(lsm_rename, const struct path *old_dir, struct dentry *old_dentry, const struct path *new_dir,
	     struct dentry *new_dentry, unsigned int rflags, int ret)
{
	struct writ_task_info *t;
	__u32 hit, len;
	__u64 cgid, leaf;

	if (ret)
		return ret;
	t = lookup_task(&cgid);
	if (!t || !(t->flags & WRIT_TASK_FILE_LINK))
		return 0;
	len = lsm_link_name(t, 0, old_dir->mnt, old_dentry, 0, &hit, &leaf);
	return lsm_link(t, cgid, NR_RENAMEAT2, len, hit, 0, new_dir->mnt, new_dentry, rflags);
}

SEC("lsm/path_link")
int BPF_PROG(lsm_hardlink, struct dentry *old_dentry, const struct path *new_dir, struct dentry *new_dentry,
	     int ret)
{
	struct writ_task_info *t;
	__u32 hit, len;
	__u64 cgid, leaf;

	if (ret)
		return ret;
	t = lookup_task(&cgid);
	if (!t || !(t->flags & WRIT_TASK_FILE_LINK))
		return 0;
	/* A hard link stays on its mount (EXDEV before this hook). */
	len = lsm_link_name(t, 0, new_dir->mnt, old_dentry, 0, &hit, &leaf);
	return lsm_link(t, cgid, NR_LINKAT, len, hit, 0, new_dir->mnt, new_dentry, 0);
}

SEC("lsm/path_symlink")
int BPF_PROG(lsm_symlink, const struct path *dir, struct dentry *dentry, const char *old_name, int ret)
{
	struct writ_task_info *t;
	__u32 hit, raw, len;
	__u64 cgid, leaf;

	if (ret)
		return ret;
	t = lookup_task(&cgid);
	if (!t || !(t->flags & WRIT_TASK_FILE_LINK))
		return 0;
	/* The content as written (the kernel's copy): relative content is relative to the link's directory
	 * when followed, so its components are checked and it is sent as is. */
	len = link_name(t, bpf_get_current_task_btf(), 0, old_name, AT_FDCWD, 0, 1, 0, &hit, &leaf, &raw, 1);
	return lsm_link(t, cgid, NR_SYMLINKAT, len, hit, raw, dir->mnt, dentry, 0);
}

/* ---- self-protection ----------------------------------------------------------------------------- */

#define PTRACE_MODE_ATTACH 0x02

/* Refuses the current call of a task process and reports it: the record the tracepoint rung's syscall-exit
 * program makes (bpf/writ_self.bpf.h), aimed at `kind`/`tpid`. */
static __always_inline int lsm_self_refuse(const struct writ_task_info *t, __u64 cgid, __u32 kind, __u32 tpid)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct pt_regs *regs = (struct pt_regs *)bpf_task_pt_regs(task);
	__u32 flags = WRIT_F_NEEDS_VERDICT | WRIT_F_LSM | WRIT_F_KERNEL_DENY | WRIT_F_LSM_HOOK;
	struct writ_self_event e = {};

	e.args[0] = regs->di;
	e.args[1] = regs->si;
	e.args[2] = regs->dx;
	self_submit(&e, t, cgid, task, regs->orig_ax, -EPERM, kind, tpid, flags, 0); /* refused in place */
	return -EPERM;
}

/* A task process's call aimed at process `tgid`: refused when that is writd or its guardian, or when
 * `any` (attach-mode access) and it is any other process. */
static __always_inline int lsm_self_target(__u32 tgid, int any)
{
	struct writ_task_info *t;
	__u32 kind;
	__u64 cgid;

	t = lookup_task(&cgid);
	if (!t)
		return 0;
	kind = self_pid_kind(tgid, 0);
	if (!kind) {
		if (!any)
			return 0;
		kind = WRIT_SELF_OTHER;
	}
	return lsm_self_refuse(t, cgid, kind, tgid);
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
	struct writ_task_info *t;
	__u64 cgid;

	if (ret)
		return ret;
	t = lookup_task(&cgid);
	return t ? lsm_self_refuse(t, cgid, WRIT_SELF_NONE, 0) : 0;
}

/* Signal ownership aimed at writd or its guardian (the kernel signals a file's owner, SIGKILL too with
 * F_SETSIG, when the file becomes ready): fcntl F_SETOWN / F_SETOWN_EX and ioctl FIOSETOWN / SIOCSPGRP.
 * The owner is read as the syscall-exit program reads it (self_classify); an owner elsewhere is allowed. */
static __always_inline int lsm_self_owner(__u32 nr, __u32 cmd, unsigned long arg)
{
	struct writ_task_info *t;
	__u32 tpid = 0;
	__u64 cgid;
	int k;

	t = lookup_task(&cgid);
	if (!t)
		return 0;
	k = self_classify(nr, 0, cmd, arg, &tpid);
	if (k != WRIT_SELF_WRITD && k != WRIT_SELF_GUARDIAN)
		return 0;
	return lsm_self_refuse(t, cgid, k, tpid);
}

SEC("lsm/file_fcntl")
int BPF_PROG(lsm_fcntl, struct file *file, unsigned int cmd, unsigned long arg, int ret)
{
	if (ret || (cmd != F_SETOWN && cmd != F_SETOWN_EX))
		return ret;
	return lsm_self_owner(NR_FCNTL, cmd, arg);
}

SEC("lsm/file_ioctl")
int BPF_PROG(lsm_ioctl, struct file *file, unsigned int cmd, unsigned long arg, int ret)
{
	if (ret || (cmd != FIOSETOWN && cmd != SIOCSPGRP))
		return ret;
	return lsm_self_owner(NR_IOCTL, cmd, arg);
}

/* The signal a file's owner gets when the file is ready (SIGIO, SIGURG, or F_SETSIG's, SIGKILL too), at
 * delivery, whoever set the owner: refused when it would reach writd or its guardian, which hand no file
 * to a signal owner. The hooks above judge the owner from the caller's memory before the kernel copies it
 * (F_SETOWN_EX, FIOSETOWN, SIOCSPGRP take a pointer): a second thread rewriting it in between would pass
 * them, and the signal does not go through task_kill. May run in interrupt context: no task to report. */
SEC("lsm/file_send_sigiotask")
int BPF_PROG(lsm_sigiotask, struct task_struct *tsk, struct fown_struct *fown, int sig, int ret)
{
	if (ret)
		return ret;
	return self_pid_kind(tsk->tgid, 0) ? -EPERM : 0;
}

/* A pidfd of writd or its guardian (no LSM hook sees pidfd_open): reported at the syscall's exit, and the
 * caller of an enforce-mode task SIGKILLed before it returns to use it, as the tracepoint rung does at
 * sys_enter without the filter. Every use of such a pidfd meets a hook above anyway (a signal: task_kill;
 * pidfd_getfd: ptrace_access_check). */
SEC("fexit/__x64_sys_pidfd_open")
int BPF_PROG(fx_pidfd_open, const struct pt_regs *regs, long ret)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct pt_regs *uregs = (struct pt_regs *)bpf_task_pt_regs(task);
	__u32 flags = WRIT_F_NEEDS_VERDICT | WRIT_F_LSM_HOOK, tpid = 0;
	struct writ_self_event e = {};
	struct writ_task_info *t;
	__u64 cgid;
	int k;

	t = lookup_task(&cgid);
	if (!t)
		return 0;
	e.args[0] = uregs->di;
	e.args[1] = uregs->si;
	e.args[2] = uregs->dx;
	k = self_classify(NR_PIDFD_OPEN, e.args[0], e.args[1], e.args[2], &tpid);
	if (k < 0)
		return 0;
	if (t->flags & WRIT_TASK_SELF_KILL) {
		bpf_send_signal(SIGKILL);
		flags |= WRIT_F_KERNEL_DENY;
	}
	self_submit(&e, t, cgid, task, NR_PIDFD_OPEN, ret, k, tpid, flags, 1);
	return 0;
}

/* Joining writd's process group: kill(0) would then signal writd. */
SEC("lsm/task_setpgid")
int BPF_PROG(lsm_setpgid, struct task_struct *p, pid_t pgid, int ret)
{
	struct writ_task_info *t;
	__u64 cgid;
	__u32 k;

	if (ret || pgid <= 0)
		return ret;
	k = self_pid_kind(pgid, 1);
	if (!k)
		return 0;
	t = lookup_task(&cgid);
	return t ? lsm_self_refuse(t, cgid, k, pgid) : 0;
}

/* A kernel module or a kexec image from a task process (init_module, finit_module, kexec_load,
 * kexec_file_load): code in the kernel is beyond every rung. Firmware is the kernel's own request. */
SEC("lsm/kernel_read_file")
int BPF_PROG(lsm_read_file, struct file *file, enum kernel_read_file_id id, bool contents, int ret)
{
	struct writ_task_info *t;
	__u64 cgid;

	if (ret || id == READING_FIRMWARE)
		return ret;
	t = lookup_task(&cgid);
	return t ? lsm_self_refuse(t, cgid, WRIT_SELF_NONE, 0) : 0;
}

SEC("lsm/kernel_load_data")
int BPF_PROG(lsm_load_data, enum kernel_load_data_id id, bool contents, int ret)
{
	struct writ_task_info *t;
	__u64 cgid;

	if (ret || id == LOADING_FIRMWARE)
		return ret;
	t = lookup_task(&cgid);
	return t ? lsm_self_refuse(t, cgid, WRIT_SELF_NONE, 0) : 0;
}
