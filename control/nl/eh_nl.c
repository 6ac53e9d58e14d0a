// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * rtnetlink through libmnl: netem at an interface's root, IPv4 routes.
 * The netem message follows what Debian's tc sends (checked with strace) and
 * the kernel's net/sched/sch_netem.c; see eh_nl.h and docs/wan.md.
 */
#include <errno.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <linux/pkt_sched.h>
#include <linux/rtnetlink.h>
#include <libmnl/libmnl.h>

#include "eh_nl.h"

/* psched ticks are 64 ns (PSCHED_SHIFT 6): qopt.latency and qopt.jitter. */
#define EH_PSCHED_SHIFT 6

/* --- message building and parsing ------------------------------------------ */

uint32_t eh_netem_limit(const struct eh_netem *ne)
{
	unsigned __int128 bytes;
	uint64_t pkts;

	if (ne->limit)
		return ne->limit;
	/*
	 * The delay line holds rate x delay bytes at full rate; a shorter queue
	 * would drop what a real link of that rate and delay carries.
	 */
	bytes = (unsigned __int128)ne->rate_Bps * (ne->delay_ns + ne->jitter_ns) / 1000000000u;
	if (bytes / EH_NETEM_FRAME_BYTES >= UINT32_MAX)
		return UINT32_MAX;
	pkts = (uint64_t)((bytes + EH_NETEM_FRAME_BYTES - 1) / EH_NETEM_FRAME_BYTES);
	return pkts < EH_NETEM_LIMIT_MIN ? EH_NETEM_LIMIT_MIN : (uint32_t)pkts;
}

uint32_t eh_netem_loss_u32(double pct)
{
	double v;

	if (!(pct > 0))
		return 0;
	if (pct >= 100)
		return UINT32_MAX;
	/* rounded as tc's get_percent() does (rint of the fraction) */
	v = pct / 100.0 * UINT32_MAX + 0.5;
	return v >= (double)UINT32_MAX ? UINT32_MAX : (uint32_t)v;
}

double eh_netem_loss_pct(uint32_t loss)
{
	return loss * 100.0 / UINT32_MAX;
}

struct nlmsghdr *eh_nl_netem_msg(void *buf, size_t len, int ifindex,
				 const struct eh_netem *ne)
{
	struct tc_netem_qopt qopt = {};
	struct tc_netem_rate rate = {};
	struct nlmsghdr *nlh;
	struct nlattr *opts;
	struct tcmsg *tcm;
	int64_t lat = ne->delay_ns, jit = ne->jitter_ns;

	if (len < MNL_NLMSG_HDRLEN + MNL_ALIGN(sizeof(*tcm)))
		return NULL;
	if (ne->delay_ns > INT64_MAX || ne->jitter_ns > INT64_MAX)
		return NULL;
	/* libmnl 1.0.4 leaves attribute padding as it finds it */
	memset(buf, 0, len);
	nlh = mnl_nlmsg_put_header(buf);
	nlh->nlmsg_type = RTM_NEWQDISC;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE;
	tcm = mnl_nlmsg_put_extra_header(nlh, sizeof(*tcm));
	tcm->tcm_family = AF_UNSPEC;
	tcm->tcm_ifindex = ifindex;
	tcm->tcm_handle = 0;
	tcm->tcm_parent = TC_H_ROOT;
	if (!mnl_attr_put_strz_check(nlh, len, TCA_KIND, "netem"))
		return NULL;

	/*
	 * Every change resets latency, jitter, loss and limit from the qopt; the
	 * 64-bit attributes override the qopt's tick fields (kept for old readers).
	 */
	qopt.latency = (ne->delay_ns >> EH_PSCHED_SHIFT) > UINT32_MAX ?
		       UINT32_MAX : (uint32_t)(ne->delay_ns >> EH_PSCHED_SHIFT);
	qopt.jitter = (ne->jitter_ns >> EH_PSCHED_SHIFT) > UINT32_MAX ?
		      UINT32_MAX : (uint32_t)(ne->jitter_ns >> EH_PSCHED_SHIFT);
	qopt.limit = eh_netem_limit(ne);
	qopt.loss = eh_netem_loss_u32(ne->loss_pct);

	/*
	 * TCA_OPTIONS is no normal nest: its payload is the qopt followed by
	 * TCA_NETEM_* attributes, and its nla_len must cover them all.
	 */
	opts = mnl_nlmsg_get_payload_tail(nlh);
	if (!mnl_attr_put_check(nlh, len, TCA_OPTIONS, sizeof(qopt), &qopt) ||
	    !mnl_attr_put_check(nlh, len, TCA_NETEM_LATENCY64, sizeof(lat), &lat) ||
	    !mnl_attr_put_check(nlh, len, TCA_NETEM_JITTER64, sizeof(jit), &jit))
		return NULL;
	/* Rate is kept across changes unless sent: always send it, 0 = none. */
	if (ne->rate_Bps > UINT32_MAX) {
		if (!mnl_attr_put_u64_check(nlh, len, TCA_NETEM_RATE64, ne->rate_Bps))
			return NULL;
		rate.rate = UINT32_MAX;
	} else {
		rate.rate = (uint32_t)ne->rate_Bps;
	}
	if (!mnl_attr_put_check(nlh, len, TCA_NETEM_RATE, sizeof(rate), &rate))
		return NULL;
	opts->nla_len = (char *)mnl_nlmsg_get_payload_tail(nlh) - (char *)opts;
	return nlh;
}

