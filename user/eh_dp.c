// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* libedgehop-dp: see eh_dp.h. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <mntent.h>
#include <net/if.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <linux/if_link.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/pkt_sched.h>
#include <linux/ethtool.h>
#include <linux/sockios.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <linux/magic.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "eh_dp.h"
#include "edgehop.skel.h"

static const char *const mode_names[EH_MODE_MAX] = {
	[EH_MODE_NONE] = "none",
	[EH_MODE_LOCAL] = "local",
	[EH_MODE_FORWARD] = "forward",
	[EH_MODE_FWD_BUF] = "fwd-buf",
	[EH_MODE_BUF_ONLY] = "buf-only",
};

static const char *const counter_names[EH_C_MAX] = {
	[EH_C_RX] = "rx",
	[EH_C_LOCAL] = "local",
	[EH_C_FORWARD] = "forwarded",
	[EH_C_FWD_SLOW] = "forwarded_slowpath",
	[EH_C_BUFFERED] = "buffered",
	[EH_C_RING_FULL] = "ring_full",
	[EH_C_TOO_BIG] = "too_big",
	[EH_C_BUF_DROP] = "buf_dropped",
	[EH_C_PASS] = "passed",
	[EH_C_MALFORMED] = "malformed",
	[EH_C_REPLAYED] = "replayed",
	[EH_C_TX_REWRITE] = "tx_rewritten",
	[EH_C_RET_FAST] = "returned_fast",
	[EH_C_TX_FOREIGN] = "tx_foreign",
	[EH_C_NO_RING] = "no_ring",
	[EH_C_FWD_PEER] = "forwarded_peer",
	[EH_C_FWD_NEIGH] = "forwarded_neigh",
	[EH_C_RET_PEER] = "returned_peer",
};

const char *eh_mode_name(enum eh_mode m)
{
	return (unsigned int)m < EH_MODE_MAX ? mode_names[m] : "invalid";
}

int eh_mode_parse(const char *s, enum eh_mode *m)
{
	for (int i = 0; i < EH_MODE_MAX; i++) {
		if (!strcmp(s, mode_names[i])) {
			*m = i;
			return 0;
		}
	}
	return -EINVAL;
}

const char *eh_counter_name(enum eh_counter c)
{
	return (unsigned int)c < EH_C_MAX ? counter_names[c] : "invalid";
}

__attribute__((format(printf, 1, 2)))
static void pr_err(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "edgehop: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
}

static bool verbose;

static const char *const pinned_maps[] = { "eh_steer", "eh_config", "eh_counters", "eh_mud_dp",
					   "eh_replay_rings" };

static int libbpf_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	if (level == LIBBPF_DEBUG && !verbose)
		return 0;

	return vfprintf(stderr, fmt, ap);
}

static int libbpf_print_none(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	(void)level, (void)fmt, (void)ap;
	return 0;
}

