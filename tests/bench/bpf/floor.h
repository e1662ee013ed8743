/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The floor monitor's record, shared by floor.bpf.c and floor.cc (the bench's own BPF/C++ ABI; writ's
 * lives in include/writ/abi/). Fixed-width types and explicit padding only.
 */
#ifndef WRIT_BENCH_FLOOR_H
#define WRIT_BENCH_FLOOR_H

#ifndef __BPF__
#include <linux/types.h>
#endif

#define FLOOR_NAME_MAX 128

enum floor_kind {
	FLOOR_OPEN = 0,
	FLOOR_EXEC = 1,
	FLOOR_CONNECT = 2,
	FLOOR_KIND_MAX = 3,
};

struct floor_event {
	__u64 ktime_ns;
	__u64 cgroup_id;
	__u32 kind; /* enum floor_kind */
	__u32 tgid;
	__u32 pid;
	__u16 port;   /* connect: host byte order */
	__u16 family; /* connect */
	char comm[16];
	char name[FLOOR_NAME_MAX]; /* open/exec: the path string as passed */
};

#endif /* WRIT_BENCH_FLOOR_H */