static int netem_attr_cb(const struct nlattr *attr, void *data)
{
	const struct nlattr **tb = data;
	uint16_t type = mnl_attr_get_type(attr);
	size_t need = 0;

	switch (type) {
	case TCA_NETEM_LATENCY64:
	case TCA_NETEM_JITTER64:
	case TCA_NETEM_RATE64:
		need = sizeof(uint64_t);
		break;
	case TCA_NETEM_RATE:
		need = sizeof(struct tc_netem_rate);
		break;
	default:
		return MNL_CB_OK;	/* correlation, slots, pads...: not ours */
	}
	if (mnl_attr_get_payload_len(attr) < need) {
		errno = EBADMSG;
		return MNL_CB_ERROR;
	}
	tb[type] = attr;
	return MNL_CB_OK;
}

int eh_nl_netem_opts_parse(const void *data, size_t len, struct eh_netem *out)
{
	const struct nlattr *tb[TCA_NETEM_MAX + 1] = {};
	struct tc_netem_qopt qopt;
	struct tc_netem_rate rate;
	size_t off = MNL_ALIGN(sizeof(qopt));
	int64_t v;

	memset(out, 0, sizeof(*out));
	if (len < sizeof(qopt))
		return -EBADMSG;
	memcpy(&qopt, data, sizeof(qopt));
	out->delay_ns = (uint64_t)qopt.latency << EH_PSCHED_SHIFT;
	out->jitter_ns = (uint64_t)qopt.jitter << EH_PSCHED_SHIFT;
	out->limit = qopt.limit;
	out->loss_pct = eh_netem_loss_pct(qopt.loss);
	if (len > off &&
	    mnl_attr_parse_payload((const char *)data + off, len - off, netem_attr_cb, tb) < 0)
		return -EBADMSG;
	if (tb[TCA_NETEM_LATENCY64]) {
		memcpy(&v, mnl_attr_get_payload(tb[TCA_NETEM_LATENCY64]), sizeof(v));
		out->delay_ns = v < 0 ? 0 : (uint64_t)v;
	}
	if (tb[TCA_NETEM_JITTER64]) {
		memcpy(&v, mnl_attr_get_payload(tb[TCA_NETEM_JITTER64]), sizeof(v));
		out->jitter_ns = v < 0 ? 0 : (uint64_t)v;
	}
	if (tb[TCA_NETEM_RATE]) {
		memcpy(&rate, mnl_attr_get_payload(tb[TCA_NETEM_RATE]), sizeof(rate));
		out->rate_Bps = rate.rate;
	}
	if (tb[TCA_NETEM_RATE64]) {
		uint64_t r64 = mnl_attr_get_u64(tb[TCA_NETEM_RATE64]);

		if (r64 > out->rate_Bps)
			out->rate_Bps = r64;
	}
	return 0;
}