static int pin_path(char *buf, size_t len, const char *pin, const char *name)
{
	int n = snprintf(buf, len, "%s/%s", pin, name);

	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

static int check_bpffs(const char *pin)
{
	char parent[PATH_MAX];
	struct statfs st;
	char *slash;

	snprintf(parent, sizeof(parent), "%s", pin);
	slash = strrchr(parent, '/');
	if (slash && slash != parent)
		*slash = '\0';
	if (statfs(parent, &st)) {
		pr_err("Couldn't stat %s: %s\n", parent, strerror(errno));
		return -errno;
	}
	if (st.f_type == BPF_FS_MAGIC)
		return 0;
	/* As bpftool does: the conventional mount point gets mounted on demand. */
	if (!strcmp(parent, "/sys/fs/bpf") &&
	    !mount("bpf", parent, "bpf", 0, "mode=0700"))
		return 0;
	pr_err("%s is not a BPF file system (mount -t bpf bpf %s)\n", parent, parent);
	return -ENOTDIR;
}

/* The driver behind an interface (ETHTOOL_GDRVINFO), "" if unknown. */
static void driver_of(const char *ifname, char *drv, size_t len)
{
	struct ethtool_drvinfo info = { .cmd = ETHTOOL_GDRVINFO };
	struct ifreq ifr = {};
	int fd;

	drv[0] = '\0';
	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return;
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", ifname);
	ifr.ifr_data = (void *)&info;
	if (!ioctl(fd, SIOCETHTOOL, &ifr))
		snprintf(drv, len, "%s", info.driver);
	close(fd);
}

/*
 * Is @ifindex a veth whose peer lives in another network namespace? Then a
 * TC program can hand a frame straight to the peer's ingress
 * (bpf_redirect_peer); the kernel drops such a redirect when the peer is in
 * the same namespace or the device has no peer, and the program cannot tell,
 * so the loader asks rtnetlink: the link's kind, and IFLA_LINK_NETNSID, which
 * the kernel reports only for a peer in another namespace. Any doubt (a
 * failed query included) is "no": the plain redirect works everywhere.
 */
static bool veth_peer_elsewhere(int ifindex)
{
	struct {
		struct nlmsghdr nh;
		struct ifinfomsg ifi;
	} req = {
		.nh = { .nlmsg_len = sizeof(req), .nlmsg_type = RTM_GETLINK,
			.nlmsg_flags = NLM_F_REQUEST, .nlmsg_seq = 1 },
		.ifi = { .ifi_family = AF_UNSPEC, .ifi_index = ifindex },
	};
	struct sockaddr_nl sa = { .nl_family = AF_NETLINK };
	char buf[16384] __attribute__((aligned(NLMSG_ALIGNTO)));
	bool veth = false, elsewhere = false;
	struct nlmsghdr *nh;
	struct rtattr *rta;
	ssize_t n;
	int fd, len;

	fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
	if (fd < 0)
		return false;
	if (sendto(fd, &req, sizeof(req), 0, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		goto out;
	n = recv(fd, buf, sizeof(buf), 0);
	nh = (struct nlmsghdr *)buf;
	if (n < 0 || !NLMSG_OK(nh, (size_t)n) || nh->nlmsg_type != RTM_NEWLINK)
		goto out;
	len = IFLA_PAYLOAD(nh);
	for (rta = IFLA_RTA(NLMSG_DATA(nh)); RTA_OK(rta, len); rta = RTA_NEXT(rta, len)) {
		if (rta->rta_type == IFLA_LINK_NETNSID) {
			elsewhere = true;
		} else if (rta->rta_type == IFLA_LINKINFO) {
			struct rtattr *li = RTA_DATA(rta);
			int lilen = RTA_PAYLOAD(rta);

			for (; RTA_OK(li, lilen); li = RTA_NEXT(li, lilen))
				if (li->rta_type == IFLA_INFO_KIND &&
				    !strncmp(RTA_DATA(li), "veth", RTA_PAYLOAD(li)))
					veth = true;
		}
	}
out:
	close(fd);
	return veth && elsewhere;
}

static int ifindex_of(const char *name, const char *role)
{
	int idx;

	if (!name || !*name) {
		pr_err("no %s interface given\n", role);
		return -EINVAL;
	}
	idx = if_nametoindex(name);
	if (!idx) {
		pr_err("%s interface %s not found: %s\n", role, name, strerror(errno));
		return -ENODEV;
	}
	return idx;
}

/*
 * Attach prog to ifindex through a pinned XDP link. Idempotent: our own pinned
 * link on the same interface is updated in place with the new program; an XDP
 * program attached by someone else is an error, never replaced. *created: a
 * new link was made (it was not there before this call).
 */
static int attach_xdp(struct bpf_program *prog, int ifindex, const char *ifname,
		      const char *link_pin, __u32 flags, bool *created)
{
	LIBBPF_OPTS(bpf_link_create_opts, lopts, .flags = flags);
	struct bpf_link_info info = {};
	__u32 info_len = sizeof(info);
	__u32 cur_id = 0;
	int fd, err;

	fd = bpf_obj_get(link_pin);
	if (fd >= 0) {
		err = bpf_obj_get_info_by_fd(fd, &info, &info_len);
		if (err || info.type != BPF_LINK_TYPE_XDP ||
		    (int)info.xdp.ifindex != ifindex) {
			pr_err("%s holds an XDP link for another interface (ifindex %u): unload first\n",
			       link_pin, info.xdp.ifindex);
			close(fd);
			return -EEXIST;
		}
		err = bpf_link_update(fd, bpf_program__fd(prog), NULL);
		close(fd);
		if (err) {
			pr_err("Couldn't update XDP link on %s: %s\n", ifname, strerror(-err));
			return err;
		}
		return 0;
	}

	err = bpf_xdp_query_id(ifindex, 0, &cur_id);
	if (err) {
		pr_err("Couldn't query XDP on %s: %s\n", ifname, strerror(-err));
		return err;
	}
	if (cur_id) {
		pr_err("%s already has an XDP program (id %u) that edgehop did not attach; detach it first\n",
		       ifname, cur_id);
		return -EBUSY;
	}
	fd = bpf_link_create(bpf_program__fd(prog), ifindex, BPF_XDP, &lopts);
	if (fd < 0) {
		err = -errno;
		if (!(flags & XDP_FLAGS_DRV_MODE))
			pr_err("Couldn't attach XDP to %s: %s\n", ifname, strerror(-err));
		return err;
	}
	err = bpf_obj_pin(fd, link_pin) ? -errno : 0;
	if (err)
		pr_err("Couldn't pin XDP link at %s: %s\n", link_pin, strerror(-err));
	else
		*created = true;
	close(fd);	/* the pin (if any) keeps it attached; without it, it goes */
	return err;
}

static int detach_xdp(const char *link_pin, const char *ifname)
{
	int fd, err = 0;

	fd = bpf_obj_get(link_pin);
	if (fd < 0)
		return errno == ENOENT ? 0 : -errno;
	if (bpf_link_detach(fd) && errno != ENOLINK) {
		err = -errno;
		pr_err("Couldn't detach XDP link from %s: %s\n", ifname, strerror(errno));
	}
	close(fd);
	if (unlink(link_pin) && errno != ENOENT && !err)
		err = -errno;
	return err;
}

/*
 * Who holds our TC handle at @point on ifindex: 0 nobody (or no clsact), 1
 * the program pinned at @path (ours), -EBUSY another program (*id: its id).
 */
static int tc_holder(int ifindex, enum bpf_tc_attach_point point, const char *path, __u32 *id)
{
	LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex, .attach_point = point);
	LIBBPF_OPTS(bpf_tc_opts, q, .handle = EH_TC_HANDLE, .priority = EH_TC_PRIO);
	struct bpf_prog_info info = {};
	__u32 len = sizeof(info);
	int fd, err;

	libbpf_set_print(libbpf_print_none);
	err = bpf_tc_query(&hook, &q);
	libbpf_set_print(libbpf_print);
	if (err)
		return 0;
	*id = q.prog_id;
	fd = bpf_obj_get(path);
	if (fd < 0)
		return -EBUSY;
	err = bpf_obj_get_info_by_fd(fd, &info, &len);
	close(fd);
	return !err && info.id == q.prog_id ? 1 : -EBUSY;
}

/*
 * Attach prog to ifindex's clsact hook at @point with our handle/priority,
 * pinned at pin/@pin_name. *hook_created: this call created the clsact qdisc
 * (an existing one is kept); *added: our handle was free before this call
 * (else our own program there was replaced).
 */
static int attach_tc(struct bpf_program *prog, int ifindex, const char *ifname,
		     enum bpf_tc_attach_point point, const char *pin, const char *pin_name,
		     bool *hook_created, bool *added)
{
	LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex, .attach_point = point);
	LIBBPF_OPTS(bpf_tc_opts, opts, .handle = EH_TC_HANDLE, .priority = EH_TC_PRIO,
		    .flags = BPF_TC_F_REPLACE);
	char path[PATH_MAX];
	bool created = false, free_handle = true;
	int err;

	/* An existing clsact (-EEXIST) is normal: keep libbpf from warning about it. */
	libbpf_set_print(verbose ? libbpf_print : libbpf_print_none);
	err = bpf_tc_hook_create(&hook);
	libbpf_set_print(libbpf_print);
	if (!err)
		created = true;
	else if (err != -EEXIST) {
		pr_err("Couldn't create clsact qdisc on %s: %s\n", ifname, strerror(-err));
		return err;
	}
	if (created)
		*hook_created = true;
	err = pin_path(path, sizeof(path), pin, pin_name);
	if (err)
		goto err_hook;
	if (!created) {
		/* Our handle is taken: replaced only if by our own pinned program. */
		__u32 id = 0;
		int held = tc_holder(ifindex, point, path, &id);

		if (held < 0) {
			pr_err("%s already has a TC %s program (id %u, handle 0x%x) that edgehop did not attach here; detach it first\n",
			       ifname, point == BPF_TC_INGRESS ? "ingress" : "egress", id,
			       EH_TC_HANDLE);
			return held;
		}
		free_handle = !held;
	}
	opts.prog_fd = bpf_program__fd(prog);
	err = bpf_tc_attach(&hook, &opts);
	if (err) {
		pr_err("Couldn't attach TC %s program to %s: %s\n",
		       point == BPF_TC_INGRESS ? "ingress" : "egress", ifname, strerror(-err));
		goto err_hook;
	}
	/* From here on the filter is attached: the caller undoes it on failure. */
	*added = free_handle;
	unlink(path);
	err = bpf_program__pin(prog, path);
	if (err) {
		pr_err("Couldn't pin TC program at %s: %s\n", path, strerror(-err));
		return err;
	}
	return 0;
err_hook:
	if (created) {
		hook.attach_point = BPF_TC_INGRESS | BPF_TC_EGRESS;
		bpf_tc_hook_destroy(&hook);
		*hook_created = false;
	}
	return err;
}

static int detach_tc(int ifindex, const char *ifname, enum bpf_tc_attach_point point,
		     bool destroy_hook)
{
	LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex, .attach_point = point);
	LIBBPF_OPTS(bpf_tc_opts, opts, .handle = EH_TC_HANDLE, .priority = EH_TC_PRIO);
	int err;

	/* Quiet: "nothing attached" is the usual answer for the hook not in use. */
	libbpf_set_print(verbose ? libbpf_print : libbpf_print_none);
	err = bpf_tc_detach(&hook, &opts);
	libbpf_set_print(libbpf_print);
	if (err && err != -ENOENT && err != -EINVAL) {
		pr_err("Couldn't detach TC program from %s: %s\n", ifname, strerror(-err));
		return err;
	}
	if (destroy_hook) {
		/* clsact covers both directions; it is ours, so it goes. */
		hook.attach_point = BPF_TC_INGRESS | BPF_TC_EGRESS;
		err = bpf_tc_hook_destroy(&hook);
		if (err && err != -ENOENT && err != -EINVAL) {
			pr_err("Couldn't remove clsact qdisc from %s: %s\n", ifname, strerror(-err));
			return err;
		}
	}
	return 0;
}

int eh_attach_parse(const char *s, enum eh_attach *a)
{
	static const char *const names[] = { "auto", "xdp", "tc" };

	for (int i = 0; i < 3; i++) {
		if (!strcmp(s, names[i])) {
			*a = i;
			return 0;
		}
	}
	return -EINVAL;
}

enum { EH_RADIO, EH_WAN, EH_SIDES };

static const char *const side_link[EH_SIDES] = { EH_PIN_LINK_RADIO, EH_PIN_LINK_WAN };
static const char *const side_tc[EH_SIDES] = { EH_PIN_PROG_TC_RADIO, EH_PIN_PROG_TC_WAN };

/*
 * What one load put on the interfaces that was not there before it. A load
 * that fails takes exactly this off again, and nothing else: our own
 * programs from an earlier load, replaced in place, stay, and so does
 * everything edgehop did not attach.
 */
struct eh_attached {
	int ifindex[EH_SIDES];
	const char *ifname[EH_SIDES];
	bool xdp[EH_SIDES];	/* a new XDP link (pinned at side_link) */
	bool tc_in[EH_SIDES];	/* a new TC ingress filter at our handle */
	bool tc_egr;		/* a new TC egress filter on the radio */
	bool clsact[EH_SIDES];	/* a clsact qdisc this load created */
};

/*
 * One side at XDP or at TC ingress. The other hook of that side is left as it
 * is: detach_unused() removes it once the whole load has succeeded.
 * @flags: XDP_FLAGS_DRV_MODE to insist on native XDP (auto).
 */
