/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Renames, hard links and symlinks (included by writ.bpf.c after the open and connect sections): a denied
 * file must not be readable under a name no files.deny rule matches (`mv .env e.txt; cat e.txt`,
 * `ln .ssh/id_ed25519 k; cat k`). Component denies (any .env, anything below any .ssh) match names, and a
 * new name is a new match; exact and directory denies also hold the denied files' identities (open_exit),
 * but a file created below a denied directory after the task started has none.
 *
 * sys_enter of rename, renameat, renameat2, link, linkat, symlink and symlinkat, for tasks with files.deny
 * rules (WRIT_TASK_FILE_LINK): each name is read from the caller's memory, made absolute as leaf-first
 * components (a relative name joined to its cwd or dirfd, walked like an opened file's path; "." and ".."
 * applied lexically) and checked against the task's file table in the same backwards hash pass as an open:
 * exact paths, denied directories, components. A hit in an enforce-mode task SIGKILLs the caller at entry
 * -- a tracepoint cannot refuse the call, so the rename happens, but the caller never returns to use it --
 * and its parent in the task (kill_lineage), and, when the *existing* name was denied, the new name's last
 * component joins the task's component denies before the call runs: any open of it, by any process of the
 * task, is killed at its exit from then on. The record goes to userspace in every case, which judges the
 * names against every files.deny rule (globs too) and reports the violation.
 *
 * The names are read at entry, before the kernel copies them: another thread of the caller that rewrites
 * them in between can make writ judge other names (docs/threat-model.md, known limits).
 */
#ifndef WRIT_LINK_BPF_H
#define WRIT_LINK_BPF_H

#define NR_RENAME 82
#define NR_LINK 86
#define NR_SYMLINK 88
#define NR_RENAMEAT 264
#define NR_LINKAT 265
#define NR_SYMLINKAT 266
#define NR_RENAMEAT2 316
#define AT_FDCWD -100
#define AT_EMPTY_PATH 0x1000

/* Turns the raw name at data[pos, pos + len) of scratch's link record into leaf-first components in
 * work_map, scanning it backwards one byte per iteration. */
struct enc_ctx {
	__u32 pos;
	__u32 len;   /* bytes of the name, its NUL not included */
	__u32 end;   /* end (exclusive) of the component being scanned */
	__u32 out;   /* bytes written to work_map */
	__u32 skip;  /* ".." seen: components on the root side still to leave out */
	__u32 trunc; /* a component or the whole longer than the buffer holds */
};

static long enc_step(__u32 i, void *data)
{
	struct enc_ctx *c = data;
	union writ_scratch *s = scratch();
	char *work = path_buf(WRIT_BUF_WORK);
	__u32 idx, start, clen;
	char ch, c0, c1;

	if (!s || !work || i >= c->len)
		return 1;
	idx = c->len - 1 - i;
	ch = s->link.data[(c->pos + idx) & (WRIT_LINK_DATA - 1)];
	if (ch != '/' && idx != 0)
		return 0;
	start = ch == '/' ? idx + 1 : 0;
	clen = c->end > start ? c->end - start : 0;
	c->end = idx;
	if (clen == 0)
		return 0;
	c0 = s->link.data[(c->pos + start) & (WRIT_LINK_DATA - 1)];
	c1 = s->link.data[(c->pos + start + 1) & (WRIT_LINK_DATA - 1)];
	if (c0 == '.' && clen == 1)
		return 0;
	if (c0 == '.' && c1 == '.' && clen == 2) {
		c->skip++;
		return 0;
	}
	if (c->skip) {
		c->skip--;
		return 0;
	}
	if (clen > WRIT_NAME_MAX - 1) {
		clen = WRIT_NAME_MAX - 1;
		c->trunc = 1;
	}
	if (c->out > WRIT_PATH_MAX - WRIT_NAME_MAX) {
		c->trunc = 1;
		return 1;
	}
	bpf_probe_read_kernel(work + (c->out & (WRIT_PATH_MAX - 1)), clen & (WRIT_NAME_MAX - 1),
			      s->link.data + ((c->pos + start) & (WRIT_LINK_DATA - 1)));
	c->out += clen;
	work[c->out & (WRIT_PATH_MAX - 1)] = 0;
	c->out++;
	return 0;
}

/* The directory a relative name starts from: the cwd, or the file dfd names (for AT_EMPTY_PATH, that
 * file itself). 0 with *p filled. */
static __always_inline int link_base(struct task_struct *task, __s32 dfd, struct path *p)
{
	struct file **fds;
	struct file *f = NULL;

	if (dfd == AT_FDCWD) {
		bpf_core_read(p, sizeof(*p), &task->fs->pwd);
		return p->dentry ? 0 : -1;
	}
	if (dfd < 0)
		return -1;
	fds = task->files->fdt->fd;
	bpf_core_read(&f, sizeof(f), &fds[dfd & 0xfffff]);
	if (!f)
		return -1;
	bpf_core_read(p, sizeof(*p), &f->f_path);
	return p->dentry ? 0 : -1;
}