static int qdisc_attr_cb(const struct nlattr *attr, void *data)
{
	const struct nlattr **tb = data;
	uint16_t type = mnl_attr_get_type(attr);

	if (type == TCA_KIND) {
		if (mnl_attr_validate(attr, MNL_TYPE_NUL_STRING) < 0)
			return MNL_CB_ERROR;
		tb[type] = attr;
	} else if (type == TCA_OPTIONS) {
		tb[type] = attr;
	}
	return MNL_CB_OK;
}

int eh_nl_qdisc_parse(const struct nlmsghdr *nlh, int ifindex, struct eh_netem *out)
{
	const struct nlattr *tb[TCA_MAX + 1] = {};
	const struct tcmsg *tcm;
	int err;

	if (nlh->nlmsg_type != RTM_NEWQDISC)
		return 0;
	if (nlh->nlmsg_len < mnl_nlmsg_size(sizeof(*tcm)))
		return -EBADMSG;
	tcm = mnl_nlmsg_get_payload(nlh);
	if (tcm->tcm_ifindex != ifindex || tcm->tcm_parent != TC_H_ROOT)
		return 0;
	if (mnl_attr_parse(nlh, sizeof(*tcm), qdisc_attr_cb, tb) < 0)
		return -EBADMSG;
	if (!tb[TCA_KIND] || strcmp(mnl_attr_get_str(tb[TCA_KIND]), "netem"))
		return 0;
	if (!tb[TCA_OPTIONS])
		return -EBADMSG;
	err = eh_nl_netem_opts_parse(mnl_attr_get_payload(tb[TCA_OPTIONS]),
				     mnl_attr_get_payload_len(tb[TCA_OPTIONS]), out);
	return err ? err : 1;
}

struct nlmsghdr *eh_nl_route_msg(void *buf, size_t len, uint16_t type, struct in_addr dst,
				 int prefix, struct in_addr gw, int ifindex)
{
	struct nlmsghdr *nlh;
	struct rtmsg *rtm;

	if (len < MNL_NLMSG_HDRLEN + MNL_ALIGN(sizeof(*rtm)) || prefix < 0 || prefix > 32)
		return NULL;
	memset(buf, 0, len);
	nlh = mnl_nlmsg_put_header(buf);
	nlh->nlmsg_type = type;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
	rtm = mnl_nlmsg_put_extra_header(nlh, sizeof(*rtm));
	rtm->rtm_family = AF_INET;
	rtm->rtm_dst_len = prefix;
	rtm->rtm_table = RT_TABLE_MAIN;
	if (type == RTM_NEWROUTE) {
		nlh->nlmsg_flags |= NLM_F_CREATE | NLM_F_REPLACE;
		rtm->rtm_protocol = RTPROT_STATIC;
		rtm->rtm_type = RTN_UNICAST;
		/* a route without a gateway is on-link, as ip route makes it */
		rtm->rtm_scope = gw.s_addr ? RT_SCOPE_UNIVERSE : RT_SCOPE_LINK;
	} else {
		/* matches a route of any scope, protocol and type (ip route del) */
		rtm->rtm_scope = RT_SCOPE_NOWHERE;
	}
	if (prefix && !mnl_attr_put_check(nlh, len, RTA_DST, sizeof(dst), &dst))
		return NULL;
	if (gw.s_addr && !mnl_attr_put_check(nlh, len, RTA_GATEWAY, sizeof(gw), &gw))
		return NULL;
	if (ifindex && !mnl_attr_put_u32_check(nlh, len, RTA_OIF, ifindex))
		return NULL;
	return nlh;
}

/* --- the socket ---------------------------------------------------------- */

struct nl_req {
	mnl_cb_t cb;		/* each data message of the answer, or NULL */
	void *data;
	char ext[256];		/* the kernel's extended-ack text, if it sent one */
};