static int attach_side(struct bpf_program *xdp, struct bpf_program *tc, int side,
		       const char *pin, bool use_tc, __u32 flags, struct eh_attached *a)
{
	char link[PATH_MAX];
	int err;

	if (use_tc)
		return attach_tc(tc, a->ifindex[side], a->ifname[side], BPF_TC_INGRESS, pin,
				 side_tc[side], &a->clsact[side], &a->tc_in[side]);
	err = pin_path(link, sizeof(link), pin, side_link[side]);
	if (err)
		return err;
	return attach_xdp(xdp, a->ifindex[side], a->ifname[side], link, flags, &a->xdp[side]);
}

/*
 * After a successful load: the hook of each side not in use goes (a reload
 * may change --attach; an "auto" attempt at native XDP may have attached one
 * side before the other refused).
 */
static int detach_unused(const char *pin, bool use_tc, struct eh_attached *a)
{
	char path[PATH_MAX];
	int err;

	for (int s = 0; s < EH_SIDES; s++) {
		if (use_tc) {
			err = pin_path(path, sizeof(path), pin, side_link[s]);
			if (!err)
				err = detach_xdp(path, a->ifname[s]);
			if (err)
				return err;
			a->xdp[s] = false;
		} else {
			__u32 id;

			err = pin_path(path, sizeof(path), pin, side_tc[s]);
			if (err)
				return err;
			/* Only our own filter: another instance's is not ours to take off. */
			if (tc_holder(a->ifindex[s], BPF_TC_INGRESS, path, &id) == 1) {
				err = detach_tc(a->ifindex[s], a->ifname[s], BPF_TC_INGRESS, false);
				if (err)
					return err;
			}
			unlink(path);
			a->tc_in[s] = false;
		}
	}
	return 0;
}

/* A failed load: off again with what it attached (struct eh_attached). */
static void detach_attached(const char *pin, const struct eh_attached *a)
{
	char path[PATH_MAX];

	for (int s = 0; s < EH_SIDES; s++) {
		if (a->xdp[s] && !pin_path(path, sizeof(path), pin, side_link[s]))
			detach_xdp(path, a->ifname[s]);
		if (a->tc_in[s]) {
			detach_tc(a->ifindex[s], a->ifname[s], BPF_TC_INGRESS, false);
			if (!pin_path(path, sizeof(path), pin, side_tc[s]))
				unlink(path);
		}
		if (s == EH_RADIO && a->tc_egr) {
			detach_tc(a->ifindex[s], a->ifname[s], BPF_TC_EGRESS, false);
			if (!pin_path(path, sizeof(path), pin, EH_PIN_PROG_TC))
				unlink(path);
		}
		/* Created by this load: nothing else was on it; it goes whole. */
		if (a->clsact[s])
			detach_tc(a->ifindex[s], a->ifname[s], BPF_TC_INGRESS, true);
	}
}

/* Removes the pinned maps and TC program, then the pin directory. */
static int remove_pins(const char *pin)
{
	char path[PATH_MAX];
	int ret = 0;

	pin_path(path, sizeof(path), pin, EH_PIN_PROG_TC);
	unlink(path);
	pin_path(path, sizeof(path), pin, EH_PIN_PROG_TC_RADIO);
	unlink(path);
	pin_path(path, sizeof(path), pin, EH_PIN_PROG_TC_WAN);
	unlink(path);
	/* The AP-wide ring of edgehop before per-MUD rings. */
	pin_path(path, sizeof(path), pin, "eh_replay");
	unlink(path);
	for (size_t i = 0; i < sizeof(pinned_maps) / sizeof(pinned_maps[0]); i++) {
		pin_path(path, sizeof(path), pin, pinned_maps[i]);
		if (unlink(path) && errno != ENOENT) {
			pr_err("Couldn't remove %s: %s\n", path, strerror(errno));
			ret = ret ? ret : -errno;
		}
	}
	if (rmdir(pin) && errno != ENOENT) {
		pr_err("Couldn't remove %s: %s\n", pin, strerror(errno));
		ret = ret ? ret : -errno;
	}
	return ret;
}

int eh_dp_load(const struct eh_load_opts *o)
{
	LIBBPF_OPTS(bpf_object_open_opts, open_opts);
	const char *pin = o->pin ? o->pin : EH_PIN_DEFAULT;
	struct edgehop_bpf *skel = NULL;
	struct eh_cfg cfg = {}, old = {};
	struct eh_attached a = { .ifname = { o->radio, o->wan } };
	int radio_idx, wan_idx, err;
	bool fresh = false, use_tc;
	char radio_drv[32], wan_drv[32];
	__u32 zero = 0;

	verbose = o->verbose;
	libbpf_set_print(libbpf_print);
	if (geteuid() != 0) {
		pr_err("loading the dataplane needs root (CAP_BPF and CAP_NET_ADMIN)\n");
		return -EPERM;
	}
	if (access("/sys/kernel/btf/vmlinux", R_OK)) {
		pr_err("this kernel has no BTF (/sys/kernel/btf/vmlinux): it needs CONFIG_DEBUG_INFO_BTF=y\n");
		return -EOPNOTSUPP;
	}
	if (!o->vip.s_addr || !o->vip_port) {
		pr_err("no service address given (VIP=<ipv4>:<port>)\n");
		return -EINVAL;
	}
	radio_idx = ifindex_of(o->radio, "radio");
	if (radio_idx < 0)
		return radio_idx;
	wan_idx = ifindex_of(o->wan, "WAN");
	if (wan_idx < 0)
		return wan_idx;
	if (radio_idx == wan_idx) {
		pr_err("radio and WAN must be different interfaces (both are %s)\n", o->radio);
		return -EINVAL;
	}
	a.ifindex[EH_RADIO] = radio_idx;
	a.ifindex[EH_WAN] = wan_idx;
	err = check_bpffs(pin);
	if (err)
		return err;
	if (!mkdir(pin, 0700)) {
		fresh = true;
	} else if (errno != EEXIST) {
		err = -errno;
		pr_err("Couldn't create pin directory %s: %s\n", pin, strerror(errno));
		return err;
	}

	/* Maps already pinned there are reused: steering entries survive a reload. */
	open_opts.pin_root_path = pin;
	skel = edgehop_bpf__open_opts(&open_opts);
	if (!skel) {
		err = -errno;
		pr_err("Couldn't open BPF object: %s\n", strerror(errno));
		goto cleanup;
	}
	if (o->ring_bytes) {
		/*
		 * Each MUD's ring is created with cfg.ring_bytes (ring_create);
		 * the kernel does not hold inner ring buffers to the
		 * template's size.
		 */
		err = eh_ring_bytes_check(o->ring_bytes);
		if (err)
			goto cleanup;
	}
	err = edgehop_bpf__load(skel);
	if (err) {
		pr_err("Couldn't load BPF programs: %s (is %s from an older edgehop? unload first)\n",
		       strerror(-err), pin);
		goto cleanup;
	}

	bpf_map_lookup_elem(bpf_map__fd(skel->maps.eh_config), &zero, &old);
	cfg.vip = o->vip.s_addr;
	cfg.vip_port = htons(o->vip_port);
	cfg.wan_ifindex = wan_idx;
	cfg.radio_ifindex = radio_idx;
	cfg.ring_bytes = o->ring_bytes ? o->ring_bytes : EH_RING_DEFAULT;
	cfg.flags = old.flags & (EH_CFG_TC_HOOK_OURS | EH_CFG_WAN_HOOK_OURS);
	driver_of(o->radio, radio_drv, sizeof(radio_drv));
	driver_of(o->wan, wan_drv, sizeof(wan_drv));

	use_tc = o->attach == EH_ATTACH_TC ||
		 (o->attach == EH_ATTACH_AUTO && (!strcmp(radio_drv, "veth") || !strcmp(wan_drv, "veth")));
	if (!use_tc) {
		/* auto: native XDP on both, or TC on both (a redirect needs XDP at its target). */
		__u32 flags = o->attach == EH_ATTACH_AUTO ? XDP_FLAGS_DRV_MODE : 0;

		err = attach_side(skel->progs.eh_xdp_radio, NULL, EH_RADIO, pin, false, flags, &a);
		if (!err)
			err = attach_side(skel->progs.eh_xdp_wan, NULL, EH_WAN, pin, false, flags, &a);
		if (err && o->attach == EH_ATTACH_AUTO) {
			fprintf(stderr, "edgehop: no native XDP on %s or %s (%s): attaching at TC\n",
				o->radio, o->wan, strerror(-err));
			use_tc = true;
		} else if (err) {
			goto cleanup;
		}
	}
	if (use_tc) {
		cfg.flags |= EH_CFG_RADIO_TC | EH_CFG_WAN_TC;
		err = attach_side(NULL, skel->progs.eh_tc_radio, EH_RADIO, pin, true, 0, &a);
		if (!err)
			err = attach_side(NULL, skel->progs.eh_tc_wan, EH_WAN, pin, true, 0, &a);
		if (err)
			goto cleanup;
	}
	/*
	 * XDP_REDIRECT into a veth needs XDP or GRO on its peer, which a loader
	 * cannot see: at XDP, "auto" leaves the fast return off on a veth radio.
	 * At TC the redirect is an skb's: always possible.
	 */
	if (o->fast_return == EH_FAST_RETURN_ON) {
		cfg.flags |= EH_CFG_FAST_RETURN;
	} else if (o->fast_return == EH_FAST_RETURN_AUTO) {
		if (use_tc || strcmp(radio_drv, "veth"))
			cfg.flags |= EH_CFG_FAST_RETURN;
		else
			fprintf(stderr, "edgehop: %s is a veth: fast return path off (needs XDP or GRO on its peer; --fast-return on to force)\n",
				o->radio);
	}
	if (use_tc && veth_peer_elsewhere(wan_idx))
		cfg.flags |= EH_CFG_WAN_PEER;
	if (use_tc && veth_peer_elsewhere(radio_idx))
		cfg.flags |= EH_CFG_RADIO_PEER;
	err = attach_tc(skel->progs.eh_tc_radio_egress, radio_idx, o->radio, BPF_TC_EGRESS, pin,
			EH_PIN_PROG_TC, &a.clsact[EH_RADIO], &a.tc_egr);
	if (err)
		goto cleanup;
	err = detach_unused(pin, use_tc, &a);
	if (err)
		goto cleanup;
	if (a.clsact[EH_RADIO])
		cfg.flags |= EH_CFG_TC_HOOK_OURS;
	if (a.clsact[EH_WAN])
		cfg.flags |= EH_CFG_WAN_HOOK_OURS;
	err = bpf_map_update_elem(bpf_map__fd(skel->maps.eh_config), &zero, &cfg, 0);
	if (err) {
		err = -errno;
		pr_err("Couldn't write the dataplane configuration: %s\n", strerror(errno));
	}
cleanup:
	/* A refused or failed load leaves the interfaces as it found them. */
	if (err)
		detach_attached(pin, &a);
	edgehop_bpf__destroy(skel);
	/* A failed first load leaves no pins behind (a failed reload keeps them). */
	if (err && fresh)
		remove_pins(pin);
	return err;
}


