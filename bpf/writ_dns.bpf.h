/* SPDX-License-Identifier: GPL-2.0 */
/*
 * DNS egress (#17), included by writ.bpf.c before its connect section.
 *
 * A task's DNS traffic goes to writd's stub resolver, whatever resolver address the task names:
 * cgroup/connect4|6 and cgroup/sendmsg4|6 rewrite a TCP or UDP destination on port 53 to the stub's
 * loopback address and port (dns_cfg_map) and remember, per socket cookie, where the task meant to send
 * (dns_orig_map). cgroup/recvmsg4|6 and cgroup/getpeername4|6 give the task that address back, so its
 * resolver library accepts the stub's replies as the server's (glibc drops a reply from an address it
 * did not ask).
 *
 * The stub learns which task asked from cgroup_skb/egress: every packet a task sends to the stub's
 * address and port is recorded by its source address and port (what the stub sees as its peer) with the
 * task's cgroup, read from the sending socket, not from the packet (dns_peer_map). A packet to the stub from
 * a raw socket (a forged source) is dropped. The same program records, in console_peer_map, the TCP packets
 * tasks send to the approvals console's port, so that the console can refuse them. Nothing here judges a
 * name: the stub does, and pins the addresses of an allowed name in pin_map (writ_common.bpf.h), which
 * net_verdict reads.
 */
#ifndef WRIT_DNS_BPF_H
#define WRIT_DNS_BPF_H

#define ETH_P_IP 0x0800
#define ETH_P_IPV6 0x86DD

/* socket cookie -> the resolver address the task named. LRU: sockets that never close cannot fill it. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, struct writ_dns_orig);
} dns_orig_map SEC(".maps");

/* packet source as the stub sees it -> the sending task's cgroup and the redirect it went through. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct writ_dns_peer_key);
	__type(value, struct writ_dns_peer);
} dns_peer_map SEC(".maps");

/* Whether family/addr/port is the stub itself (IPv4, IPv4-mapped, or IPv6). */
static __always_inline int dns_stub_addr(const struct writ_dns_cfg *c, __u16 family, const __u8 *addr,
					 __u16 port)
{
	__u32 a[4];

	if (port != c->port)
		return 0;
	__builtin_memcpy(a, addr, 16);
	if (family == AF_INET)
		return a[0] == c->addr4;
	if (a[0] == 0 && a[1] == 0 && a[2] == bpf_htonl(0xffff))
		return a[3] == c->addr4;
	return (a[0] | a[1] | a[2] | a[3]) && a[0] == c->addr6[0] && a[1] == c->addr6[1] &&
	       a[2] == c->addr6[2] && a[3] == c->addr6[3];
}

/* Sends the socket to the stub instead of where it was going, remembering that place. 1 when the
 * destination is now the stub (redirected, or the stub named directly: a DNS query either way, which the
 * stub judges and reports; a dual-stack socket's datagram to the IPv4 stub meets cgroup/sendmsg4 with the
 * stub's address after its connect was redirected). */
static __always_inline int dns_redirect(struct bpf_sock_addr *ctx, __u16 family, const __u8 *addr, __u16 port)
{
	const struct writ_dns_cfg *c = dns_cfg();
	struct writ_dns_orig o = {.family = family, .port = port};
	__u64 cookie;
	int mapped;

	if (!c)
		return 0;
	if (dns_stub_addr(c, family, addr, port))
		return 1;
	if (!dns_redirected(port, ctx->protocol))
		return 0;
	mapped = family == AF_INET6 &&
		 !(addr[0] | addr[1] | addr[2] | addr[3] | addr[4] | addr[5] | addr[6] | addr[7] | addr[8] |
		   addr[9]) &&
		 addr[10] == 0xff && addr[11] == 0xff;
	if (family == AF_INET6 && !mapped && !(c->addr6[0] | c->addr6[1] | c->addr6[2] | c->addr6[3]))
		return 0; /* no IPv6 stub: judged as any other connect */
	__builtin_memcpy(o.addr, addr, 16);
	cookie = bpf_get_socket_cookie(ctx);
	bpf_map_update_elem(&dns_orig_map, &cookie, &o, BPF_ANY);
	if (family == AF_INET) {
		ctx->user_ip4 = c->addr4;
	} else if (mapped) {
		ctx->user_ip6[0] = 0;
		ctx->user_ip6[1] = 0;
		ctx->user_ip6[2] = bpf_htonl(0xffff);
		ctx->user_ip6[3] = c->addr4;
	} else {
		ctx->user_ip6[0] = c->addr6[0];
		ctx->user_ip6[1] = c->addr6[1];
		ctx->user_ip6[2] = c->addr6[2];
		ctx->user_ip6[3] = c->addr6[3];
	}
	ctx->user_port = bpf_htons((__u16)c->port);
	return 1;
}