static int ext_attr_cb(const struct nlattr *attr, void *data)
{
	struct nl_req *req = data;

	if (mnl_attr_get_type(attr) == NLMSGERR_ATTR_MSG &&
	    mnl_attr_validate(attr, MNL_TYPE_NUL_STRING) == 0)
		snprintf(req->ext, sizeof(req->ext), "%s", mnl_attr_get_str(attr));
	return MNL_CB_OK;
}

static int nl_error_cb(const struct nlmsghdr *nlh, void *data)
{
	const struct nlmsgerr *e = mnl_nlmsg_get_payload(nlh);
	size_t plen = mnl_nlmsg_get_payload_len(nlh), off;

	if (plen < sizeof(*e)) {
		errno = EBADMSG;
		return MNL_CB_ERROR;
	}
	if (e->error == 0)
		return MNL_CB_STOP;	/* the ack */
	if (nlh->nlmsg_flags & NLM_F_ACK_TLVS) {
		/* the TLVs follow the request, or only its header when capped */
		off = sizeof(*e);
		if (!(nlh->nlmsg_flags & NLM_F_CAPPED))
			off += e->msg.nlmsg_len - sizeof(struct nlmsghdr);
		if (off < plen)
			mnl_attr_parse_payload((const char *)e + off, plen - off, ext_attr_cb, data);
	}
	errno = -e->error;
	return MNL_CB_ERROR;
}

static int nl_done_cb(const struct nlmsghdr *nlh, void *data)
{
	int derr;

	(void)data;
	/* a dump that failed half-way ends with its error in NLMSG_DONE */
	if (mnl_nlmsg_get_payload_len(nlh) >= sizeof(derr)) {
		memcpy(&derr, mnl_nlmsg_get_payload(nlh), sizeof(derr));
		if (derr < 0) {
			errno = -derr;
			return MNL_CB_ERROR;
		}
	}
	return MNL_CB_STOP;
}

static int nl_noop_cb(const struct nlmsghdr *nlh, void *data)
{
	(void)nlh;
	(void)data;
	return MNL_CB_OK;
}

static int nl_overrun_cb(const struct nlmsghdr *nlh, void *data)
{
	(void)nlh;
	(void)data;
	errno = ENOSPC;
	return MNL_CB_ERROR;
}

static int nl_data_cb(const struct nlmsghdr *nlh, void *data)
{
	struct nl_req *req = data;

	return req->cb ? req->cb(nlh, req->data) : MNL_CB_OK;
}

/*
 * Sends nlh, runs cb on each data message of the answer until the ack or
 * the end of the dump. On failure, err gets "Error: <kernel's text>." or the
 * errno's text, and -errno is returned.
 */
static int nl_talk(struct nlmsghdr *nlh, mnl_cb_t cb, void *data, char *err, size_t errlen)
{
	/* not const: mnl_cb_run2() takes it so, though it only reads it */
	static mnl_cb_t ctl[NLMSG_MIN_TYPE] = {
		[NLMSG_NOOP] = nl_noop_cb,
		[NLMSG_ERROR] = nl_error_cb,
		[NLMSG_DONE] = nl_done_cb,
		[NLMSG_OVERRUN] = nl_overrun_cb,
	};
	struct nl_req req = { .cb = cb, .data = data };
	struct mnl_socket *nl;
	unsigned int portid, seq;
	int one = 1, ret, e;
	ssize_t n;
	char *buf;

	/* a dump of many qdiscs comes in messages of up to 32 KiB */
	buf = malloc(32768);
	if (!buf) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	nl = mnl_socket_open2(NETLINK_ROUTE, SOCK_CLOEXEC);
	if (!nl) {
		e = errno;
		snprintf(err, errlen, "Couldn't open a NETLINK_ROUTE socket: %s", strerror(e));
		free(buf);
		return -e;
	}
	if (mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) < 0) {
		e = errno;
		snprintf(err, errlen, "Couldn't bind the NETLINK_ROUTE socket: %s", strerror(e));
		goto out;
	}
	/* The kernel's reason in words; kernels before 4.12 refuse it: not fatal. */
	mnl_socket_setsockopt(nl, NETLINK_EXT_ACK, &one, sizeof(one));
	mnl_socket_setsockopt(nl, NETLINK_CAP_ACK, &one, sizeof(one));

	portid = mnl_socket_get_portid(nl);
	seq = nlh->nlmsg_seq = 1;
	if (mnl_socket_sendto(nl, nlh, nlh->nlmsg_len) < 0) {
		e = errno;
		snprintf(err, errlen, "Couldn't send to the kernel: %s", strerror(e));
		goto out;
	}
	do {
		n = mnl_socket_recvfrom(nl, buf, 32768);
		if (n < 0) {
			e = errno;
			snprintf(err, errlen, "Couldn't read the kernel's answer: %s", strerror(e));
			goto out;
		}
		ret = mnl_cb_run2(buf, n, seq, portid, nl_data_cb, &req, ctl, NLMSG_MIN_TYPE);
	} while (ret > MNL_CB_STOP);
	e = ret < 0 ? errno : 0;
	if (e && req.ext[0])
		snprintf(err, errlen, "Error: %s%s", req.ext,
			 req.ext[strlen(req.ext) - 1] == '.' ? "" : ".");
	else if (e)
		snprintf(err, errlen, "%s", strerror(e));