/*
 * Unload: whose is a TC filter at our handle?
 *
 * A TC filter lives on the interface, not in a pin, so an unload finds it by
 * handle/priority, which every edgehop instance shares. Another instance on
 * the same host may hold that handle on an interface this one also uses (one
 * at XDP and one at TC on a shared WAN: their hooks do not collide at load).
 * The filter goes only when its program is this instance's (it is pinned in
 * our pin directory, or uses a map pinned there), or when it is an edgehop
 * program of an instance whose pins are gone (a crash; a removed pin
 * directory): neither the program nor any of its maps is pinned anywhere on
 * the BPF file systems this process sees. A live instance keeps its maps
 * pinned, so its filter is never taken; anything else is left and said so.
 * docs/dataplane.md, "Unload: only our own TC filters".
 */
#define EH_PIN_WALK_DEPTH	8	/* directory levels searched below a bpffs mount */

struct eh_pin_obj {
	__u32 id;
	bool map;		/* a map's id, else a program's */
	char *path;
};

struct eh_pins {
	struct eh_pin_obj *v;
	size_t n, cap;
	bool walked;		/* pins_walk_all() done */
};

static void pins_free(struct eh_pins *p)
{
	for (size_t i = 0; i < p->n; i++)
		free(p->v[i].path);
	free(p->v);
	*p = (struct eh_pins){};
}

/* The program or map pinned at @path into @p; links and others are skipped. */
static void pins_add(struct eh_pins *p, const char *path)
{
	char fdlink[64], kind[64];
	struct bpf_prog_info pi = {};
	struct bpf_map_info mi = {};
	__u32 len, id;
	bool map;
	ssize_t n;
	int fd;

	fd = bpf_obj_get(path);
	if (fd < 0)
		return;
	/* Programs and maps have separate ids: the kind is the fd's inode's. */
	snprintf(fdlink, sizeof(fdlink), "/proc/self/fd/%d", fd);
	n = readlink(fdlink, kind, sizeof(kind) - 1);
	kind[n > 0 ? n : 0] = '\0';
	map = !strcmp(kind, "anon_inode:bpf-map");
	if (map) {
		len = sizeof(mi);
		id = bpf_obj_get_info_by_fd(fd, &mi, &len) ? 0 : mi.id;
	} else if (!strcmp(kind, "anon_inode:bpf-prog")) {
		len = sizeof(pi);
		id = bpf_obj_get_info_by_fd(fd, &pi, &len) ? 0 : pi.id;
	} else {
		id = 0;
	}
	close(fd);
	if (!id)
		return;
	if (p->n == p->cap) {
		size_t cap = p->cap ? 2 * p->cap : 32;
		struct eh_pin_obj *v = realloc(p->v, cap * sizeof(*v));

		if (!v)
			return;
		p->v = v;
		p->cap = cap;
	}
	p->v[p->n].path = strdup(path);
	if (!p->v[p->n].path)
		return;
	p->v[p->n].id = id;
	p->v[p->n].map = map;
	p->n++;
}

