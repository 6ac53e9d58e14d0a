# Shared by vm/testbed, vm/image/build.sh and control/image/mkbase.sh (sourced, bash).
# Defines TOP, the cache/run folders, the config and small helpers.

TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VM_DIR=$TOP/vm
CACHE=${EH_VM_CACHE:-$TOP/vm/cache}     # image, kernel, debs (survives "make clean")
RUN=${EH_VM_RUN:-$TOP/vm/run}           # per-run state: pids, disks, consoles, ssh key
LOGKEEP=$TOP/build/vm-logs              # consoles of failed runs

# shellcheck source=vm/testbed.conf
source "${EH_TESTBED_CONF:-$VM_DIR/testbed.conf}"

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