out:
	mnl_socket_close(nl);
	free(buf);
	return -e;
}

static int dev_index(const char *dev, char *err, size_t errlen)
{
	unsigned int idx;

	if (!dev || !*dev || strlen(dev) >= IFNAMSIZ) {
		snprintf(err, errlen, "bad interface name '%s'", dev ? dev : "");
		return -EINVAL;
	}
	idx = if_nametoindex(dev);
	if (!idx) {
		int e = errno;

		snprintf(err, errlen, "no interface '%s' here: %s", dev, strerror(e));
		return -e;
	}
	return (int)idx;
}

/* --- netem --------------------------------------------------------------- */

int eh_netem_set(const char *dev, const struct eh_netem *ne, char *err, size_t errlen)
{
	char buf[EH_NL_REQ_BYTES] = {};
	struct nlmsghdr *nlh;
	int ifindex;

	ifindex = dev_index(dev, err, errlen);
	if (ifindex < 0)
		return ifindex;
	nlh = eh_nl_netem_msg(buf, sizeof(buf), ifindex, ne);
	if (!nlh) {
		snprintf(err, errlen, "netem for %s: delay or jitter out of range", dev);
		return -ERANGE;
	}
	return nl_talk(nlh, NULL, NULL, err, errlen);
}

struct netem_dump {
	int ifindex;
	bool found;
	int err;
	struct eh_netem *out;
};

static int netem_dump_cb(const struct nlmsghdr *nlh, void *data)
{
	struct netem_dump *d = data;
	int r;

	r = eh_nl_qdisc_parse(nlh, d->ifindex, d->out);
	if (r < 0 && !d->found)
		d->err = r;	/* read on, so that the dump is drained */
	else if (r > 0)
		d->found = true;
	return MNL_CB_OK;
}

static int netem_get(int ifindex, const char *dev, struct eh_netem *out, bool *present,
		     char *err, size_t errlen)
{
	char buf[EH_NL_REQ_BYTES] = {};
	struct netem_dump d = { .ifindex = ifindex, .out = out };
	struct nlmsghdr *nlh;
	struct tcmsg *tcm;
	int ret;

	*present = false;
	memset(out, 0, sizeof(*out));
	nlh = mnl_nlmsg_put_header(buf);
	nlh->nlmsg_type = RTM_GETQDISC;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
	tcm = mnl_nlmsg_put_extra_header(nlh, sizeof(*tcm));
	tcm->tcm_family = AF_UNSPEC;
	/* the kernel dumps every device's qdiscs; netem_dump_cb keeps dev's root */
	tcm->tcm_ifindex = ifindex;
	ret = nl_talk(nlh, netem_dump_cb, &d, err, errlen);
	if (ret)
		return ret;
	if (d.err && !d.found) {
		snprintf(err, errlen, "netem of %s: malformed qdisc message from the kernel", dev);
		return d.err;
	}
	if (!d.found)
		memset(out, 0, sizeof(*out));
	*present = d.found;
	return 0;
}