static void pins_walk(struct eh_pins *p, const char *dir, int depth)
{
	char path[PATH_MAX];
	struct dirent *de;
	struct stat st;
	unsigned char type;
	DIR *d;

	d = opendir(dir);
	if (!d)
		return;
	while ((de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (pin_path(path, sizeof(path), dir, de->d_name))
			continue;
		type = de->d_type;
		if (type == DT_UNKNOWN && !lstat(path, &st))
			type = S_ISDIR(st.st_mode) ? DT_DIR : S_ISREG(st.st_mode) ? DT_REG : DT_UNKNOWN;
		if (type == DT_DIR && depth > 0)
			pins_walk(p, path, depth - 1);
		else if (type == DT_REG)
			pins_add(p, path);
	}
	closedir(d);
}

/* Every program and map pinned on the bpffs mounts of this mount namespace. */
static void pins_walk_all(struct eh_pins *p)
{
	struct mntent *m;
	FILE *f;

	if (p->walked)
		return;
	p->walked = true;
	f = setmntent("/proc/self/mounts", "r");
	if (!f)
		return;
	while ((m = getmntent(f)))
		if (!strcmp(m->mnt_type, "bpf"))
			pins_walk(p, m->mnt_dir, EH_PIN_WALK_DEPTH);
	endmntent(f);
}

static const struct eh_pin_obj *pins_find(const struct eh_pins *p, bool map, __u32 id)
{
	for (size_t i = 0; i < p->n; i++)
		if (p->v[i].map == map && p->v[i].id == id)
			return &p->v[i];
	return NULL;
}

/* The pinned object among @prog_id and its maps, if any. */
static const struct eh_pin_obj *pins_of_prog(const struct eh_pins *p, __u32 prog_id,
					     const __u32 *map_ids, __u32 nr_maps)
{
	const struct eh_pin_obj *o = pins_find(p, false, prog_id);

	for (__u32 i = 0; !o && i < nr_maps; i++)
		o = pins_find(p, true, map_ids[i]);
	return o;
}

enum eh_tc_whose { EH_TC_NOBODY, EH_TC_OURS, EH_TC_ORPHAN, EH_TC_NOT_OURS };

/*
 * Whose is the filter at our handle at @point on ifindex (rule above)?
 * *prog_id, @name: its program; @why: for EH_TC_NOT_OURS, the reason.
 */
static enum eh_tc_whose tc_whose(int ifindex, enum bpf_tc_attach_point point,
				 const struct eh_pins *ours, struct eh_pins *all,
				 __u32 *prog_id, char *name, size_t name_len,
				 char *why, size_t why_len)
{
	LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex, .attach_point = point);
	LIBBPF_OPTS(bpf_tc_opts, q, .handle = EH_TC_HANDLE, .priority = EH_TC_PRIO);
	struct bpf_prog_info info = {};
	const struct eh_pin_obj *o;
	__u32 map_ids[64], len = sizeof(info);
	int fd, err;

	libbpf_set_print(libbpf_print_none);
	err = bpf_tc_query(&hook, &q);
	libbpf_set_print(libbpf_print);
	if (err)
		return EH_TC_NOBODY;
	*prog_id = q.prog_id;
	snprintf(name, name_len, "?");
	fd = bpf_prog_get_fd_by_id(q.prog_id);
	if (fd < 0) {
		snprintf(why, why_len, "its program cannot be inspected (%s)", strerror(errno));
		return EH_TC_NOT_OURS;
	}
	info.nr_map_ids = sizeof(map_ids) / sizeof(map_ids[0]);
	info.map_ids = (__u64)(unsigned long)map_ids;
	err = bpf_obj_get_info_by_fd(fd, &info, &len);
	close(fd);
	if (err) {
		snprintf(why, why_len, "its program cannot be inspected (%s)", strerror(-err));
		return EH_TC_NOT_OURS;
	}
	snprintf(name, name_len, "%s", info.name);
	if (info.nr_map_ids > sizeof(map_ids) / sizeof(map_ids[0]))
		info.nr_map_ids = sizeof(map_ids) / sizeof(map_ids[0]);
	if (pins_of_prog(ours, q.prog_id, map_ids, info.nr_map_ids))
		return EH_TC_OURS;
	if (strncmp(info.name, "eh_", 3)) {
		snprintf(why, why_len, "not an edgehop program");
		return EH_TC_NOT_OURS;
	}
	pins_walk_all(all);
	o = pins_of_prog(all, q.prog_id, map_ids, info.nr_map_ids);
	if (o) {
		snprintf(why, why_len, "another instance's: its %s is pinned at %s",
			 o->map ? "map" : "program", o->path);
		return EH_TC_NOT_OURS;
	}
	return EH_TC_ORPHAN;
}

/* Our filter at @point on ifindex, if it is ours (tc_whose); else say why not. */
static int unload_tc(int ifindex, const char *ifname, enum bpf_tc_attach_point point,
		     const struct eh_pins *ours, struct eh_pins *all)
{
	const char *dir = point == BPF_TC_INGRESS ? "ingress" : "egress";
	char name[BPF_OBJ_NAME_LEN + 1], why[PATH_MAX + 64];
	__u32 id = 0;

	/*
	 * tc cannot delete "this handle only if it runs that program"; between
	 * the query and the detach only this instance's own load could replace
	 * a filter found ours or orphaned (another instance's load refuses a
	 * filter at our handle that is not its own).
	 */
	switch (tc_whose(ifindex, point, ours, all, &id, name, sizeof(name), why, sizeof(why))) {
	case EH_TC_NOBODY:
		return 0;
	case EH_TC_NOT_OURS:
		fprintf(stderr, "edgehop: left %s (program id %u) at TC %s of %s: %s\n",
			name, id, dir, ifname, why);
		return 0;
	case EH_TC_ORPHAN:
		fprintf(stderr, "edgehop: removing %s (program id %u) at TC %s of %s: an edgehop program pinned nowhere (left by an instance whose pins are gone)\n",
			name, id, dir, ifname);
		break;
	case EH_TC_OURS:
		break;
	}
	return detach_tc(ifindex, ifname, point, false);
}

/*
 * TC filters on ifindex's clsact qdisc, both directions (rtnetlink dump), or
 * -errno. A filter chain's own header message (handle 0) is not counted.
 */
static int tc_filters_on(int ifindex)
{
	static const __u32 parents[] = { TC_H_MAKE(TC_H_CLSACT, TC_H_MIN_INGRESS),
					 TC_H_MAKE(TC_H_CLSACT, TC_H_MIN_EGRESS) };
	struct sockaddr_nl sa = { .nl_family = AF_NETLINK };
	char buf[32768] __attribute__((aligned(NLMSG_ALIGNTO)));
	int fd, count = 0, err = 0;

	fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
	if (fd < 0)
		return -errno;
	for (size_t i = 0; i < sizeof(parents) / sizeof(parents[0]) && !err; i++) {
		struct {
			struct nlmsghdr nh;
			struct tcmsg t;
		} req = {
			.nh = { .nlmsg_len = sizeof(req), .nlmsg_type = RTM_GETTFILTER,
				.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP, .nlmsg_seq = i + 1 },
			.t = { .tcm_family = AF_UNSPEC, .tcm_ifindex = ifindex,
			       .tcm_parent = parents[i] },
		};
		bool done = false;

		if (sendto(fd, &req, sizeof(req), 0, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
			err = -errno;
			break;
		}
		while (!done && !err) {
			ssize_t n = recv(fd, buf, sizeof(buf), 0);
			struct nlmsghdr *nh;
			int len;

			if (n < 0) {
				err = -errno;
				break;
			}
			len = (int)n;
			for (nh = (struct nlmsghdr *)buf; NLMSG_OK(nh, len); nh = NLMSG_NEXT(nh, len)) {
				if (nh->nlmsg_seq != req.nh.nlmsg_seq)
					continue;
				if (nh->nlmsg_type == NLMSG_DONE) {
					done = true;
					break;
				}
				if (nh->nlmsg_type == NLMSG_ERROR) {
					struct nlmsgerr *e = NLMSG_DATA(nh);

					/* No clsact in that direction: nothing there. */
					if (e->error && e->error != -EINVAL && e->error != -ENOENT)
						err = e->error;
					done = true;
					break;
				}
				if (nh->nlmsg_type == RTM_NEWTFILTER &&
				    ((struct tcmsg *)NLMSG_DATA(nh))->tcm_handle)
					count++;
			}
		}
	}
	close(fd);
	return err ? err : count;
}

/*
 * The clsact qdisc a load created on ifindex goes with the instance, unless
 * other filters are on it (another instance's, anyone's): destroying it would
 * take them all.
 */
static int unload_clsact(int ifindex, const char *ifname)
{
	int n = tc_filters_on(ifindex);

	if (n < 0) {
		fprintf(stderr, "edgehop: left the clsact qdisc on %s: couldn't list its filters (%s)\n",
			ifname, strerror(-n));
		return 0;
	}
	if (n > 0) {
		fprintf(stderr, "edgehop: left the clsact qdisc on %s (created by this instance): %d other filter%s on it\n",
			ifname, n, n == 1 ? " is" : "s are");
		return 0;
	}
	return detach_tc(ifindex, ifname, BPF_TC_INGRESS, true);
}

int eh_dp_unload(const char *pin, const char *radio, const char *wan)
{
	struct eh_pins ours = {}, all = {};
	struct eh_cfg cfg = {};
	char path[PATH_MAX];
	__u32 zero = 0;
	int fd, idx, err, ret = 0;

	pin = pin ? pin : EH_PIN_DEFAULT;
	if (geteuid() != 0) {
		pr_err("unloading the dataplane needs root\n");
		return -EPERM;
	}
	if (pin_path(path, sizeof(path), pin, "eh_config"))
		return -ENAMETOOLONG;
	fd = bpf_obj_get(path);
	if (fd >= 0) {
		bpf_map_lookup_elem(fd, &zero, &cfg);
		close(fd);
	}

	/* XDP: our pinned links only (an instance whose pins are gone has none left). */
	pin_path(path, sizeof(path), pin, EH_PIN_LINK_RADIO);
	err = detach_xdp(path, radio ? radio : "radio");
	ret = ret ? ret : err;
	pin_path(path, sizeof(path), pin, EH_PIN_LINK_WAN);
	err = detach_xdp(path, wan ? wan : "WAN");
	ret = ret ? ret : err;

	/* TC filters live on the interfaces, not in pins: they need the names. */
	pins_walk(&ours, pin, 0);
	idx = radio && *radio ? (int)if_nametoindex(radio) : 0;
	if (idx) {
		err = unload_tc(idx, radio, BPF_TC_INGRESS, &ours, &all);
		ret = ret ? ret : err;
		err = unload_tc(idx, radio, BPF_TC_EGRESS, &ours, &all);
		ret = ret ? ret : err;
		if (cfg.flags & EH_CFG_TC_HOOK_OURS) {
			err = unload_clsact(idx, radio);
			ret = ret ? ret : err;
		}
	} else if (radio && *radio) {
		fprintf(stderr, "edgehop: radio interface %s is gone; nothing to detach there\n", radio);
	}
	idx = wan && *wan ? (int)if_nametoindex(wan) : 0;
	if (idx) {
		err = unload_tc(idx, wan, BPF_TC_INGRESS, &ours, &all);
		ret = ret ? ret : err;
		if (cfg.flags & EH_CFG_WAN_HOOK_OURS) {
			err = unload_clsact(idx, wan);
			ret = ret ? ret : err;
		}
	}
	pins_free(&ours);
	pins_free(&all);

	err = remove_pins(pin);
	return ret ? ret : err;
}

static int open_pinned(const char *pin, const char *name)
{
	char path[PATH_MAX];
	int fd;

	if (pin_path(path, sizeof(path), pin, name))
		return -ENAMETOOLONG;
	fd = bpf_obj_get(path);
	if (fd < 0) {
		fd = -errno;
		if (fd == -ENOENT)
			pr_err("%s not found: is the dataplane loaded (make load)?\n", path);
		else
			pr_err("Couldn't open %s: %s\n", path, strerror(-fd));
	}
	return fd;
}

int eh_dp_open(struct eh_dp *dp, const char *pin)
{
	int *fds[] = { &dp->steer_fd, &dp->config_fd, &dp->counters_fd, &dp->mud_dp_fd,
		       &dp->rings_fd };
	int err;

	pin = pin ? pin : EH_PIN_DEFAULT;
	libbpf_set_print(libbpf_print);
	for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++)
		*fds[i] = -1;
	dp->replay_fd = -1;
	dp->pin_fd = open(pin, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++) {
		*fds[i] = open_pinned(pin, pinned_maps[i]);
		if (*fds[i] < 0) {
			err = *fds[i];
			eh_dp_close(dp);
			return err;
		}
	}
	dp->ncpus = libbpf_num_possible_cpus();
	if (dp->ncpus < 0) {
		err = dp->ncpus;
		eh_dp_close(dp);
		return err;
	}
	return 0;
}