/* One name of the call at data + pos: read from `uname`, checked, and left in data[] resolved (or raw).
 * Returns the bytes it takes in data[]; *hit when the file table denies it; *leaf its last component's
 * hash (0 if none); *raw when it stays the string as passed. */
static __always_inline __u32 link_name(struct writ_task_info *t, struct task_struct *task, __u32 pos,
				       const char *uname, __s32 dfd, int empty_ok, int content,
				       int force_comp, __u32 *hit, __u64 *leaf, __u32 *raw, const int kern)
{
	union writ_scratch *s = scratch();
	struct enc_ctx c = {};
	struct hash_ctx hc = {.is_exec = WRIT_BUF_WORK, .slot = t->slot, .check_file = 1};
	struct path base;
	__u32 flags = 0, n, relative;
	char *work = path_buf(WRIT_BUF_WORK);
	long r;

	*hit = 0;
	*leaf = 0;
	*raw = 0;
	if (!s || !work)
		return 0;
	/* The masks below are what the verifier bounds the offsets by; clang would drop them where it
	 * knows pos is small, so it must not know. */
	asm volatile("" : "+r"(pos));
	if (kern) /* a symlink's content, the kernel's copy (lsm/path_symlink) */
		r = bpf_probe_read_kernel_str(s->link.data + (pos & (WRIT_LINK_DATA - 1)), WRIT_PATH_MAX,
					      uname);
	else
		r = bpf_probe_read_user_str(s->link.data + (pos & (WRIT_LINK_DATA - 1)), WRIT_PATH_MAX,
					    uname);
	if (r <= 0)
		return 0;
	n = r;
	relative = s->link.data[pos & (WRIT_LINK_DATA - 1)] != '/';
	c.pos = pos;
	c.len = n - 1;
	c.end = n - 1;
	bpf_loop(c.len, enc_step, &c, 0);
	if (relative && content) {
		/* A symlink's relative content is relative to the link's own directory, when it is followed:
		 * its components are checked, the string is sent as is. */
		hc.comp_only = 1;
		*raw = 1;
	} else if (relative) {
		if ((n > 1 || empty_ok) && link_base(task, dfd, &base) == 0)
			c.out = walk_path_at(&base, WRIT_BUF_WORK, c.out, c.skip, &flags);
		else
			*raw = 1;
	}
	hc.check_comp = force_comp || (t->flags & WRIT_TASK_FILE_COMP);
	if (*raw && !hc.comp_only)
		hc.comp_only = 1; /* no base: the components as written are all there is */
	path_hash(&hc, c.out);
	*hit = hc.hit;
	*leaf = hc.leaf_hash;
	if (*raw)
		return n;
	/* The resolved name replaces the raw one (read already). */
	if (c.out > WRIT_PATH_MAX)
		c.out = WRIT_PATH_MAX;
	bpf_probe_read_kernel(s->link.data + (pos & (WRIT_LINK_DATA - 1)), c.out, work);
	return c.out;
}

/* The new name's last component joins the task's component denies (as a file's name and as a directory's):
 * the denied file under its new name stays denied in the kernel, for every process of the task. */
static __always_inline int link_taint(struct writ_task_info *t, __u64 leaf)
{
	struct writ_path_key k = {.slot = t->slot, .kind = WRIT_PK_LEAF, .hash = leaf};
	__u32 deny = WRIT_KV_DENY;

	if (!leaf || bpf_map_update_elem(&file_map, &k, &deny, BPF_ANY))
		return 0;
	k.kind = WRIT_PK_DIR;
	bpf_map_update_elem(&file_map, &k, &deny, BPF_ANY);
	/* Not atomic: userspace rewrites the entry only when it re-arms the task, and concurrent taints set
	 * the same bits. */
	t->flags |= WRIT_TASK_FILE_TABLE | WRIT_TASK_FILE_COMP;
	return 1;
}

/* The record's link_flags: which names the kernel's file table denies, which stay as passed. */
static __always_inline __u32 link_flags(__u32 hit_old, __u32 hit_new, __u32 raw_old, __u32 raw_new)
{
	return (hit_old ? WRIT_LINK_HIT_OLD : 0) | (hit_new ? WRIT_LINK_HIT_NEW : 0) |
	       (raw_old ? WRIT_LINK_OLD_RAW : 0) | (raw_new ? WRIT_LINK_NEW_RAW : 0);
}

/* The link record in scratch, its names in data[] already (old_len + new_len bytes): header set, submitted.
 */
static __always_inline void link_submit(struct writ_task_info *t, __u64 cgid, struct task_struct *task,
					__u32 nr, __u32 flags, __u32 lf, __u32 call_flags, __u32 old_len,
					__u32 new_len)
{
	union writ_scratch *s = scratch();
	struct writ_link_event *e;

	if (!s)
		return;
	e = &s->link;
	fill_hdr_current(&e->hdr, WRIT_EV_LINK, cgid, t, task);
	e->hdr.flags = flags;
	e->syscall_nr = nr;
	e->link_flags = lf;
	e->call_flags = call_flags;
	e->old_len = old_len;
	e->new_len = new_len;
	e->_pad0 = 0;
	e->hdr.size =
		offsetof(struct writ_link_event, data) + ((old_len + new_len) & (2 * WRIT_PATH_MAX - 1));
	if (old_len + new_len >= 2 * WRIT_PATH_MAX)
		e->hdr.size = offsetof(struct writ_link_event, data) + 2 * WRIT_PATH_MAX;
	submit(e, e->hdr.size, WRIT_EV_LINK, flags, t, 1);
}

