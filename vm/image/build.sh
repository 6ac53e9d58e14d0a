#!/usr/bin/env bash
# Builds the edge-node VM image from Debian's archive only:
#   debootstrap (minbase) -> apt-get install the node's packages in a chroot ->
#   configure -> mke2fs -d (no loop device) -> qcow2; kernel and initrd copied out.
#
#   vm/image/build.sh [--force]
#
# Output in $CACHE (vm/cache/): node.qcow2, vmlinuz, initrd.img, node.recipe.
# Cached: rebuilt only when the recipe (this folder, SUITE, DISK_GB) changes.
# Downloaded packages are kept in $CACHE/debs so a rebuild fetches nothing again.
set -euo pipefail
LOG_TAG=image
source "$(dirname "$0")/../lib.sh"

# Everything the nodes need (docs/design.md §7): Docker + CRIU 4.1 + netem + the runtime
# libraries of the project's binaries (built on Debian 12, run in trixie).
# Podman (+ libcriu2, its checkpoint support) is there only for the migration
# benchmark's comparison (docs/bench.md, "Migration benchmark"); nothing of edgehop uses it.
PKGS=(
	linux-image-amd64 initramfs-tools systemd-sysv udev kmod dbus
	docker.io docker-cli containerd runc criu iptables
	podman netavark conmon libcriu2
	iproute2 bpftool libbpf1 libelf1t64 libmnl0 libcurl4t64 libjansson4 libssl3t64
	zlib1g libzstd1 zstd libarchive13t64
	openssh-server openssh-sftp-server busybox-static iputils-ping procps ca-certificates
)

force=0
[ "${1:-}" = --force ] && force=1