void eh_dp_close(struct eh_dp *dp)
{
	int *fds[] = { &dp->steer_fd, &dp->config_fd, &dp->counters_fd, &dp->mud_dp_fd,
		       &dp->rings_fd, &dp->pin_fd };

	for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++) {
		if (*fds[i] >= 0)
			close(*fds[i]);
		*fds[i] = -1;
	}
}

static bool buffering(__u32 mode)
{
	return mode == EH_MODE_FWD_BUF || mode == EH_MODE_BUF_ONLY;
}

int eh_ring_bytes_check(uint32_t bytes)
{
	if (bytes < (uint32_t)sysconf(_SC_PAGESIZE) || (bytes & (bytes - 1)) ||
	    bytes > EH_RING_MAX_BYTES) {
		pr_err("Invalid replay buffer size %u: must be a power of two multiple of the page size, at most %u\n",
		       bytes, EH_RING_MAX_BYTES);
		return -EINVAL;
	}
	return 0;
}

/* The size a MUD's ring gets: its own, else the AP's. */
static uint32_t ring_size(struct eh_dp *dp, const struct eh_steer_ctl *c)
{
	struct eh_cfg cfg = {};
	__u32 zero = 0;

	if (c && c->ring_bytes)
		return c->ring_bytes;
	bpf_map_lookup_elem(dp->config_fd, &zero, &cfg);
	return cfg.ring_bytes ? cfg.ring_bytes : EH_RING_DEFAULT;
}

/* The size of the MUD's ring, 0 if it has none. */
static uint32_t ring_now(struct eh_dp *dp, struct in_addr mud)
{
	struct bpf_map_info info = {};
	__u32 id, len = sizeof(info);
	int fd;

	if (bpf_map_lookup_elem(dp->rings_fd, &mud.s_addr, &id))
		return 0;
	fd = bpf_map_get_fd_by_id(id);
	if (fd < 0)
		return 0;
	if (bpf_obj_get_info_by_fd(fd, &info, &len))
		info.max_entries = 0;
	close(fd);
	return info.max_entries;
}

/*
 * A new, empty ring of @bytes for the MUD; replaces its ring if @replace,
 * else keeps it.
 */
static int ring_create(struct eh_dp *dp, struct in_addr mud, bool replace, uint32_t bytes)
{
	LIBBPF_OPTS(bpf_map_create_opts, opts);
	int fd, err = 0;

	if (!replace && !bpf_map_lookup_elem(dp->rings_fd, &mud.s_addr, &fd))
		return 0;
	fd = bpf_map_create(BPF_MAP_TYPE_RINGBUF, "eh_ring", 0, 0, bytes, &opts);
	if (fd < 0) {
		err = -errno;
		pr_err("Couldn't create a replay buffer of %u bytes for %s: %s\n", bytes,
		       inet_ntoa(mud), strerror(errno));
		return err;
	}
	if (bpf_map_update_elem(dp->rings_fd, &mud.s_addr, &fd, replace ? BPF_ANY : BPF_NOEXIST) &&
	    errno != EEXIST) {
		err = -errno;
		pr_err("Couldn't add the replay buffer of %s: %s%s\n", inet_ntoa(mud), strerror(errno),
		       errno == E2BIG ? " (too many MUDs buffering at once)" : "");
	}
	close(fd);	/* the outer map holds it */
	return err;
}

static void ring_release(struct eh_dp *dp, struct in_addr mud)
{
	/* A reader still holding it (a replay's last drain) keeps it alive. */
	bpf_map_delete_elem(dp->rings_fd, &mud.s_addr);
}

int eh_dp_ring_reset_size(struct eh_dp *dp, struct in_addr mud, uint32_t bytes)
{
	struct eh_steer_ctl c = {};
	__u32 id;

	if (bytes && eh_ring_bytes_check(bytes))
		return -EINVAL;
	if (bpf_map_lookup_elem(dp->rings_fd, &mud.s_addr, &id))
		return errno == ENOENT ? 0 : -errno;
	if (!bpf_map_lookup_elem(dp->steer_fd, &mud.s_addr, &c) && bytes && c.ring_bytes != bytes) {
		/* Its rings from now on are of this size (not read by the programs). */
		c.ring_bytes = bytes;
		if (bpf_map_update_elem(dp->steer_fd, &mud.s_addr, &c, BPF_EXIST)) {
			int err = -errno;

			pr_err("Couldn't set the replay buffer size of %s: %s\n", inet_ntoa(mud),
			       strerror(errno));
			return err;
		}
	}
	return ring_create(dp, mud, true, bytes ? bytes : ring_size(dp, &c));
}

int eh_dp_ring_reset(struct eh_dp *dp, struct in_addr mud)
{
	return eh_dp_ring_reset_size(dp, mud, 0);
}

int eh_dp_ring_open(struct eh_dp *dp, struct in_addr mud, struct eh_ring *r)
{
	__u32 id;
	int fd, err;

	memset(r, 0, sizeof(*r));
	r->epfd = -1;
	if (bpf_map_lookup_elem(dp->rings_fd, &mud.s_addr, &id))
		return -errno;
	fd = bpf_map_get_fd_by_id(id);
	if (fd < 0)
		return -errno;	/* removed meanwhile */
	err = eh_ring_open(r, fd);
	if (err) {
		close(fd);
		return err;
	}
	r->own_fd = true;
	return 0;
}

int eh_dp_ring_foreach(struct eh_dp *dp, int (*fn)(void *ctx, struct in_addr mud), void *ctx)
{
	__be32 key, next, *prev = NULL;
	int err;

	while (!bpf_map_get_next_key(dp->rings_fd, prev, &next)) {
		key = next;
		prev = &key;
		err = fn(ctx, (struct in_addr){ .s_addr = key });
		if (err)
			return err;
	}
	return errno == ENOENT ? 0 : -errno;
}

