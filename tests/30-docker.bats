#!/usr/bin/env bats
# The Docker client (control/docker) against a real dockerd (Debian 12's
# docker.io, API 1.41) that this suite starts with its own data root, exec root,
# pidfile, socket and containerd namespace: no bridge, no iptables, no IP
# forwarding, so the host's firewall and sysctls stay as other suites see them.
# The image is a static busybox imported from a tar: no registry.

bats_require_minimum_version 1.5.0

DOCKERD=/usr/sbin/dockerd
# the docker.io client: /usr/local/bin/docker may be another one
DOCKER=/usr/bin/docker
IMAGE=edgehop-test/busybox:1

# What a dockerd left to its defaults changes on the host: forwarding sysctls,
# a docker0 bridge, DOCKER chains in the firewall. Only these, so that other
# suites' namespaces and links coming and going never look like dockerd's.
host_state() {
	echo "ip_forward=$(sysctl -n net.ipv4.ip_forward)"
	echo "ipv6_forward=$(sysctl -n net.ipv6.conf.all.forwarding)"
	echo "links: $(ip -o link show | awk -F': ' '$2 ~ /^(docker|br-)/ {print $2}' | tr '\n' ' ')"
	echo "firewall: $(nft list ruleset | grep -ci docker)"
}

dk() {
	timeout 60 "$DOCKER" -H "unix://$DK_SOCK" "$@"
}

dockerd_up() {
	dk version --format '{{.Server.APIVersion}}'
}

stop_dockerd() {
	local pid mnt
	[ -s "$DK_DIR/dockerd.pid" ] || return 0
	pid=$(cat "$DK_DIR/dockerd.pid")
	if kill -0 "$pid" 2>/dev/null; then
		dk ps -aq 2>/dev/null | xargs -r timeout 60 "$DOCKER" -H "unix://$DK_SOCK" rm -f >/dev/null 2>&1
		kill -TERM "$pid"
		wait_for 30 bash -c "! kill -0 $pid" || kill -KILL "$pid"
	fi
	# overlay and netns mounts it may have left when killed
	awk -v d="$DK_DIR" 'index($2, d) == 1 {print $2}' /proc/mounts | sort -r |
		while read -r mnt; do umount -l "$mnt" 2>/dev/null; done
	find /sys/fs/cgroup -maxdepth 3 -depth -type d -name "$DK_CGROUP" \
		-exec rmdir {} + 2>/dev/null
	rm -f "$DK_DIR/dockerd.pid"
	return 0
}

setup_file() {
	bats_load_library bats-support
	bats_load_library bats-assert
	load helpers/ehs-common
	export DK_DIR=$(mktemp -d /tmp/ehd-30.XXXXXX)
	export DK_SOCK=$DK_DIR/docker.sock DK_CGROUP=edgehop-test-$$
	[ -x "$DOCKERD" ] && [ -x "$DOCKER" ] && [ -x "$EHS_BUILD/tests/dk_live" ]
	host_state >"$DK_DIR/host.before"
	echo '{}' >"$DK_DIR/daemon.json"
	"$DOCKERD" --config-file "$DK_DIR/daemon.json" \
		--data-root "$DK_DIR/data" --exec-root "$DK_DIR/exec" \
		--pidfile "$DK_DIR/dockerd.pid" -H "unix://$DK_SOCK" \
		--containerd-namespace "$DK_CGROUP" --containerd-plugins-namespace "$DK_CGROUP-plugins" \
		--cgroup-parent "/$DK_CGROUP" \
		--iptables=false --ip6tables=false --ip-forward=false --ip-masq=false --bridge=none \
		--experimental >"$DK_DIR/dockerd.log" 2>&1 &
	if ! wait_for 60 dockerd_up; then
		tail -30 "$DK_DIR/dockerd.log" >&3
		return 1
	fi
	# the image: a static busybox and nothing else
	mkdir -p "$DK_DIR/rootfs/bin"
	cp /bin/busybox "$DK_DIR/rootfs/bin/"
	for a in sh sleep cat true; do ln -s busybox "$DK_DIR/rootfs/bin/$a"; done
	tar -C "$DK_DIR/rootfs" -cf "$DK_DIR/rootfs.tar" .
	dk import -c 'CMD ["/bin/sleep", "3600"]' "$DK_DIR/rootfs.tar" "$IMAGE" >/dev/null
}

teardown_file() {
	load helpers/ehs-common
	stop_dockerd
	cp "$DK_DIR/dockerd.log" "$EHS_TOP/build/test-logs/30-dockerd.log" 2>/dev/null
	rm -rf "$DK_DIR"
}

setup() {
	bats_load_library bats-support
	bats_load_library bats-assert
	load helpers/ehs-common
}

@test "dockerd: this suite's own roots and socket, API 1.41, experimental" {
	run -0 dk info --format '{{.DockerRootDir}} {{.ExperimentalBuild}}'
	assert_output "$DK_DIR/data true"
	run -0 dockerd_up
	assert_output "1.41"
	run -0 dk image inspect --format '{{.Id}}' "$IMAGE"
}

@test "dk_live: lifecycle, errors, save -> load, against the suite's dockerd" {
	run timeout 300 "$EHS_BUILD/tests/dk_live" "$DK_SOCK" "$IMAGE"
	echo "$output"
	assert_success
	assert_line "1..23"
	refute_line --regexp '^not ok'
	assert_line --regexp '^ok [0-9]+ - open .*: Docker 20\.10\.[^,]*, API 1\.41'
	assert_line --regexp '^ok [0-9]+ - pause -> State.Paused'
	assert_line --regexp '^ok [0-9]+ - create from a missing image: -ENOENT, "No such image: edgehop-live/no-such-image:0" word for word'
	assert_line --regexp '^ok [0-9]+ - save -> pipe -> load: [1-9][0-9]* bytes streamed'
	# its containers and images are gone
	run -0 dk ps -aq
	assert_output ""
	run -0 dk images -q --filter 'reference=dk-live-*'
	assert_output ""
}

@test "dk_live: a missing socket fails with the path and the reason" {
	run -1 timeout 30 "$EHS_BUILD/tests/dk_live" "$DK_DIR/none.sock" "$IMAGE"
	assert_line --partial "Couldn't connect to $DK_DIR/none.sock: No such file or directory"
}

@test "stopping dockerd leaves no process, mount, firewall rule or sysctl changed" {
	local pid
	pid=$(cat "$DK_DIR/dockerd.pid")
	stop_dockerd
	run ! kill -0 "$pid"
	run -0 awk -v d="$DK_DIR" 'index($2, d) == 1' /proc/mounts
	assert_output ""
	host_state >"$DK_DIR/host.after"
	run diff "$DK_DIR/host.before" "$DK_DIR/host.after"
	echo "$output"
	assert_success
}
