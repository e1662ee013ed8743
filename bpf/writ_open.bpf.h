/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The record of an open, made at the open syscall's exit: by the syscall-exit tracepoints (writ.bpf.c) on
 * the tracepoint rung, by fexit of the syscalls on the LSM rung (writ_lsm.bpf.c), which attaches no
 * syscall tracepoint. Both see every open the syscall made or failed, with its result.
 */
#ifndef WRIT_OPEN_BPF_H
#define WRIT_OPEN_BPF_H

/* Syscall numbers travel with the record so the decoder can name the syscall. x86_64 numbers. */
#define NR_OPEN 2
#define NR_CREAT 85
#define NR_OPENAT 257
#define NR_OPENAT2 437
#define NR_OPEN_BY_HANDLE_AT 304

/*
 * One program per open syscall, at its exit. The arguments come from the user registers saved at syscall
 * entry (x86_64: di, si, dx), which nothing on the open path rewrites (ptrace and seccomp act before
 * sys_enter; syscall tracepoints skip compat syscalls), so they are exactly what sys_enter would have
 * seen. This replaces a sys_enter program per syscall and its pid_tgid-keyed argument map (an update at
 * enter, a lookup and a delete at exit): one program run and three hash operations less per open, for
 * processes inside tasks and outside alike.
 */
static __always_inline int open_exit(long ret, __u32 nr)
{
	struct writ_task_info *t;
	union writ_scratch *s;
	struct writ_open_event *e;
	struct task_struct *task;
	struct pt_regs *regs;
	__u64 cgid, filename;
	__u32 flags = 0, open_flags;

	t = lookup_task(&cgid);
	if (!t)
		return 0;
	s = scratch();
	if (!s)
		return 0;
	task = bpf_get_current_task_btf();
	regs = (struct pt_regs *)bpf_task_pt_regs(task);
	switch (nr) {
	/* regs is a BTF pointer (bpf_task_pt_regs): direct loads. */
	case NR_OPENAT:
		filename = regs->si;
		open_flags = regs->dx;
		break;
	case NR_OPENAT2: {
		__u64 how_flags = 0;

		filename = regs->si;
		bpf_probe_read_user(&how_flags, sizeof(how_flags), (void *)regs->dx); /* open_how.flags */
		open_flags = (__u32)how_flags;
		break;
	}
	case NR_OPEN:
		filename = regs->di;
		open_flags = regs->si;
		break;
	case NR_OPEN_BY_HANDLE_AT:
		/* (mount_fd, handle, flags): a file handle, no name. An opened file is walked like any
		 * other; a failed call has no path (unresolved, empty). */
		filename = 0;
		open_flags = regs->dx;
		break;
	default: /* creat */
		filename = regs->di;
		open_flags = O_CREAT | O_WRONLY | O_TRUNC;
		break;
	}
	e = &s->open;
	fill_hdr_current(&e->hdr, WRIT_EV_OPEN, cgid, t, task);
	e->result = ret;
	e->open_flags = open_flags;
	e->syscall_nr = nr;

	e->ino = 0;
	e->dev = 0;
	e->_pad0 = 0;
	if (ret >= 0) {
		/* The file the kernel actually opened: current->files->fdt->fd[ret]->f_path. task is a BTF
		 * pointer: files and fdt are direct loads; the fd array is indexed by a variable, so that
		 * slot is a probe read. */
		struct file **fds = task->files->fdt->fd;
		struct file *f = NULL;
		struct path fpath;

		bpf_core_read(&f, sizeof(f), &fds[ret & 0xfffff]);
		if (f) {
			if (bpf_ksym_exists(bpf_rdonly_cast)) {
				/* The file as a read-only BTF pointer: its fields are plain loads. */
				struct file *fb = bpf_rdonly_cast(f, bpf_core_type_id_kernel(struct file));
				struct inode *ib = fb->f_inode;

				fpath = fb->f_path;
				if (ib) {
					e->ino = ib->i_ino;
					e->dev = ib->i_sb->s_dev;
				}
			} else {
				bpf_core_read(&fpath, sizeof(fpath), &f->f_path);
				e->ino = BPF_CORE_READ(f, f_inode, i_ino);
				e->dev = BPF_CORE_READ(f, f_inode, i_sb, s_dev);
			}
			e->path_len = walk_path(&fpath, 0, &flags);
		} else {
			e->path_len = 0;
			flags |= WRIT_F_UNRESOLVED;
		}
	} else {
		/* Refused by lsm/file_open (writ_lsm.bpf.c), which reported it with the resolved path. */
		if (ret == -EPERM && lsm_refused())
			return 0;
		/* Nothing was opened: report the string as passed. */
		long n = bpf_probe_read_user_str(e->path, WRIT_PATH_MAX, (void *)filename);
		e->path_len = n > 0 ? n : 0;
		flags |= WRIT_F_UNRESOLVED;
	}

	if ((t->flags & WRIT_TASK_FILE_TABLE) && !(flags & WRIT_F_UNRESOLVED)) {
		/* Exact path, ancestor-directory prefixes and (WRIT_TASK_FILE_COMP) path components, in one
		 * backwards pass (see path_hash); then the file's identity, which also catches a hard link
		 * (or bind mount) of a denied file under a name no path rule matches. */
		struct hash_ctx hc = {.is_exec = 0,
				      .slot = t->slot,
				      .check_file = 1,
				      .check_comp = !!(t->flags & WRIT_TASK_FILE_COMP)};

		path_hash(&hc, e->path_len);
		if (!hc.hit && e->ino) {
			struct writ_path_key key = {.slot = t->slot,
						    .kind = WRIT_PK_INODE,
						    .hash = writ_file_id_hash(e->dev, e->ino)};

			hc.hit = bpf_map_lookup_elem(&file_map, &key) != NULL;
		}
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
	submit(e, e->hdr.size, WRIT_EV_OPEN, flags, t, 1);
	return 0;
}

#endif /* WRIT_OPEN_BPF_H */
