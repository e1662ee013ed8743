/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Adoption pre-filter: which execs outside every task may belong to a policy `Workloads` entry (an agent
 * writ did not launch). Included by writ.bpf.c after writ_common.bpf.h; called from handle_exec only for
 * a process in no task.
 *
 * The kernel checks only what is cheap and exact: the resolved exe path's hash (unix:path selectors) and
 * the uid (unix:uid). A workload with neither sets WRIT_ADOPT_ANY and every exec outside tasks becomes a
 * candidate (costly: a stop and a round trip through writd per exec; docs/policy.md says so). writd checks
 * the full selector set (sha256, cgroup glob, systemd unit) in userspace.
 *
 * A candidate is stopped only while writd's heartbeat is fresh, and the stop is undone when its record
 * cannot be written: a process is never left stopped when nobody would hear of it or continue it.
 */
#ifndef WRIT_ADOPT_BPF_H
#define WRIT_ADOPT_BPF_H

#ifndef SIGCONT
#define SIGCONT 18
#endif

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct writ_adopt_cfg);
} adopt_cfg_map SEC(".maps");

/* writ_path_hash of an exact exe path of some workload -> 1 */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, WRIT_ADOPT_MAX_KEYS);
	__type(key, __u64);
	__type(value, __u32);
} adopt_exe_map SEC(".maps");

/* uid of some workload (that has no exe path) -> 1 */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, WRIT_ADOPT_MAX_KEYS);
	__type(key, __u32);
	__type(value, __u32);
} adopt_uid_map SEC(".maps");

static __always_inline int adopt_candidate(struct task_struct *p, struct linux_binprm *bprm)
{
	const struct writ_task_info no_task = {};
	struct writ_adopt_event e = {};
	struct writ_adopt_cfg *cfg;
	__u32 zero = 0, match = 0, uid;
	__u64 now;
	int stop;

	cfg = bpf_map_lookup_elem(&adopt_cfg_map, &zero);
	if (!cfg || !(cfg->flags & WRIT_ADOPT_ON))
		return 0;
	uid = (__u32)bpf_get_current_uid_gid();
	if (cfg->flags & WRIT_ADOPT_ANY)
		match |= WRIT_ADOPT_M_ANY;
	if ((cfg->flags & WRIT_ADOPT_UID) && bpf_map_lookup_elem(&adopt_uid_map, &uid))
		match |= WRIT_ADOPT_M_UID;
	if (cfg->flags & WRIT_ADOPT_EXE) {
		/* The same resolved path and hash as a task's exec table: symlinks, relative names and
		 * mount namespaces cannot dodge an exe selector. */
		struct file *file = BPF_CORE_READ(bprm, file);
		struct hash_ctx hc = {.is_exec = 1};
		struct path fpath;
		__u32 pflags = 0, len;

		bpf_core_read(&fpath, sizeof(fpath), &file->f_path);
		len = walk_path(&fpath, 1, &pflags);
		e.path_hash = path_hash(&hc, len);
		if (!(pflags & WRIT_F_PATH_TRUNC) && bpf_map_lookup_elem(&adopt_exe_map, &e.path_hash))
			match |= WRIT_ADOPT_M_EXE;
	}
	if (!match)
		return 0;

	/* In no task: slot 0, the process's own cgroup. */
	fill_hdr_current(&e.hdr, WRIT_EV_ADOPT, bpf_get_current_cgroup_id(), &no_task, p);
	now = e.hdr.ktime_ns;
	stop = now >= cfg->heartbeat_ns && now - cfg->heartbeat_ns <= cfg->stale_ns;
	e.hdr.size = sizeof(e);
	e.hdr.flags = WRIT_F_NEEDS_VERDICT | (stop ? WRIT_F_KERNEL_STOP : 0);
	e.match = match;
	/* Stop BEFORE the record becomes visible: writd may read it and send SIGCONT on another CPU before
	 * this program returns, and a SIGSTOP generated after that SIGCONT would never be undone. A stop
	 * pending on return to user mode is taken before the new image's first instruction; a SIGCONT
	 * generated meanwhile discards it. */
	if (stop)
		bpf_send_signal(SIGSTOP);
	if (ring_emit(&e, sizeof(e), 1)) {
		/* writd will never hear of it: undo the stop (SIGCONT flushes the pending SIGSTOP). */
		if (stop)
			bpf_send_signal(SIGCONT);
		count(WRIT_EV_ADOPT, WRIT_CNT_DROPPED);
		return 0;
	}
	count(WRIT_EV_ADOPT, WRIT_CNT_EMITTED);
	return 0;
}

#endif /* WRIT_ADOPT_BPF_H */
