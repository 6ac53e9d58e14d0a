#!/usr/bin/env bash
# Install, on Debian 12, every package edgehop's build and tests need.
# Idempotent: does nothing when everything is already there.
#
#   install-deps.sh               everything (make test: every tier)
#   install-deps.sh --no-vagrant  without Vagrant and libvirt (make run, make demo)
set -euo pipefail
vagrant=1
case ${1:-} in
--no-vagrant) vagrant=0 ;;
"") ;;
*) echo "usage: install-deps.sh [--no-vagrant]" >&2; exit 2 ;;
esac

PKGS=(
	# build
	make gcc clang llvm libbpf-dev libelf-dev zlib1g-dev libmnl-dev
	libcurl4-openssl-dev libjansson-dev libssl-dev libzstd-dev libarchive-dev pkg-config
	bpftool linux-libc-dev ethtool
	# fuzz tier: clang's libFuzzer and sanitizer runtimes (Debian 12: clang 14)
	libclang-rt-14-dev
	# namespace tests
	bats bats-support bats-assert iproute2 nftables iputils-ping jq
	procps psmisc util-linux python3 file
	# logrepo plots
	gnuplot-nox
	# VM testbed
	debootstrap qemu-system-x86 qemu-utils e2fsprogs zstd openssh-client
	busybox-static socat
	# Docker client live test: tests/30-docker.bats starts its own dockerd
	# (these machines' policy-rc.d keeps the package's daemon from starting)
	docker.io
)

# VM testbed through Vagrant (vm/vagrant/testbed, make test-vagrant)
[ "$vagrant" = 0 ] || PKGS+=(vagrant vagrant-libvirt libvirt-daemon-system libvirt-clients
	libvirt-daemon-driver-qemu dnsmasq-base iptables)

missing=()
for p in "${PKGS[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' \
		|| missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
	exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
	echo "install-deps: need root to install: ${missing[*]}" >&2
	exit 1
fi
echo "install-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
# No package may start its service on install: a system dockerd would add its
# bridge, iptables rules and FORWARD policy to the host the testbed's bridges
# run on (the tests start their own dockerd, without any of that).
policy=/usr/sbin/policy-rc.d made_policy=0
if [ ! -e "$policy" ]; then
	printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy" && made_policy=1
	trap '[ "$made_policy" = 1 ] && rm -f "$policy"' EXIT
fi
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