static __always_inline int link_enter(__u32 nr, __s32 olddfd, const char *oldp, __s32 newdfd,
				      const char *newp, __u32 call_flags)
{
	struct writ_task_info *t;
	struct task_struct *task;
	union writ_scratch *s;
	__u32 hit_old, hit_new, raw_old, raw_new, old_len, new_len, flags = 0, lf = 0;
	__u64 cgid, leaf_old, leaf_new;
	int is_symlink = nr == NR_SYMLINK || nr == NR_SYMLINKAT;

	t = lookup_task(&cgid);
	if (!t || !(t->flags & WRIT_TASK_FILE_LINK))
		return 0;
	s = scratch();
	if (!s)
		return 0;
	task = bpf_get_current_task_btf();
	old_len = link_name(t, task, 0, oldp, olddfd, nr == NR_LINKAT && (call_flags & AT_EMPTY_PATH),
			    is_symlink, 0, &hit_old, &leaf_old, &raw_old, 0);
	if (old_len > WRIT_PATH_MAX)
		old_len = WRIT_PATH_MAX;
	/* The new name's last component is hashed whatever the task's tables hold: it may be tainted. */
	new_len = link_name(t, task, old_len, newp, newdfd, 0, 0, 1, &hit_new, &leaf_new, &raw_new, 0);
	if (new_len > WRIT_PATH_MAX)
		new_len = WRIT_PATH_MAX;
	lf = link_flags(hit_old, hit_new, raw_old, raw_new);
	if ((hit_old || hit_new) && (t->flags & WRIT_TASK_FILE_TABLE)) {
		flags |= WRIT_F_NEEDS_VERDICT;
		if (t->flags & WRIT_TASK_ENFORCE) {
			bpf_send_signal(SIGKILL);
			kill_lineage(t, cgid, task->real_parent->tgid);
			flags |= WRIT_F_KERNEL_DENY;
			/* A denied file about to get a name no rule matches (a symlink's target is resolved
			 * when it is opened: nothing to carry over). */
			if (hit_old && !hit_new && !is_symlink && link_taint(t, leaf_new))
				lf |= WRIT_LINK_TAINTED;
		}
	}
	link_submit(t, cgid, task, nr, flags, lf, call_flags, old_len, new_len);
	return 0;
}

#ifndef WRIT_LINK_NO_PROGRAMS /* writ_lsm.bpf.c takes the helpers only */
SEC("tracepoint/syscalls/sys_enter_rename")
int link_rename(struct trace_event_raw_sys_enter *ctx)
{
	return link_enter(NR_RENAME, AT_FDCWD, (const char *)ctx->args[0], AT_FDCWD,
			  (const char *)ctx->args[1], 0);
}

SEC("tracepoint/syscalls/sys_enter_renameat")
int link_renameat(struct trace_event_raw_sys_enter *ctx)
{
	return link_enter(NR_RENAMEAT, ctx->args[0], (const char *)ctx->args[1], ctx->args[2],
			  (const char *)ctx->args[3], 0);
}

SEC("tracepoint/syscalls/sys_enter_renameat2")
int link_renameat2(struct trace_event_raw_sys_enter *ctx)
{
	return link_enter(NR_RENAMEAT2, ctx->args[0], (const char *)ctx->args[1], ctx->args[2],
			  (const char *)ctx->args[3], ctx->args[4]);
}

SEC("tracepoint/syscalls/sys_enter_link")
int link_link(struct trace_event_raw_sys_enter *ctx)
{
	return link_enter(NR_LINK, AT_FDCWD, (const char *)ctx->args[0], AT_FDCWD, (const char *)ctx->args[1],
			  0);
}

SEC("tracepoint/syscalls/sys_enter_linkat")
int link_linkat(struct trace_event_raw_sys_enter *ctx)
{
	return link_enter(NR_LINKAT, ctx->args[0], (const char *)ctx->args[1], ctx->args[2],
			  (const char *)ctx->args[3], ctx->args[4]);
}

SEC("tracepoint/syscalls/sys_enter_symlink")
int link_symlink(struct trace_event_raw_sys_enter *ctx)
{
	return link_enter(NR_SYMLINK, AT_FDCWD, (const char *)ctx->args[0], AT_FDCWD,
			  (const char *)ctx->args[1], 0);
}

SEC("tracepoint/syscalls/sys_enter_symlinkat")
int link_symlinkat(struct trace_event_raw_sys_enter *ctx)
{
	return link_enter(NR_SYMLINKAT, AT_FDCWD, (const char *)ctx->args[0], ctx->args[1],
			  (const char *)ctx->args[2], 0);
}

#endif

#endif /* WRIT_LINK_BPF_H */