int eh_dp_steer_set(struct eh_dp *dp, struct in_addr mud, enum eh_mode mode,
		    struct in_addr backend, uint16_t backend_port, uint32_t mud_id)
{
	return eh_dp_steer_set_ring(dp, mud, mode, backend, backend_port, mud_id, 0);
}

int eh_dp_steer_set_ring(struct eh_dp *dp, struct in_addr mud, enum eh_mode mode,
			 struct in_addr backend, uint16_t backend_port, uint32_t mud_id,
			 uint32_t ring_bytes)
{
	int err;
	uint32_t has;

	struct eh_steer_ctl st = {};
	struct eh_mud_dp zero = {};

	if ((unsigned int)mode >= EH_MODE_MAX)
		return -EINVAL;
	if (ring_bytes && eh_ring_bytes_check(ring_bytes))
		return -EINVAL;
	if (mode != EH_MODE_NONE && mode != EH_MODE_BUF_ONLY &&
	    (!backend.s_addr || !backend_port)) {
		pr_err("mode %s needs a backend address and port\n", eh_mode_name(mode));
		return -EINVAL;
	}
	/*
	 * eh_steer holds only what the controller writes (the dataplane's
	 * counters and loss events live in eh_mud_dp), so this whole-value
	 * rewrite cannot erase anything the XDP program set.
	 */
	bpf_map_lookup_elem(dp->steer_fd, &mud.s_addr, &st);
	if (ring_bytes) {
		/* A ring holding records is never swapped for another size. */
		has = ring_now(dp, mud);
		if (has && has != ring_bytes && buffering(mode)) {
			pr_err("%s already has a replay buffer of %u bytes: its size changes when it next enters fwd-buf or buf-only\n",
			       inet_ntoa(mud), has);
			return -EBUSY;
		}
		st.ring_bytes = ring_bytes;
	}
	st.mode = mode;
	st.mud_id = mud_id;
	if (backend.s_addr && (backend.s_addr != st.backend_addr ||
			       htons(backend_port) != st.backend_port)) {
		/* Its answers still in flight keep being rewritten (answer_src). */
		st.prev_addr = st.backend_addr;
		st.prev_port = st.backend_port;
		st.backend_addr = backend.s_addr;
		st.backend_port = htons(backend_port);
	}
	/* Created before steering starts; an existing entry is left alone. */
	if (bpf_map_update_elem(dp->mud_dp_fd, &mud.s_addr, &zero, BPF_NOEXIST) &&
	    errno != EEXIST) {
		err = -errno;
		pr_err("Couldn't create the dataplane entry for %s: %s\n", inet_ntoa(mud),
		       strerror(errno));
		return err;
	}
	/* The ring exists before the program can see a buffering mode. */
	if (buffering(mode)) {
		err = ring_create(dp, mud, false, ring_size(dp, &st));
		if (err)
			return err;
	}
	if (bpf_map_update_elem(dp->steer_fd, &mud.s_addr, &st, BPF_ANY)) {
		err = -errno;
		pr_err("Couldn't set steering entry for %s: %s\n", inet_ntoa(mud), strerror(errno));
		return err;
	}
	if (!buffering(mode))
		ring_release(dp, mud);
	return 0;
}

static void steer_view(const struct eh_steer_ctl *c, const struct eh_mud_dp *md,
		       struct eh_steer *st)
{
	memset(st, 0, sizeof(*st));
	st->mode = c->mode;
	st->mud_id = c->mud_id;
	st->backend_addr = c->backend_addr;
	st->backend_port = c->backend_port;
	st->prev_addr = c->prev_addr;
	st->prev_port = c->prev_port;
	st->rx = md->rx;
	st->delivered = md->delivered;
	st->buffered = md->buffered;
	st->lost_buf = md->lost_buf;
	st->last_seq = md->last_seq;
	if (md->overflow > c->ack_overflow)
		st->flags |= EH_SF_OVERFLOW;
	if (md->too_big > c->ack_too_big)
		st->flags |= EH_SF_TOO_BIG;
}

int eh_dp_steer_get(struct eh_dp *dp, struct in_addr mud, struct eh_steer *st)
{
	struct eh_steer_ctl c;
	struct eh_mud_dp md = {};
	struct eh_ring r;

	if (bpf_map_lookup_elem(dp->steer_fd, &mud.s_addr, &c))
		return -errno;
	bpf_map_lookup_elem(dp->mud_dp_fd, &mud.s_addr, &md);	/* none: no packet yet */
	steer_view(&c, &md, st);
	st->ring_bytes = ring_size(dp, &c);
	if (!eh_dp_ring_open(dp, mud, &r)) {
		st->has_ring = 1;
		st->ring_bytes = r.size;
		st->ring_used = eh_ring_backlog(&r);
		eh_ring_close(&r);
	}
	return 0;
}

int eh_dp_steer_save(struct eh_dp *dp, struct in_addr mud, struct eh_steer_ctl *ctl)
{
	return bpf_map_lookup_elem(dp->steer_fd, &mud.s_addr, ctl) ? -errno : 0;
}

int eh_dp_steer_restore(struct eh_dp *dp, struct in_addr mud, const struct eh_steer_ctl *ctl)
{
	struct eh_steer_ctl c = *ctl, now;
	int err;

	/* What was acknowledged meanwhile stays acknowledged. */
	if (!bpf_map_lookup_elem(dp->steer_fd, &mud.s_addr, &now)) {
		if (now.ack_overflow > c.ack_overflow)
			c.ack_overflow = now.ack_overflow;
		if (now.ack_too_big > c.ack_too_big)
			c.ack_too_big = now.ack_too_big;
	}
	if (buffering(c.mode)) {
		err = ring_create(dp, mud, false, ring_size(dp, &c));
		if (err)
			return err;
	}
	if (bpf_map_update_elem(dp->steer_fd, &mud.s_addr, &c, BPF_ANY)) {
		err = -errno;
		pr_err("Couldn't restore steering entry for %s: %s\n", inet_ntoa(mud), strerror(errno));
		return err;
	}
	if (!buffering(c.mode))
		ring_release(dp, mud);
	return 0;
}

int eh_dp_steer_del(struct eh_dp *dp, struct in_addr mud)
{
	int err = bpf_map_delete_elem(dp->steer_fd, &mud.s_addr) ? -errno : 0;

	bpf_map_delete_elem(dp->mud_dp_fd, &mud.s_addr);
	ring_release(dp, mud);
	return err;
}

int eh_dp_steer_clear_flags(struct eh_dp *dp, struct in_addr mud)
{
	struct eh_steer_ctl c;
	struct eh_mud_dp md = {};

	if (bpf_map_lookup_elem(dp->steer_fd, &mud.s_addr, &c))
		return -errno;
	/* Acknowledge what was counted so far; a later event sets it again. */
	bpf_map_lookup_elem(dp->mud_dp_fd, &mud.s_addr, &md);
	c.ack_overflow = md.overflow;
	c.ack_too_big = md.too_big;
	return bpf_map_update_elem(dp->steer_fd, &mud.s_addr, &c, BPF_EXIST) ? -errno : 0;
}

int eh_dp_steer_foreach(struct eh_dp *dp,
			int (*fn)(void *ctx, struct in_addr mud, const struct eh_steer *st),
			void *ctx)
{
	__be32 key, next;
	__be32 *prev = NULL;
	struct eh_steer st;
	int err;

	while (!bpf_map_get_next_key(dp->steer_fd, prev, &next)) {
		key = next;
		prev = &key;
		if (eh_dp_steer_get(dp, (struct in_addr){ .s_addr = key }, &st))
			continue;	/* deleted meanwhile */
		err = fn(ctx, (struct in_addr){ .s_addr = key }, &st);
		if (err)
			return err;
	}
	return errno == ENOENT ? 0 : -errno;
}

int eh_dp_counters(struct eh_dp *dp, struct eh_datarec out[EH_C_MAX])
{
	struct eh_datarec *percpu;

	percpu = calloc(dp->ncpus, sizeof(*percpu));
	if (!percpu)
		return -ENOMEM;
	for (__u32 i = 0; i < EH_C_MAX; i++) {
		out[i].packets = out[i].bytes = 0;
		if (bpf_map_lookup_elem(dp->counters_fd, &i, percpu)) {
			int err = -errno;

			free(percpu);
			return err;
		}
		for (int c = 0; c < dp->ncpus; c++) {
			out[i].packets += percpu[c].packets;
			out[i].bytes += percpu[c].bytes;
		}
	}
	free(percpu);
	return 0;
}

