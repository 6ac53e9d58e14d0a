#!/usr/bin/env bash
# Builds, offline, the libvirt Vagrant box "edgehop-node" from the project's own node
# image (vm/cache/node.qcow2, made by "vm/testbed image") and adds it to Vagrant.
#
#   vm/vagrant/box.sh [--force]     build + "vagrant box add" when the image changed
#   vm/vagrant/box.sh --remove      "vagrant box remove" it and drop the cached files
#
# The qemu launcher's cache files are never changed: the box disk is a copy
# (qcow2 -> raw -> edited with debugfs, no mount, no loop device -> qcow2). What the
# copy gets on top of the node image:
#   - systemd-networkd enabled with one network file that matches only the first NIC
#     (eth0, Vagrant's management NIC): DHCP with ClientIdentifier=mac, so that every
#     clone gets the address libvirt's DHCP has for its MAC;
#   - root's authorized key: the box's own key pair (made once, kept in the cache;
#     the box Vagrantfile tells Vagrant to log in as root with it);
#   - an empty /etc/machine-id and no ssh host keys (the image already has both:
#     edgehop-boot makes the host key at first boot; checked here).
# The box boots the image's kernel and initrd directly (the image has no boot
# loader, like under vm/testbed): they are in the box, its Vagrantfile points
# libvirt at them.
#
# Cached: rebuilt when the node image (its recipe) or this script changes. The box
# is version 0 of "edgehop-node"; the libvirt volume Vagrant made from an older box
# is dropped by vm/vagrant/testbed (it records the box recipe next to the volume).
set -euo pipefail
LOG_TAG=vagrant-box
source "$(dirname "$0")/../lib.sh"

BOX_NAME=${EH_BOX_NAME:-edgehop-node}
VWORK=$CACHE/vagrant
KEY=$VWORK/box_key
export VAGRANT_HOME=${VAGRANT_HOME:-$HOME/.vagrant.d}
export VAGRANT_CHECKPOINT_DISABLE=1 VAGRANT_BOX_UPDATE_CHECK_DISABLE=1
box_dir() { echo "$VAGRANT_HOME/boxes/${BOX_NAME//\//-VAGRANTSLASH-}/0/libvirt"; }

CMDLINE="console=ttyS0 root=/dev/vda rw panic=10 net.ifnames=0 mitigations=off systemd.show_status=error"

remove() {
	if [ -d "$(box_dir)" ]; then
		vagrant box remove --force --provider libvirt "$BOX_NAME" >&2 || true
		log "box $BOX_NAME removed from $VAGRANT_HOME"
	fi
	rm -rf "$VWORK/box"
	return 0
}

force=0
case ${1:-} in
--force) force=1 ;;
--remove) remove; exit 0 ;;
"") ;;
*) die "usage: $0 [--force|--remove]" ;;
esac

for t in vagrant qemu-img debugfs tar ssh-keygen; do
	command -v "$t" >/dev/null || die "$t missing (run scripts/install-deps.sh)"
done
vagrant plugin list 2>/dev/null | grep -q vagrant-libvirt \
	|| die "the vagrant-libvirt plugin is missing (apt-get install vagrant-libvirt)"

# 1. the node image (cached by its recipe; builds only when the recipe changed)
"$VM_DIR/image/build.sh"
mkdir -p "$VWORK"
[ -f "$KEY" ] || ssh-keygen -q -t ed25519 -N '' -C edgehop-vagrant-box -f "$KEY"
recipe=$({ cat "$CACHE/node.recipe"; hash_files "$0" "$KEY.pub"; echo "$BOX_NAME $CMDLINE"; } | sha256sum | cut -c1-16)

if [ $force -eq 0 ] && [ "$(cat "$(box_dir)/edgehop-recipe" 2>/dev/null)" = "$recipe" ]; then
	log "box $BOX_NAME up to date (recipe $recipe, $(box_dir))"
	exit 0
fi

need_disk "$VWORK" 12000
T0=$SECONDS
b=$VWORK/box
rm -rf "$b"
mkdir -p "$b"
trap 'rm -rf "$b"' EXIT

# 2. a raw copy of the image to edit
step_begin "1/4 copy the node image"
qemu-img convert -O raw "$CACHE/node.qcow2" "$b/disk.raw"
step_end "1/4 copy"

# 3. the box's changes, written into the ext4 file system with debugfs
step_begin "2/4 edit the copy (networkd, DHCP client id, root key, machine-id, host keys)"
cat >"$b/10-vagrant-mgmt.network" <<'EOF'
# Vagrant's management NIC only (the first NIC; net.ifnames=0 on the kernel command
# line). The radio and WAN NICs are configured by node-setup.sh, not by networkd.
[Match]
Name=eth0

[Link]
RequiredForOnline=yes

[Network]
DHCP=ipv4
LinkLocalAddressing=no
IPv6AcceptRA=no