/* A reply from (or the peer that is) the stub reads as the resolver the task named. */
static __always_inline int dns_restore(struct bpf_sock_addr *ctx, __u16 family)
{
	const struct writ_dns_cfg *c;
	struct writ_dns_orig *o;
	__u8 addr[16] = {};
	__u64 cookie;
	__u32 a[4];
	__u16 port;

	/* The context's fields are read by sock_addr_dst, one constant offset each: the verifier refuses a
	 * load through a computed context pointer, which comparing them in place can compile to. */
	c = dns_cfg();
	if (!c)
		return 1;
	port = sock_addr_dst(ctx, family, addr);
	if (!dns_stub_addr(c, family, addr, port))
		return 1;
	cookie = bpf_get_socket_cookie(ctx);
	o = bpf_map_lookup_elem(&dns_orig_map, &cookie);
	if (!o)
		return 1;
	__builtin_memcpy(a, o->addr, 16);
	if (family == AF_INET) {
		if (o->family != AF_INET)
			return 1;
		ctx->user_ip4 = a[0];
	} else {
		if (o->family != AF_INET6)
			return 1;
		ctx->user_ip6[0] = a[0];
		ctx->user_ip6[1] = a[1];
		ctx->user_ip6[2] = a[2];
		ctx->user_ip6[3] = a[3];
	}
	ctx->user_port = bpf_htons(o->port);
	return 1;
}

SEC("cgroup/recvmsg4")
int cg_dns_recvmsg4(struct bpf_sock_addr *ctx)
{
	return dns_restore(ctx, AF_INET);
}

SEC("cgroup/recvmsg6")
int cg_dns_recvmsg6(struct bpf_sock_addr *ctx)
{
	return dns_restore(ctx, AF_INET6);
}

SEC("cgroup/getpeername4")
int cg_dns_peer4(struct bpf_sock_addr *ctx)
{
	return dns_restore(ctx, AF_INET);
}

SEC("cgroup/getpeername6")
int cg_dns_peer6(struct bpf_sock_addr *ctx)
{
	return dns_restore(ctx, AF_INET6);
}

/* TCP source as writd's approvals console sees its peer -> the sending task's cgroup (#20). The console
 * refuses a connection found here: a task never reaches the decision endpoints, whatever its intent allows
 * and whatever cookie it got hold of. A map of its own: a flood of DNS queries cannot evict an entry. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, struct writ_dns_peer_key);
	__type(value, __u64);
} console_peer_map SEC(".maps");

/* Every packet a task sends passes here: the few bound for the stub, or for the console's port, record who
 * sent them. */
SEC("cgroup_skb/egress")
int cg_dns_egress(struct __sk_buff *skb)
{
	struct writ_dns_peer_key k = {};
	struct writ_dns_peer v = {};
	struct writ_dns_orig *o;
	struct bpf_sock *sk;
	__u32 zero = 0, d[4] = {};
	int to_stub = 0, to_console;
	__u16 ports[2];
	__u32 l4off;
	__u64 cookie, cgid;
	__u8 proto;

	const struct writ_dns_cfg *c = bpf_map_lookup_elem(&dns_cfg_map, &zero);

	if (!c || !(c->port | c->console_port))
		return 1;
	if (skb->protocol == bpf_htons(ETH_P_IP)) {
		struct iphdr ip;

		if (bpf_skb_load_bytes(skb, 0, &ip, sizeof(ip)))
			return 1;
		if (ip.frag_off & bpf_htons(0x1fff))
			return 1; /* not a first fragment: no ports */
		to_stub = c->port && ip.daddr == c->addr4;
		proto = ip.protocol;
		l4off = (ip.ihl & 0xf) * 4;
		k.family = AF_INET;
		__builtin_memcpy(k.addr, &ip.saddr, 4);
	} else if (skb->protocol == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr ip6;

		if (bpf_skb_load_bytes(skb, 0, &ip6, sizeof(ip6)))
			return 1;
		__builtin_memcpy(d, &ip6.daddr, 16);
		to_stub = c->port && d[0] == c->addr6[0] && d[1] == c->addr6[1] && d[2] == c->addr6[2] &&
			  d[3] == c->addr6[3] && (d[0] | d[1] | d[2] | d[3]);
		proto = ip6.nexthdr;
		l4off = sizeof(ip6);
		k.family = AF_INET6;
		__builtin_memcpy(k.addr, &ip6.saddr, 16);
	} else {
		return 1;
	}
	if (proto != IPPROTO_TCP && proto != IPPROTO_UDP)
		return 1;
	if (!to_stub && !(c->console_port && proto == IPPROTO_TCP))
		return 1;
	if (bpf_skb_load_bytes(skb, l4off, ports, sizeof(ports)))
		return 1;
	to_stub = to_stub && bpf_ntohs(ports[1]) == c->port;
	/* The console's port on any destination address: a wildcard listener is reached through every local
	 * address, and an entry for a remote peer costs one LRU slot. */
	to_console = c->console_port && proto == IPPROTO_TCP && bpf_ntohs(ports[1]) == c->console_port;
	if (!to_stub && !to_console)
		return 1;
	sk = skb->sk;
	if (!sk)
		return 1;
	sk = bpf_sk_fullsock(sk);
	if (!sk)
		return 1; /* a TCP request or time-wait socket: no new query */
	if (sk->type == SOCK_RAW)
		return 0; /* a source the task wrote itself: it would name another task's socket */
	k.proto = proto;
	k.port = bpf_ntohs(ports[0]);
	cgid = cfg_task_level ? bpf_skb_ancestor_cgroup_id(skb, cfg_task_level) : bpf_skb_cgroup_id(skb);
	if (to_console) {
		bpf_map_update_elem(&console_peer_map, &k, &cgid, BPF_ANY);
		return 1;
	}
	v.cgroup_id = cgid;
	cookie = bpf_get_socket_cookie(skb);
	o = bpf_map_lookup_elem(&dns_orig_map, &cookie);
	if (o)
		v.orig = *o;
	bpf_map_update_elem(&dns_peer_map, &k, &v, BPF_ANY);
	return 1;
}

#endif /* WRIT_DNS_BPF_H */
