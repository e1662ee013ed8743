/* clang-format off */
/* The ABI header is laid out by hand in the kernel's style (tabs, a comment beside each field and
 * flag); BPF C and C++ both read it. */
/* SPDX-License-Identifier: Apache-2.0 */
/*
 * writ kernel <-> userspace ABI.
 *
 * This is the ONLY header compiled both by clang -target bpf and by the C++ build. Everything the two
 * sides share lives here: event layouts, map keys and values, limits and the ABI version. Fixed-width
 * types only, explicit padding, no bool. The C++ side pins every layout with static_assert
 * (src/decode/abi_check.cc); the decoder is the only userspace code that reads these structs.
 *
 * Versioning: WRIT_ABI_VERSION is bumped on any incompatible layout change. Every record carries it in
 * its header and the decoder rejects (and counts) records of another version.
 */
#ifndef WRIT_ABI_EVENTS_H
#define WRIT_ABI_EVENTS_H

#ifdef __BPF__
/* vmlinux.h provides the fixed-width kernel types. */
#else
#include <linux/types.h> /* the same __u32/__u64 the kernel headers and libbpf use */
#endif

#define WRIT_ABI_VERSION 3 /* 2: writ_open_event carries the opened file's inode and device; 3: link records,
			    * unix connects, datagram sends, three self-protection arguments */

/* Limits. Sizes are powers of two where the BPF side masks offsets with (size - 1). */
#define WRIT_PATH_MAX 4096      /* bytes of one resolved path, NUL included */
#define WRIT_PATH_DEPTH 48      /* dentry components walked before the path is flagged truncated */
#define WRIT_NAME_MAX 256       /* bytes of one path component / one argument */
#define WRIT_ARGS_MAX 4096      /* bytes of argv copied (NUL separated) */
#define WRIT_ARGC_MAX 16        /* arguments kept by the decoder; more sets WRIT_F_ARGS_TRUNC */
#define WRIT_COMM_LEN 16
#define WRIT_MAX_TASKS 4096     /* task slots; also the max_entries of the per-task maps */

enum writ_event_kind {
	WRIT_EV_NONE = 0,
	WRIT_EV_EXEC = 1,
	WRIT_EV_FORK = 2,
	WRIT_EV_EXIT = 3,
	WRIT_EV_OPEN = 4,
	WRIT_EV_CONNECT = 5,
	WRIT_EV_ADOPT = 6,    /* an exec outside every task that may belong to a `Workloads` entry */
	WRIT_EV_SELF = 7,     /* self-protection: a syscall against writd, BPF, io_uring, ptrace (writ_self_event) */
	WRIT_EV_LINK = 8,     /* a file given another name: rename, hard link, symlink (writ_link_event) */
	WRIT_EV_KIND_MAX = 9, /* size of the per-kind counter arrays */
};

/* writ_event_hdr.flags */
#define WRIT_F_NEEDS_VERDICT (1u << 0)  /* userspace must act now (the kernel killed or stopped a process, or
					 * holds an adoption candidate): wakes the consumer if it sleeps */
#define WRIT_F_PATH_TRUNC (1u << 1)     /* path deeper than WRIT_PATH_DEPTH or longer than WRIT_PATH_MAX */
#define WRIT_F_UNRESOLVED (1u << 2)     /* path is the string the caller passed, not the kernel's */
#define WRIT_F_ARGS_TRUNC (1u << 3)     /* argv longer than WRIT_ARGS_MAX */
#define WRIT_F_KERNEL_DENY (1u << 4)    /* the kernel applied a deny (EPERM or SIGKILL) */
#define WRIT_F_KERNEL_STOP (1u << 5)    /* the kernel stopped the process (SIGSTOP) for approval */
#define WRIT_F_CGROUP_HOOK (1u << 6)    /* connect seen by cgroup/connect*, not the syscall tracepoint */
#define WRIT_F_LSM (1u << 7)            /* refused by a BPF-LSM hook: the action never happened */
#define WRIT_F_SECCOMP (1u << 8)        /* self: refused by the task's seccomp filter (never executed) */
#define WRIT_F_SCRIPT (1u << 9)         /* exec: the file asked for named its interpreter (a shebang script or
					 * binfmt_misc): the image is the interpreter, filename the script */
#define WRIT_F_LOADER (1u << 10)        /* exec: the image is a dynamic loader run as a program (ld.so PROGRAM):
					 * userspace judges the program it loads (loader_map) */