[DHCPv4]
# The MAC, not the machine-id/DUID: libvirt's DHCP hands out addresses by MAC.
ClientIdentifier=mac
UseDNS=no
UseNTP=no
UseHostname=no
UseDomains=no
EOF
: >"$b/empty"
chmod 0644 "$b/10-vagrant-mgmt.network" "$b/empty"
install -m 0600 "$KEY.pub" "$b/authorized_keys"
printf '%s\n' "$recipe" >"$b/box-recipe"
dbg() { debugfs -w -R "$1" "$b/disk.raw" 2>&1 | grep -v '^debugfs [0-9]' || true; }
{
	echo "rm /etc/machine-id"
	echo "write $b/empty /etc/machine-id"
	echo "mkdir /etc/systemd/system/sockets.target.wants"
	echo "rm /etc/systemd/system/multi-user.target.wants/systemd-networkd.service"
	echo "symlink /etc/systemd/system/multi-user.target.wants/systemd-networkd.service /usr/lib/systemd/system/systemd-networkd.service"
	echo "rm /etc/systemd/system/sockets.target.wants/systemd-networkd.socket"
	echo "symlink /etc/systemd/system/sockets.target.wants/systemd-networkd.socket /usr/lib/systemd/system/systemd-networkd.socket"
	echo "rm /etc/systemd/network/10-vagrant-mgmt.network"
	echo "write $b/10-vagrant-mgmt.network /etc/systemd/network/10-vagrant-mgmt.network"
	echo "rm /root/.ssh/authorized_keys"
	echo "write $b/authorized_keys /root/.ssh/authorized_keys"
	echo "sif /root/.ssh/authorized_keys mode 0100600"
	echo "rm /etc/edgehop-box"
	echo "write $b/box-recipe /etc/edgehop-box"
	for k in $(debugfs -R "ls /etc/ssh" "$b/disk.raw" 2>/dev/null | tr -s ' ' '\n' | grep '^ssh_host_' || true); do
		echo "rm /etc/ssh/$k"
	done
} >"$b/debugfs.cmds"
debugfs -w -f "$b/debugfs.cmds" "$b/disk.raw" >"$b/debugfs.log" 2>&1 || { cat "$b/debugfs.log" >&2; die "debugfs failed"; }
# debugfs exits 0 whatever happens: check every result.
check() { # check PATH EXPECTED-CONTENT-FILE
	cmp -s <(debugfs -R "cat $1" "$b/disk.raw" 2>/dev/null) "$2" \
		|| { cat "$b/debugfs.log" >&2; die "box edit failed: $1 has not the expected content"; }
}
check /etc/machine-id "$b/empty"
check /etc/systemd/network/10-vagrant-mgmt.network "$b/10-vagrant-mgmt.network"
check /root/.ssh/authorized_keys "$b/authorized_keys"
check /etc/edgehop-box "$b/box-recipe"
for l in multi-user.target.wants/systemd-networkd.service sockets.target.wants/systemd-networkd.socket; do
	debugfs -R "stat /etc/systemd/system/$l" "$b/disk.raw" 2>/dev/null | grep -q 'Fast link dest: "/usr/lib/systemd/system/' \
		|| die "box edit failed: symlink /etc/systemd/system/$l missing"
done
debugfs -R "stat /root/.ssh/authorized_keys" "$b/disk.raw" 2>/dev/null | grep -q 'Mode:  0600' \
	|| die "box edit failed: /root/.ssh/authorized_keys is not mode 0600"
! debugfs -R "ls /etc/ssh" "$b/disk.raw" 2>/dev/null | grep -q 'ssh_host_' \
	|| die "box edit failed: ssh host keys left in the box"
e2fsck -fn "$b/disk.raw" >"$b/fsck.log" 2>&1 || { cat "$b/fsck.log" >&2; die "file system check of the box disk failed"; }
step_end "2/4 edit"

step_begin "3/4 box files (qcow2, kernel, initrd, Vagrantfile, metadata.json)"
qemu-img convert -f raw -O qcow2 "$b/disk.raw" "$b/box.img"
rm -f "$b/disk.raw"
cp "$CACHE/vmlinuz" "$b/vmlinuz"
cp "$CACHE/initrd.img" "$b/initrd.img"
install -m 0600 "$KEY" "$b/edgehop_key"
printf '%s\n' "$recipe" >"$b/edgehop-recipe"
printf '{ "provider": "libvirt", "format": "qcow2", "virtual_size": %d }\n' "$DISK_GB" >"$b/metadata.json"
cat >"$b/Vagrantfile" <<EOF
# Box Vagrantfile of $BOX_NAME (made by vm/vagrant/box.sh from edgehop's node image).
# The image has no boot loader: libvirt boots the kernel and initrd of this box.
# Login: root with this box's own key (no vagrant user, no sudo in the image).
Vagrant.configure("2") do |config|
  config.ssh.username = "root"
  config.ssh.private_key_path = File.join(__dir__, "edgehop_key")
  config.ssh.insert_key = false
  config.ssh.sudo_command = "%c"
  config.vm.guest = :debian
  config.vm.synced_folder ".", "/vagrant", disabled: true
  config.vm.provider :libvirt do |lv|
    lv.kernel = File.join(__dir__, "vmlinuz")
    lv.initrd = File.join(__dir__, "initrd.img")
    lv.cmd_line = "$CMDLINE"
    lv.disk_bus = "virtio"
    lv.nic_model_type = "virtio"
  end
end
EOF
step_end "3/4 box files"

step_begin "4/4 vagrant box add $BOX_NAME"
tar -C "$b" -cf "$b/$BOX_NAME.box" metadata.json Vagrantfile box.img vmlinuz initrd.img edgehop_key edgehop-recipe
vagrant box add --force --name "$BOX_NAME" --provider libvirt "$b/$BOX_NAME.box" >"$b/add.log" 2>&1 \
	|| { cat "$b/add.log" >&2; die "vagrant box add failed"; }
step_end "4/4 vagrant box add"
log "box $BOX_NAME built and added in $((SECONDS - T0)) s (recipe $recipe, $(box_dir))"