int eh_netem_get(const char *dev, struct eh_netem *out, bool *present, char *err,
		 size_t errlen)
{
	int ifindex;

	*present = false;
	memset(out, 0, sizeof(*out));
	ifindex = dev_index(dev, err, errlen);
	if (ifindex < 0)
		return ifindex;
	return netem_get(ifindex, dev, out, present, err, errlen);
}

int eh_netem_del(const char *dev, char *err, size_t errlen)
{
	char buf[EH_NL_REQ_BYTES] = {};
	struct eh_netem cur;
	struct nlmsghdr *nlh;
	struct tcmsg *tcm;
	bool present;
	int ifindex, ret;

	ifindex = dev_index(dev, err, errlen);
	if (ifindex < 0)
		return ifindex;
	/* only netem goes: a root qdisc somebody else put there stays */
	ret = netem_get(ifindex, dev, &cur, &present, err, errlen);
	if (ret || !present)
		return ret;
	nlh = mnl_nlmsg_put_header(buf);
	nlh->nlmsg_type = RTM_DELQDISC;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
	tcm = mnl_nlmsg_put_extra_header(nlh, sizeof(*tcm));
	tcm->tcm_family = AF_UNSPEC;
	tcm->tcm_ifindex = ifindex;
	tcm->tcm_parent = TC_H_ROOT;
	ret = nl_talk(nlh, NULL, NULL, err, errlen);
	/* gone in between: what was asked for */
	if (ret == -ENOENT) {
		err[0] = '\0';
		return 0;
	}
	return ret;
}

/* --- routes -------------------------------------------------------------- */

static int route_check(struct in_addr dst, int prefix, char *err, size_t errlen)
{
	uint32_t mask;
	char a[INET_ADDRSTRLEN];

	if (prefix < 0 || prefix > 32) {
		snprintf(err, errlen, "bad prefix length %d (0..32)", prefix);
		return -EINVAL;
	}
	mask = prefix ? htonl(~0u << (32 - prefix)) : 0;
	if (dst.s_addr & ~mask) {
		inet_ntop(AF_INET, &dst, a, sizeof(a));
		snprintf(err, errlen, "%s/%d has host bits set", a, prefix);
		return -EINVAL;
	}
	return 0;
}

int eh_route_replace(struct in_addr dst, int prefix, struct in_addr gw, const char *dev,
		     char *err, size_t errlen)
{
	char buf[EH_NL_REQ_BYTES] = {};
	struct nlmsghdr *nlh;
	int ifindex = 0, ret;

	ret = route_check(dst, prefix, err, errlen);
	if (ret)
		return ret;
	if (dev) {
		ifindex = dev_index(dev, err, errlen);
		if (ifindex < 0)
			return ifindex;
	} else if (!gw.s_addr) {
		snprintf(err, errlen, "a route needs a gateway or a device");
		return -EINVAL;
	}
	nlh = eh_nl_route_msg(buf, sizeof(buf), RTM_NEWROUTE, dst, prefix, gw, ifindex);
	if (!nlh) {
		snprintf(err, errlen, "route message does not fit");
		return -EMSGSIZE;
	}
	return nl_talk(nlh, NULL, NULL, err, errlen);
}

int eh_route_del(struct in_addr dst, int prefix, char *err, size_t errlen)
{
	char buf[EH_NL_REQ_BYTES] = {};
	struct in_addr none = {};
	struct nlmsghdr *nlh;
	int ret;

	ret = route_check(dst, prefix, err, errlen);
	if (ret)
		return ret;
	nlh = eh_nl_route_msg(buf, sizeof(buf), RTM_DELROUTE, dst, prefix, none, 0);
	if (!nlh) {
		snprintf(err, errlen, "route message does not fit");
		return -EMSGSIZE;
	}
	ret = nl_talk(nlh, NULL, NULL, err, errlen);
	/* the kernel says ESRCH for a route it does not have */
	if (ret == -ESRCH || ret == -ENOENT) {
		err[0] = '\0';
		return 0;
	}
	return ret;
}