#define WRIT_F_SEND (1u << 11)          /* connect record of a datagram sent to an address without connect()
					 * (cgroup/sendmsg4|6|_unix): refusals only, rate-limited per destination */
#define WRIT_F_LSM_HOOK (1u << 12)      /* reported by a BPF-LSM hook (the LSM rung attaches no syscall
					 * tracepoint): open, connect, link records, refused or not */

/* Common header of every ring-buffer record. */
struct writ_event_hdr {
	__u16 abi_version;
	__u16 kind;          /* enum writ_event_kind */
	__u32 size;          /* bytes of the whole record, header included */
	__u64 ktime_ns;      /* bpf_ktime_get_boot_ns() at emission */
	__u64 cgroup_id;     /* the task cgroup (ancestor at the task level) */
	__u64 start_time_ns; /* thread-group leader start (boottime ns): (tgid, start) names a process */
	__u32 task_slot;
	__u32 pid;           /* thread id */
	__u32 tgid;          /* process id */
	__u32 ppid;          /* real parent's tgid */
	__u32 uid;
	__u32 gid;
	__u32 flags;         /* WRIT_F_* */
	__u32 _pad0;
	char comm[WRIT_COMM_LEN];
};

/*
 * Resolved paths travel as components, leaf first: "file\0dir\0usr\0" for /usr/dir/file. The BPF side
 * walks dentries upward and cannot know the final length in advance; the decoder reverses. An empty
 * buffer (len 0) with WRIT_F_UNRESOLVED unset is the root "/".
 */
struct writ_exec_event {
	struct writ_event_hdr hdr;
	__u32 path_len;      /* bytes used in path[] (components, leaf first) */
	__u32 filename_len;  /* bytes used in filename[] (as passed to execve, NUL included) */
	__u32 args_len;      /* bytes used in args[] (NUL separated) */
	__u32 verdict;       /* enum writ_kernel_verdict applied in the kernel */
	__u64 path_hash;     /* writ_path_hash of the leaf-first component encoding in path[] */
	/* Fixed regions: the BPF verifier bounds each write by its region's size. A record is emitted up to
	 * args + args_len; path[] has WRIT_NAME_MAX bytes of slack after WRIT_PATH_MAX for the same reason. */
	char path[WRIT_PATH_MAX + WRIT_NAME_MAX];
	char filename[WRIT_NAME_MAX];
	char args[WRIT_ARGS_MAX];
};

struct writ_fork_event {
	struct writ_event_hdr hdr; /* the child */
	__u32 parent_tgid;
	__u32 _pad0;
	__u64 parent_start_time_ns;
};

struct writ_exit_event {
	struct writ_event_hdr hdr;
	__s32 exit_code; /* wait(2) status: (code << 8) | termsig */
	__u32 _pad0;
};

/* writ_open_event.open_flags carries the raw O_* flags; the decoder maps them to read/write/create/trunc. */
struct writ_open_event {
	struct writ_event_hdr hdr;
	__s32 result;     /* fd or -errno */
	__u32 open_flags;
	__u32 path_len;
	__u32 syscall_nr; /* which syscall (openat, openat2, open, creat) */
	__u64 ino;        /* the opened file's inode number (0 when nothing was opened) */
	__u32 dev;        /* and its filesystem's device, the kernel's encoding (major << 20 | minor) */
	__u32 _pad0;
	char path[WRIT_PATH_MAX + WRIT_NAME_MAX]; /* emitted up to path + path_len */
};

struct writ_connect_event {
	struct writ_event_hdr hdr;
	__s32 result;  /* 0 or -errno; for the cgroup hook 0 = allowed, -EPERM = refused */
	__u16 family;  /* AF_INET / AF_INET6 */
	__u16 port;    /* host byte order */
	__u8 addr[16]; /* v4 in the first 4 bytes, network order */
	__u32 verdict; /* enum writ_kernel_verdict */
	__u32 suppressed; /* WRIT_F_SEND: refusals of this destination not reported since the last record */
};

/*
 * A unix-socket connect (or datagram send): a connect record (kind WRIT_EV_CONNECT) with family AF_UNIX and
 * this tail. name is the sun_path the kernel was given (its own copy, from the cgroup hook; from user memory
 * where cgroup/connect_unix does not load): an abstract name starts with a NUL and name_len counts every byte
 * of it. peer is the socket file actually reached, walked from the connected peer's path like an opened
 * file's (leaf-first components; empty for abstract sockets and failed connects). Emitted up to
 * peer + peer_len.
 */