int eh_dp_counter_add(struct eh_dp *dp, enum eh_counter idx, uint64_t packets,
		      uint64_t bytes)
{
	struct eh_datarec *percpu;
	__u32 key = idx;
	int err = 0;

	if ((unsigned int)idx >= EH_C_MAX)
		return -EINVAL;
	percpu = calloc(dp->ncpus, sizeof(*percpu));
	if (!percpu)
		return -ENOMEM;
	/*
	 * Only userspace writes this index; replayers of MUDs migrating at
	 * once (other processes) take turns on the pin directory's lock so
	 * that no read-modify-write undoes another.
	 */
	if (dp->pin_fd >= 0)
		flock(dp->pin_fd, LOCK_EX);
	if (bpf_map_lookup_elem(dp->counters_fd, &key, percpu)) {
		err = -errno;
		goto out;
	}
	percpu[0].packets += packets;
	percpu[0].bytes += bytes;
	if (bpf_map_update_elem(dp->counters_fd, &key, percpu, BPF_ANY))
		err = -errno;
out:
	if (dp->pin_fd >= 0)
		flock(dp->pin_fd, LOCK_UN);
	free(percpu);
	return err;
}

int eh_dp_config(struct eh_dp *dp, struct eh_cfg *cfg)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(dp->config_fd, &zero, cfg) ? -errno : 0;
}

/* --- replay buffer consumer --------------------------------------------- */

/* Kernel ring buffer record header bits (kernel/bpf/ringbuf.c). */
#define RB_BUSY_BIT	(1U << 31)
#define RB_DISCARD_BIT	(1U << 30)
#define RB_HDR_SZ	8

static inline unsigned long rb_len_round(__u32 len)
{
	len = (len & ~(RB_BUSY_BIT | RB_DISCARD_BIT)) + RB_HDR_SZ;
	return (len + 7) / 8 * 8;
}

int eh_ring_open(struct eh_ring *r, int map_fd)
{
	struct bpf_map_info info = {};
	__u32 len = sizeof(info);
	struct epoll_event ev = { .events = EPOLLIN };
	void *p;
	int err;

	memset(r, 0, sizeof(*r));
	r->map_fd = map_fd;
	r->epfd = -1;
	if (map_fd < 0)
		return -EBADF;	/* eh_dp.replay_fd: no AP-wide ring any more */
	if (bpf_obj_get_info_by_fd(map_fd, &info, &len)) {
		err = -errno;
		pr_err("Couldn't get replay buffer info: %s\n", strerror(errno));
		return err;
	}
	if (info.type != BPF_MAP_TYPE_RINGBUF) {
		pr_err("map %u is not a ring buffer\n", info.id);
		return -EINVAL;
	}
	r->size = info.max_entries;
	r->page = sysconf(_SC_PAGESIZE);

	p = mmap(NULL, r->page, PROT_READ | PROT_WRITE, MAP_SHARED, map_fd, 0);
	if (p == MAP_FAILED)
		goto err_mmap;
	r->consumer_pos = p;
	/* Producer page, then the data area mapped twice (records may wrap). */
	p = mmap(NULL, r->page + 2 * r->size, PROT_READ, MAP_SHARED, map_fd, r->page);
	if (p == MAP_FAILED)
		goto err_mmap;
	r->producer_pos = p;
	r->data = (const uint8_t *)p + r->page;

	r->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (r->epfd < 0 || epoll_ctl(r->epfd, EPOLL_CTL_ADD, map_fd, &ev)) {
		err = -errno;
		pr_err("Couldn't set up epoll on the replay buffer: %s\n", strerror(errno));
		eh_ring_close(r);
		return err;
	}
	return 0;
err_mmap:
	err = -errno;
	pr_err("Couldn't mmap the replay buffer: %s\n", strerror(errno));
	eh_ring_close(r);
	return err;
}

void eh_ring_close(struct eh_ring *r)
{
	if (r->consumer_pos)
		munmap(r->consumer_pos, r->page);
	if (r->producer_pos)
		munmap((void *)r->producer_pos, r->page + 2 * r->size);
	if (r->epfd >= 0)
		close(r->epfd);
	if (r->own_fd && r->map_fd >= 0)
		close(r->map_fd);
	r->own_fd = false;
	r->map_fd = -1;
	r->consumer_pos = NULL;
	r->producer_pos = NULL;
	r->epfd = -1;
}

const struct eh_replay_rec *eh_ring_peek(struct eh_ring *r)
{
	unsigned long cons, prod;
	const __u32 *hdr;
	__u32 len;

	cons = __atomic_load_n(r->consumer_pos, __ATOMIC_ACQUIRE);
	for (;;) {
		prod = __atomic_load_n(r->producer_pos, __ATOMIC_ACQUIRE);
		if (cons >= prod)
			return NULL;
		hdr = (const __u32 *)(r->data + (cons & (r->size - 1)));
		len = __atomic_load_n(hdr, __ATOMIC_ACQUIRE);
		if (len & RB_BUSY_BIT)
			return NULL;	/* being written: records are consumed in order */
		if (len & RB_DISCARD_BIT) {
			cons += rb_len_round(len);
			__atomic_store_n(r->consumer_pos, cons, __ATOMIC_RELEASE);
			continue;
		}
		if (len < sizeof(struct eh_replay_rec) - EH_REPLAY_MAX) {
			/* Not one of ours: skip it rather than misread it. */
			cons += rb_len_round(len);
			__atomic_store_n(r->consumer_pos, cons, __ATOMIC_RELEASE);
			continue;
		}
		r->pending = rb_len_round(len);
		return (const struct eh_replay_rec *)((const uint8_t *)hdr + RB_HDR_SZ);
	}
}

void eh_ring_commit(struct eh_ring *r)
{
	unsigned long cons;

	if (!r->pending)
		return;
	cons = __atomic_load_n(r->consumer_pos, __ATOMIC_ACQUIRE);
	__atomic_store_n(r->consumer_pos, cons + r->pending, __ATOMIC_RELEASE);
	r->pending = 0;
}

const struct eh_replay_rec *eh_ring_read_at(const struct eh_ring *r, unsigned long *pos)
{
	unsigned long prod = __atomic_load_n(r->producer_pos, __ATOMIC_ACQUIRE);
	const __u32 *hdr;
	__u32 len;

	while (*pos < prod) {
		hdr = (const __u32 *)(r->data + (*pos & (r->size - 1)));
		len = __atomic_load_n(hdr, __ATOMIC_ACQUIRE);
		if (len & RB_BUSY_BIT)
			return NULL;
		*pos += rb_len_round(len);
		if (len & RB_DISCARD_BIT || len < sizeof(struct eh_replay_rec) - EH_REPLAY_MAX)
			continue;
		return (const struct eh_replay_rec *)((const uint8_t *)hdr + RB_HDR_SZ);
	}
	return NULL;
}

void eh_ring_commit_to(struct eh_ring *r, unsigned long pos)
{
	if (pos > eh_ring_consumed(r))
		__atomic_store_n(r->consumer_pos, pos, __ATOMIC_RELEASE);
	r->pending = 0;
}

int eh_ring_wait(struct eh_ring *r, int timeout_ms)
{
	struct epoll_event ev;
	int n;

	if (eh_ring_backlog(r))
		return 1;
	n = epoll_wait(r->epfd, &ev, 1, timeout_ms);
	if (n < 0)
		return errno == EINTR ? 0 : -errno;
	return n > 0;
}

unsigned long eh_ring_produced(const struct eh_ring *r)
{
	return __atomic_load_n(r->producer_pos, __ATOMIC_ACQUIRE);
}

unsigned long eh_ring_consumed(const struct eh_ring *r)
{
	return __atomic_load_n(r->consumer_pos, __ATOMIC_ACQUIRE);
}

size_t eh_ring_backlog(const struct eh_ring *r)
{
	return eh_ring_produced(r) - eh_ring_consumed(r);
}