recipe=$({ hash_files "$VM_DIR/image/build.sh" "$VM_DIR"/image/files/*; echo "$SUITE $DISK_GB"; } | sha256sum | cut -c1-16)
out=$CACHE/node.qcow2
if [ $force -eq 0 ] && [ -f "$out" ] && [ "$(cat "$CACHE/node.recipe" 2>/dev/null)" = "$recipe" ]; then
	log "image up to date ($out, recipe $recipe)"
	exit 0
fi

need_root
for t in debootstrap mke2fs qemu-img chroot; do
	command -v "$t" >/dev/null || die "$t missing (run scripts/install-deps.sh)"
done
need_disk "$CACHE" 6000

T0=$SECONDS
work=$CACHE/work
root=$work/rootfs
mirror=$(debian_mirror)
mkdir -p "$CACHE/debs" "$work"

cleanup() {
	local m
	for m in var/cache/apt/archives dev/pts dev sys proc; do
		mountpoint -q "$root/$m" 2>/dev/null && umount -l "$root/$m"
	done
	return 0
}
trap cleanup EXIT
cleanup
rm -rf "$root"

# 1. minimal root file system (retried as a whole: debootstrap has no retry of its own)
step_begin "1/5 debootstrap $SUITE from $mirror"
debootstrap_minbase "$root" "$mirror" "$work/debootstrap.log"
step_end "1/5 debootstrap"

# 2. the node's packages, in a chroot
step_begin "2/5 apt-get install ${#PKGS[@]} packages (kernel, docker, criu...)"
mount -t proc proc "$root/proc"
mount -t sysfs sys "$root/sys"
mount --bind /dev "$root/dev"
mount --bind /dev/pts "$root/dev/pts"
mount --bind "$CACHE/debs" "$root/var/cache/apt/archives"
cat >"$root/etc/dpkg/dpkg.cfg.d/01-edgehop" <<'EOF'
force-unsafe-io
path-exclude=/usr/share/doc/*
path-include=/usr/share/doc/*/copyright
path-exclude=/usr/share/man/*
path-exclude=/usr/share/info/*
path-exclude=/usr/share/locale/*
path-include=/usr/share/locale/locale.alias
EOF
cat >"$root/etc/apt/apt.conf.d/01-edgehop" <<'EOF'
Acquire::Retries "5";
APT::Install-Recommends "false";
APT::Install-Suggests "false";
EOF
printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
chmod +x "$root/usr/sbin/policy-rc.d"
# Small initrd: only what finds the virtio root disk (faster to unpack under TCG).
mkdir -p "$root/etc/initramfs-tools/conf.d"
printf 'MODULES=list\nRESUME=none\nCOMPRESS=zstd\n' >"$root/etc/initramfs-tools/conf.d/edgehop"
printf '%s\n' virtio_pci virtio_blk virtio_net virtio_rng ext4 >>"$root/etc/initramfs-tools/modules"
in_root() { chroot "$root" env DEBIAN_FRONTEND=noninteractive LC_ALL=C "$@"; }
retry 3 in_root apt-get update -qq >"$work/apt.log" 2>&1 || die "apt-get update failed (log: $work/apt.log)"
retry 3 in_root apt-get install -y -q "${PKGS[@]}" >>"$work/apt.log" 2>&1 \
	|| { tail -20 "$work/apt.log" >&2; die "apt-get install failed (log: $work/apt.log)"; }
step_end "2/5 apt-get install"

# 3. configuration
step_begin "3/5 configure"
rm -f "$root/usr/sbin/policy-rc.d"
install -m 0644 "$VM_DIR/image/files/fstab" "$root/etc/fstab"
install -m 0755 "$VM_DIR/image/files/edgehop-boot" "$root/usr/local/sbin/edgehop-boot"
install -m 0644 "$VM_DIR/image/files/edgehop-node.service" "$VM_DIR/image/files/edgehop-agent.service" \
	"$root/etc/systemd/system/"
mkdir -p "$root/opt/edgehop" "$root/root/.ssh"
chmod 700 "$root/root/.ssh"
echo edgehop-node >"$root/etc/hostname"
# Each clone must get its own machine-id and ssh host key (first boot makes them).
: >"$root/etc/machine-id"
rm -f "$root"/etc/ssh/ssh_host_*
cat >"$root/etc/ssh/sshd_config.d/edgehop.conf" <<'EOF'
HostKey /etc/ssh/ssh_host_ed25519_key
PermitRootLogin prohibit-password
PasswordAuthentication no
UseDNS no
MaxSessions 64
MaxStartups 64:30:128
EOF
# Root on the serial console without password (debugging a node that has no network).
mkdir -p "$root/etc/systemd/system/serial-getty@ttyS0.service.d"
cat >"$root/etc/systemd/system/serial-getty@ttyS0.service.d/autologin.conf" <<'EOF'
[Service]
ExecStart=
ExecStart=-/sbin/agetty --autologin root --noclear --keep-baud 115200 %I $TERM
EOF
# Drivers for hardware a node has no use for: each costs seconds to probe under TCG.
printf 'blacklist %s\n' kvm kvm_amd kvm_intel iTCO_wdt iTCO_vendor_support powernow_k8 \
	pcspkr floppy parport_pc ata_piix pata_acpi ahci joydev psmouse serio_raw evdev \
	intel_rapl_msr intel_rapl_common ccp sp5100_tco i2c_piix4 bochs drm \
	>"$root/etc/modprobe.d/edgehop-blacklist.conf"
printf '%s\n' sch_netem 9p 9pnet_virtio >"$root/etc/modules-load.d/edgehop.conf"
# Docker: no iptables rules, so routed traffic reaches containers (the dataplane
# and the other node address them directly); the node's own bridge address is
# written by node-setup.sh.
mkdir -p "$root/etc/docker"
echo '{ "iptables": false, "ip-forward": true, "log-driver": "json-file" }' >"$root/etc/docker/daemon.json"
# Podman (benchmark only) on runc, the runtime Docker uses here: the comparison
# is then of the engines' paths around the same runc and CRIU.
mkdir -p "$root/etc/containers/containers.conf.d"
printf '[engine]\nruntime = "runc"\n' >"$root/etc/containers/containers.conf.d/edgehop.conf"
in_root systemctl enable edgehop-node.service edgehop-agent.service ssh.service docker.service >/dev/null 2>&1
# Nothing that costs boot time under TCG or reaches out to the network.
for u in apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer fstrim.timer \
	dpkg-db-backup.timer systemd-timesyncd.service getty@tty1.service \
	e2scrub_reap.service systemd-networkd-wait-online.service \
	modprobe@drm.service modprobe@fuse.service modprobe@efi_pstore.service \
	modprobe@configfs.service sys-kernel-config.mount ldconfig.service; do
	in_root systemctl disable "$u" >/dev/null 2>&1 || true
	in_root systemctl mask "$u" >/dev/null 2>&1 || true
done
in_root systemctl set-default multi-user.target >/dev/null 2>&1
passwd -R "$root" -d root >/dev/null
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/log/*.log "$root"/tmp/*
step_end "3/5 configure"

# 4. kernel and initrd for qemu -kernel/-initrd
step_begin "4/5 kernel + initrd"
kver=$(basename "$(ls -d "$root"/lib/modules/*)")
cleanup
cp "$root/boot/vmlinuz-$kver" "$work/vmlinuz"
cp "$root/boot/initrd.img-$kver" "$work/initrd.img"
echo "$kver" >"$work/kernel.version"
step_end "4/5 kernel $kver"

# 5. ext4 image populated from the directory (no mount), then qcow2
step_begin "5/5 disk image"
rm -f "$work/node.raw"
truncate -s "${DISK_GB}G" "$work/node.raw"
mke2fs -q -t ext4 -L edgehop-root -E root_owner=0:0 -d "$root" "$work/node.raw" \
	|| die "mke2fs -d failed"
qemu-img convert -f raw -O qcow2 "$work/node.raw" "$work/node.qcow2"
rm -f "$work/node.raw"
mv "$work/vmlinuz" "$work/initrd.img" "$work/kernel.version" "$CACHE/"
mv "$work/node.qcow2" "$out"
echo "$recipe" >"$CACHE/node.recipe"
rm -rf "$root"
step_end "5/5 disk image $(du -h "$out" | cut -f1)"
log "image built in $((SECONDS - T0)) s: $out (recipe $recipe)"