#define WRIT_UNIX_NAME_MAX 128 /* sizeof(sun_path) is 108; a power of two for the verifier's masks */

struct writ_unix_connect_event {
	struct writ_connect_event c; /* family AF_UNIX; addr and port unused */
	__u32 name_len;
	__u32 peer_len;
	char name[WRIT_UNIX_NAME_MAX];
	char peer[WRIT_PATH_MAX + WRIT_NAME_MAX];
};

/* Unix-socket tables (unix_map, key writ_path_key): the FNV-1a 64 hash (WRIT_FNV_*) of a name as written,
 * forward: a path socket's path, or '@' followed by an abstract name's bytes (after its leading NUL).
 * WRIT_UK_PREFIX entries hash a directory without its trailing '/' and match every name below it (the
 * running hash at each '/'). Entries of slot WRIT_SLOT_ALL apply to every task (writd's own sockets). */
enum writ_unix_key_kind {
	WRIT_UK_EXACT = 0,
	WRIT_UK_PREFIX = 1,
};
#define WRIT_SLOT_ALL 0xffffffffu

/*
 * A rename, hard link or symlink by a task that has files.deny rules (bpf/writ_link.bpf.h), taken at syscall
 * entry. old is the existing name (a rename's source, a link's target, a symlink's content) and new the name
 * created. Each is sent resolved as far as the kernel can: leaf-first components like an opened file's path,
 * a relative name joined to the directory it starts from (the cwd or a dirfd, walked) and "." and ".."
 * applied lexically; or as passed (WRIT_LINK_*_RAW: a symlink's relative content, an unusable dirfd). Packed
 * in data[]: old, then new; emitted up to the end of new.
 */
#define WRIT_LINK_DATA 8192 /* two segments of at most WRIT_PATH_MAX; a power of two for the masks */

/* writ_link_event.link_flags */
#define WRIT_LINK_HIT_OLD (1u << 0) /* the kernel's file table denies the old name (exact, prefix, component) */
#define WRIT_LINK_HIT_NEW (1u << 1) /* ... the new name */
#define WRIT_LINK_OLD_RAW (1u << 2) /* old is the string as passed, not components */
#define WRIT_LINK_NEW_RAW (1u << 3)
#define WRIT_LINK_TAINTED (1u << 4) /* the new name's last component was added to the task's denies */

struct writ_link_event {
	struct writ_event_hdr hdr;
	__u32 syscall_nr;   /* x86_64: rename, renameat, renameat2, link, linkat, symlink, symlinkat */
	__u32 link_flags;   /* WRIT_LINK_* */
	__u32 call_flags;   /* renameat2's or linkat's flags as passed */
	__u32 old_len;      /* bytes of old in data[] (0: none) */
	__u32 new_len;      /* bytes of new, from data + old_len */
	__u32 _pad0;
	char data[WRIT_LINK_DATA + WRIT_PATH_MAX + WRIT_NAME_MAX];
};

/*
 * Self-protection (bpf/writ_self.bpf.h). The `writ run` launcher installs a seccomp filter in the task's
 * first process that refuses (EPERM) bpf, io_uring, ptrace attach, process_vm_*, pidfd_getfd and the
 * kill family aimed at writd or its guardian. A refused syscall skips sys_enter but passes sys_exit: the
 * exit tracepoint reports it (WRIT_F_SECCOMP). A process without the filter reaches sys_enter, where the
 * same classification SIGKILLs it (WRIT_F_KERNEL_DENY): the syscall itself still runs.
 */
enum writ_self_target {
	WRIT_SELF_NONE = 0,     /* no target process (bpf, io_uring) */
	WRIT_SELF_WRITD = 1,    /* writd (any of its threads, or its process group) */
	WRIT_SELF_GUARDIAN = 2, /* writd's guardian */
	WRIT_SELF_OTHER = 3,    /* another process (ptrace attach, process_vm_*, pidfd_getfd) */
	WRIT_SELF_ALL = 4,      /* kill(-1, ...): every process the caller may signal */
};

/* self_pids_map slots (array of __u32 tgids / pgids, 0 = unused). */
#define WRIT_SELF_PID_WRITD 0
#define WRIT_SELF_PID_GUARDIAN 1
#define WRIT_SELF_PGID_WRITD 2
#define WRIT_SELF_PIDS 4

struct writ_self_event {
	struct writ_event_hdr hdr;
	__u32 syscall_nr;  /* x86_64 number */
	__s32 result;      /* return value: -EPERM when seccomp refused it */
	__s64 args[3];     /* the first three arguments (pid / request / fd, signal / pid / command, argument) */
	__u32 target;      /* enum writ_self_target */
	__u32 target_pid;  /* tgid the call aimed at (resolved from a thread id), 0 if none */
};

