# Shared by vm/testbed, vm/image/build.sh and control/image/mkbase.sh (sourced, bash).
# Defines TOP, the cache/run folders, the config and small helpers.

TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VM_DIR=$TOP/vm
CACHE=${EH_VM_CACHE:-$TOP/vm/cache}     # image, kernel, debs (survives "make clean")
RUN=${EH_VM_RUN:-$TOP/vm/run}           # per-run state: pids, disks, consoles, ssh key
LOGKEEP=$TOP/build/vm-logs              # consoles of failed runs

# shellcheck source=vm/testbed.conf
source "${EH_TESTBED_CONF:-$VM_DIR/testbed.conf}"
# links_down, links_del, links_wait_gone, netns_kill, netns_del: teardown that
# does not depend on the kernel's timing (a namespace's devices go asynchronously).
# shellcheck source=scripts/netdev.sh
source "$TOP/scripts/netdev.sh"

log()  { printf '[%s] %s\n' "${LOG_TAG:-testbed}" "$*" >&2; }
die()  { printf '[%s] error: %s\n' "${LOG_TAG:-testbed}" "$*" >&2; exit 1; }
need_root() { [ "$(id -u)" -eq 0 ] || die "must run as root (bridges, taps, namespaces, debootstrap)"; }

# retry N CMD...: run CMD up to N times, 5 s apart (network fetches).
retry() {
	local n=$1 i; shift
	for ((i = 1; i <= n; i++)); do
		"$@" && return 0
		[ "$i" -lt "$n" ] && { log "attempt $i/$n failed: $*; retrying"; sleep 5; }
	done
	return 1
}

# The Debian mirror: MIRROR from the config, or the URI host apt uses for Debian.
debian_mirror() {
	if [ "${MIRROR:-auto}" != auto ]; then echo "$MIRROR"; return; fi
	local uri
	uri=$(grep -hsE '^(URIs:|deb )' /etc/apt/sources.list.d/*.sources /etc/apt/sources.list \
		/etc/apt/sources.list.d/*.list 2>/dev/null \
		| grep -oE 'https?://[^ ]*/debian/?' | grep -v security | head -1)
	echo "${uri:-http://deb.debian.org/debian}"
}

# Free space check: need_disk DIR MB
# debootstrap_minbase ROOT MIRROR LOG: a minbase root file system of $SUITE in
# ROOT, with the shared deb cache; retried as a whole (debootstrap has no retry
# of its own).
debootstrap_minbase() {
	local root=$1 mirror=$2 dlog=$3
	_debootstrap_once() {
		rm -rf "$root"
		debootstrap --variant=minbase --cache-dir="$CACHE/debs" \
			--keyring=/usr/share/keyrings/debian-archive-keyring.gpg \
			"$SUITE" "$root" "$mirror" >"$dlog" 2>&1 \
			|| { tail -5 "$dlog" >&2; return 1; }
	}
	retry 3 _debootstrap_once || die "debootstrap failed (log: $dlog)"
}

need_disk() {
	local avail
	mkdir -p "$1"
	avail=$(df -Pm "$1" | awk 'NR==2 {print $4}')
	[ "$avail" -ge "$2" ] || die "out of disk: $1 has ${avail} MB free, need ${2} MB"
}

# hash_files FILE...: one sha256 over the names and contents of the files.
hash_files() {
	local f
	for f in "$@"; do printf '%s\n' "${f#"$TOP"/}"; cat "$f"; done | sha256sum | cut -c1-16
}

# A spinner-free progress line for long steps: "step NAME" ... "done NAME (Ns)".
step_begin() { STEP_T0=$SECONDS; log "$*..."; }
step_end()   { log "$* done ($((SECONDS - STEP_T0)) s)"; }

# Helpers on the topology of testbed.conf (also for vm/Vagrantfile's tools).
node_short() { echo "${1#node-}"; }                            # node-x -> x
air_bridge() { echo "eh-air-$(node_short "$1")"; }             # the AP's radio cell
node_mac()   { printf '52:54:00:77:%02x:%02x' "${NODE_IDX[$1]}" "$2"; }  # 0 mgmt, 1 radio, 2 wan
subnet24()   { echo "${1%.*}.0/24"; }                          # 10.77.22.1[/24] -> 10.77.22.0/24
mud_ip()     { local r=${NODE_RADIO[$1]}; echo "${r%.*}.${2:-$MUD_HOST}"; }  # a MUD's address in NODE's cell

# mud_ns_radio NS NODE...: a MUD namespace's settings for its legs air-<x|y|z> in
# NODEs' cells. The MUD's requests must leave with complete checksums, as from a
# real radio (docs/dataplane.md); rp_filter off for the VIP route switching
# between cells.
mud_ns_radio() {
	local ns=$1 n; shift
	ip netns exec "$ns" sysctl -qw net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0
	for n in "$@"; do
		ip netns exec "$ns" sysctl -qw "net.ipv4.conf.air-$(node_short "$n").rp_filter=0"
		ip netns exec "$ns" ethtool -K "air-$(node_short "$n")" tx off >/dev/null 2>&1 || true
	done
}

# node_setup_args NODE: the arguments of vm/provision/node-setup.sh for NODE, one per
# line (NIC given by MAC). Routes: every other node's containers and radio cell via
# its WAN address (forwarded requests reach CT-x; CT-x's answers go back through
# the AP the MUD is associated with).
node_setup_args() {
	local n=$1 o d
	printf '%s\n' --name "$n" \
		--nic "mgmt=$(node_mac "$n" 0),${NODE_MGMT[$n]}/$MGMT_PREFIX" \
		--nic "radio=$(node_mac "$n" 1),${NODE_RADIO[$n]}/$AIR_PREFIX" \
		--nic "wan=$(node_mac "$n" 2),${NODE_WAN[$n]}/$WAN_PREFIX" \
		--docker-bip "${NODE_DOCKER[$n]}"
	for o in $NODES_ALL; do
		printf '%s\n' --host "$o=${NODE_MGMT[$o]}"
		[ "$o" = "$n" ] && continue
		d=${NODE_DOCKER[$o]%/*}
		printf '%s\n' --route "${d%.*}.0/${NODE_DOCKER[$o]#*/}=${NODE_WAN[$o]}" \
			--route "$(subnet24 "${NODE_RADIO[$o]}")=${NODE_WAN[$o]}"
	done
}