/*
 * consumer_map[0]: what the ring-buffer consumer (writd's pipeline) tells the producers. sleeping is 1
 * while writd waits in epoll for the ring buffer, 0 while it is draining. A record that needs a prompt
 * verdict forces a wakeup only when the consumer sleeps: an awake consumer reaches it anyway, and a
 * wakeup costs the producer an irq_work (a self-IPI in a VM) of several microseconds. Protocol
 * (a Dekker pair, no lost wakeup): the producer reserves its record (publishing the producer
 * position), then a full barrier (a locked add to wake_checks), then reads sleeping; the consumer stores
 * sleeping = 1 with a full barrier, then reads the producer position and does not sleep if anything
 * arrived. So either the producer sees the consumer asleep and wakes it, or the consumer sees the
 * record. Mapped into writd's memory (BPF_F_MMAPABLE).
 */
struct writ_consumer_state {
	__u32 sleeping;
	__u32 _pad0;
	__u64 wake_checks; /* producers' locked adds (the barrier); how many records asked */
};

/* Values of the task map: cgroup id -> task. */
#define WRIT_TASK_ENFORCE (1u << 0)  /* in-kernel deny applies (mode enforce) */
#define WRIT_TASK_EXEC_TABLE (1u << 1) /* the task has an exec allow table: unknown exe = deny */
#define WRIT_TASK_NET_TABLE (1u << 2)  /* the task has connect tables: unknown destination = deny */
#define WRIT_TASK_FILE_TABLE (1u << 3) /* the task has kernel path tables for opens */
#define WRIT_TASK_PROMPT (1u << 4)     /* userspace judges this task's events: force a wakeup on each */
#define WRIT_TASK_KILL_LINEAGE (1u << 6) /* on_violation has kill: a kernel deny also kills the acting
					   * process's parent when it is in the task (the agent's shell must
					   * not run its next command while userspace kills the rest) */
#define WRIT_TASK_EXEC_USER (1u << 5)  /* exec rules the table cannot decide (globs, argv): an exe not in
					* the table is WRIT_KV_USER, stopped in enforce mode until judged */
#define WRIT_TASK_SELF_KILL (1u << 7)  /* enforce mode, with or without an intent: a self-protection
					* syscall that reaches sys_enter SIGKILLs its caller (bpf/writ_self.bpf.h) */
#define WRIT_TASK_FILE_COMP (1u << 8)  /* the task's file table has path-component entries (deny rules
					* naming a file or directory at any depth, docs/policy.md): opens
					* also hash and look up each component. Needs WRIT_TASK_FILE_TABLE. */
#define WRIT_TASK_EXEC_SCRIPT (1u << 9) /* exec.deny or approval rules exist: a script exec the table did
					  * not deny is WRIT_KV_USER (stopped in enforce mode) so userspace
					  * judges the script's own path too (docs/policy.md) */
#define WRIT_TASK_EXEC_JUDGED (1u << 10) /* exec or approval rules exist: an exe whose path the walk could not
					   * resolve whole, and the dynamic loader run as a program, are
					   * WRIT_KV_USER (stopped in enforce mode) unless the table denies them */
#define WRIT_TASK_UNIX (1u << 11)        /* unix-socket connects are judged (unix_map has the task's rules) */
#define WRIT_TASK_UNIX_DENY (1u << 12)   /* ... and a name no entry allows is denied (an allow list) */
#define WRIT_TASK_UNIX_USER (1u << 13)   /* ... unless rules the table cannot hold (globs) may decide it:
					   * WRIT_KV_USER, judged in userspace */
#define WRIT_TASK_FILE_LINK (1u << 14)   /* files.deny rules exist: renames, links and symlinks are reported
					   * (and killed at entry by the file table's components, enforce) */

struct writ_task_info {
	__u32 slot;
	__u32 flags; /* WRIT_TASK_* */
	__u64 generation; /* bumped whenever the slot is reused; decoders drop stale records */
};

/* In-kernel verdicts (compiled tables). */
enum writ_kernel_verdict {
	WRIT_KV_NONE = 0,     /* no table decided; userspace judges */
	WRIT_KV_ALLOW = 1,
	WRIT_KV_DENY = 2,
	WRIT_KV_APPROVAL = 3, /* stop and ask a human */
	WRIT_KV_USER = 4,     /* table says: userspace must decide now (glob, argv pattern) */
};

/* Exec and file table key: (task slot, kind, hash). exec_map holds only WRIT_PK_PATH keys. */
enum writ_path_key_kind {
	WRIT_PK_PATH = 0, /* hash of an absolute path: an exact path, or a directory covering its subtree */
	WRIT_PK_LEAF = 1, /* component hash of the opened file's own name */
	WRIT_PK_DIR = 2,  /* component hash of an ancestor directory's name */
	WRIT_PK_INODE = 3, /* writ_file_id_hash of a denied file's (device, inode): its hard links too */
};

/* file_map key hash of a file identity (WRIT_PK_INODE): a 64-bit mix of the kernel's device number and
 * the inode number, the same in BPF and C++. */
static inline __u64 writ_file_id_hash(__u32 dev, __u64 ino)
{
	__u64 h = (ino ^ ((__u64)dev << 32) ^ dev) * 0x9E3779B97F4A7C15ULL;

	return h ^ (h >> 31);
}

struct writ_path_key {
	__u32 slot;
	__u32 kind; /* enum writ_path_key_kind */
	__u64 hash; /* WRIT_PK_PATH: path hash (below); LEAF/DIR: component hash (below) */
};

/* Path hash: FNV-1a 64 over the bytes of the leaf-first component encoding ("file\0dir\0usr\0") taken from
 * the LAST byte to the first. Read that way the root component comes first, so the running hash at each
 * component boundary is the hash of an ancestor directory: one pass yields the hashes of the path and of
 * every prefix ("/usr", "/usr/dir"), which is what prefix tables need. Userspace computes the same function
 * (src/bpf/path_hash.h).
 * Component hash: the same function restarted at each component, i.e. FNV-1a 64 over a NUL then the
 * component's bytes reversed: the path hash of "/NAME". Computed in the same pass. */
#define WRIT_FNV_OFFSET 0xcbf29ce484222325ULL
#define WRIT_FNV_PRIME 0x100000001b3ULL

/* LPM keys for connect tables, one map per family. prefixlen counts the slot's 32 bits plus the
 * address bits, so a lookup matches the task first, then the longest address prefix. */
struct writ_net4_key {
	__u32 prefixlen;
	__u32 slot_be; /* task slot, big-endian */
	__u8 addr[4];
};

struct writ_net6_key {
	__u32 prefixlen;
	__u32 slot_be;
	__u8 addr[16];
};

#define WRIT_NET_RANGES 16

struct writ_port_range {
	__u16 lo;      /* host byte order, inclusive */
	__u16 hi;
	__u32 verdict; /* enum writ_kernel_verdict */
};

/* Value: ranges checked in order, first match wins. Userspace compiles the closure: an entry for a prefix
 * also carries the ranges of every shorter prefix containing it (deny ranges first), because the LPM trie
 * returns only the longest match. No match: the task's default (deny when it has a table). */
struct writ_net_value {
	__u32 nranges;
	__u32 _pad0;
	struct writ_port_range ranges[WRIT_NET_RANGES];
};

/* Approved destinations ("writ approve" of a connect): exact address and port, checked before the LPM. */
struct writ_grant_key {
	__u32 slot;
	__u16 port;   /* host byte order */
	__u16 family;
	__u8 addr[16];
};

/* DNS egress (#17): an address a task's own DNS answer named, allowed for the ports of the host rule that
 * admitted the name until `expires_ns` (boot clock: the kernel checks the expiry itself, so a pin userspace
 * has not deleted yet cannot outlive its TTL). An IPv4 address is keyed AF_INET with addr[0..3]. */
#define WRIT_PIN_RANGES 8
#define WRIT_PIN_NAME 256 /* a DNS name is at most 253 characters */

struct writ_pin_key {
	__u32 slot;
	__u16 family;
	__u16 _pad0;
	__u8 addr[16];
};

struct writ_pin_value {
	__u64 expires_ns; /* bpf_ktime_get_boot_ns() */
	__u64 generation; /* the task's (writ_task_info.generation): a reused slot inherits no pin */
	__u32 nranges;
	__u32 _pad0;
	struct writ_port_range ranges[WRIT_PIN_RANGES]; /* verdict unused: a pin only allows */
	char name[WRIT_PIN_NAME]; /* the name the task asked (NUL-terminated): not read by BPF; a restarted
				   * writd reads it back to name connects (network.host) */
};

/* The stub resolver's address (dns_cfg_map, one entry, written by writd at every start). A map, not load-time
 * constants: while a restarted writd's programs and its predecessor's are both attached for an instant,
 * both send DNS to the stub that is listening now. port 0: no stub, no redirect. */
struct writ_dns_cfg {
	__u32 port;	/* host byte order */
	__u32 addr4;	/* network byte order (127.0.0.1) */
	__u32 addr6[4]; /* network byte order (::1); all zero: no IPv6 stub */
	/* The approvals console's TCP port (host byte order; 0: no console): cgroup_skb/egress records
	 * which task sends to it (console_peer_map), so the console can refuse tasks. */
	__u32 console_port;
};

/* A task socket's DNS redirect: where it meant to send (recvmsg and getpeername give this back). */
struct writ_dns_orig {
	__u16 family;
	__u16 port; /* host byte order */
	__u32 _pad0;
	__u8 addr[16];
};

/* Who sent a packet to the stub resolver, by the packet's source as the stub sees it: written by
 * cgroup_skb/egress from the sending socket's cgroup (the kernel's word, not the packet's), read by the
 * stub to attribute a query to a task. */
struct writ_dns_peer_key {
	__u8 proto;   /* IPPROTO_UDP, IPPROTO_TCP */
	__u8 _pad0;
	__u16 family; /* of the packet */
	__u16 port;   /* source port, host byte order */
	__u16 _pad1;
	__u8 addr[16]; /* source address (IPv4: addr[0..3]) */
};

struct writ_dns_peer {
	__u64 cgroup_id; /* the task's cgroup (the ancestor at the task level) */
	struct writ_dns_orig orig; /* family 0: sent to the stub directly, not redirected */
};

/* Counters: per-CPU arrays indexed by kind. */
enum writ_counter {
	WRIT_CNT_EMITTED = 0,
	WRIT_CNT_DROPPED = 1,
	WRIT_CNT_FAIL_CLOSED = 2, /* records userspace had to judge, of an enforce-mode task, that could not be
				   * delivered: the process was SIGKILLed, or (cgroup hooks, which cannot signal)
				   * its send or connect refused with EPERM */
	WRIT_CNT_SUPPRESSED = 3,  /* not emitted on purpose: a refused datagram send to a destination already
				   * reported in the last second (the next record carries the count) */
	WRIT_CNT_MAX = 4,
};

/*
 * Adoption of agents writ did not launch (policies' `kind: Workloads` entries). sched_process_exec of a
 * process in no task looks the exec up in a small pre-filter; a candidate is stopped (SIGSTOP before the
 * new image's first instruction) and reported with a writ_adopt_event; writd evaluates the full selector
 * set, places a match in a new task's cgroup, then continues it.
 */
#define WRIT_ADOPT_MAX_KEYS 1024

/* writ_adopt_cfg.flags */
#define WRIT_ADOPT_ON (1u << 0)   /* some workload is configured: candidates are looked for */
#define WRIT_ADOPT_ANY (1u << 1)  /* some workload has no kernel-checkable selector: every exec is one */
#define WRIT_ADOPT_EXE (1u << 2)  /* adopt_exe_map has entries: hash the resolved exe path */
#define WRIT_ADOPT_UID (1u << 3)  /* adopt_uid_map has entries */

/* Single entry of adopt_cfg_map (an array of one), written by writd. */
struct writ_adopt_cfg {
	__u32 flags;        /* WRIT_ADOPT_* */
	__u32 _pad0;
	__u64 heartbeat_ns; /* bpf_ktime_get_boot_ns() clock: writd's pipeline was alive at this time */
	__u64 stale_ns;     /* no SIGSTOP when the heartbeat is older than this: nobody would continue it */
};

/* writ_adopt_event.match: which pre-filter key made the exec a candidate */
#define WRIT_ADOPT_M_EXE (1u << 0)
#define WRIT_ADOPT_M_UID (1u << 1)
#define WRIT_ADOPT_M_ANY (1u << 2)

/* hdr.cgroup_id is the process's own cgroup, hdr.task_slot 0; hdr.flags has WRIT_F_KERNEL_STOP when the
 * kernel stopped it (writd must continue it whatever it decides). */
struct writ_adopt_event {
	struct writ_event_hdr hdr;
	__u64 path_hash; /* writ_path_hash of the resolved exe (0 unless WRIT_ADOPT_EXE) */
	__u32 match;     /* WRIT_ADOPT_M_* */
	__u32 _pad0;
};

#endif /* WRIT_ABI_EVENTS_H */
