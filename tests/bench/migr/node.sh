#!/usr/bin/env bash
# The node side of the migration benchmark (tests/bench/migr/run drives it over
# ssh; it runs in a testbed node, as root, from the 9p share). Each verb does
# one step of one path and prints what it measured as key=value lines, times
# in seconds from this node's clock (date +%s.%N around the commands).
#
#   node.sh prep                                  podman image, runc bundle base, no leftovers
#   node.sh start  docker|podman|runc NAME ARGS.. start the service, wait until it answers
#   node.sh capture docker|podman|runc NAME PORT  checkpoint (the service stops), then serve
#                                                 what node-y needs on TCP PORT, once
#   node.sh pull   XIP PORT DIR                   fetch it from node-x into DIR (timed here)
#   node.sh restore docker|podman|runc NAME DIR ARGS..  restore from DIR, wait until it answers
#   node.sh clean                                 remove every container and file of the bench
#
# The transfer is pulled by node-y (busybox nc to node-x's busybox nc -l -e), so
# that one clock times it from the connection to the last byte extracted.
# ARGS are the service's own (--mem-mb, --mem-kind, --fs-mb); the verbs add
# --port, --name and --state-dir.
set -euo pipefail
share=$(cd "$(dirname "$0")/../../.." && pwd)
IMG=edgehop-svc:small
PIMG=localhost/edgehop-bench:small	# the same image, in Podman's storage
SVC_PORT=7777				# docker and runc: the container's own netns
PODMAN_PORT=17777			# podman: the node's netns (--network host)
W=/var/lib/edgehop-bench		# everything of the bench on the node
RUNC_ROOT=$W/runc-root			# runc's state for the floor's containers
SVCCTL=$share/build/bin/edgehop-svcctl
STATE=/var/lib/edgehop-svc

now() { date +%s.%N; }
dt()  { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }
die() { echo "node.sh: $*" >&2; exit 1; }

svc_args() { # svc_args NAME PORT ARGS...: the service's command line in SVC
	local name=$1 port=$2; shift 2
	SVC=(--port "$port" --name "$name" --state-dir "$STATE" "$@")
}

runc_pid() { runc --root "$RUNC_ROOT" state "$1" | sed -n 's/.*"pid": *\([0-9]*\).*/\1/p'; }

# answers KIND NAME: the service in NAME answers a STATUS request
answers() {
	case $1 in
	docker) "$SVCCTL" status "$(docker inspect -f '{{.NetworkSettings.IPAddress}}' "$2"):$SVC_PORT" ;;
	podman) "$SVCCTL" status "127.0.0.1:$PODMAN_PORT" ;;
	runc)   nsenter -t "$(runc_pid "$2")" -n "$SVCCTL" status "127.0.0.1:$SVC_PORT" ;;
	esac >/dev/null 2>&1
}

wait_answers() { # wait_answers KIND NAME SECS
	local t0=$SECONDS
	until answers "$1" "$2"; do
		[ $((SECONDS - t0)) -lt "$3" ] || die "$1 $2: the service does not answer after $3 s"
		sleep 0.05
	done
}

# The runc floor's bundle: the service image's root file system, exported once
# from Docker (the image is on the node as it is for Docker and Podman), and a
# config.json from "runc spec": the service as PID 1 through sh, whose
# redirections give it the container's own /dev/null (CRIU cannot dump fds
# on the host's), in a network namespace of its own (lo only).
bundle() { # bundle NAME ARGS...: $W/runc/NAME ready to run the service with ARGS
	local name=$1 b=$W/runc/$1 a list; shift
	list='"/bin/sh", "-c", "exec /usr/local/bin/edgehop-svc \\\"$@\\\" </dev/null >/dev/null 2>\&1", "sh"'
	svc_args "$name" $SVC_PORT "$@"
	for a in "${SVC[@]}"; do list+=", \"$a\""; done
	rm -rf "$b"
	mkdir -p "$b"
	cp -a "$W/rootfs.base" "$b/rootfs"
	(cd "$b" && runc spec)
	sed -i -e 's/"terminal": true/"terminal": false/' -e 's/"readonly": true/"readonly": false/' \
		-e "s|^\([[:space:]]*\)\"sh\"\$|\1$list|" "$b/config.json"
	grep -q edgehop-svc "$b/config.json" || die "runc spec: the args were not replaced"
}

cmd_prep() {
	mkdir -p "$W" "$RUNC_ROOT"
	docker image inspect "$IMG" >/dev/null || die "$IMG missing (control/image/svc-image.sh small)"
	local id
	id=$(docker image inspect -f '{{.Id}}' "$IMG")
	if [ "$(cat "$W/image.id" 2>/dev/null)" != "$id" ]; then
		podman rmi -f "$PIMG" >/dev/null 2>&1 || true
		docker save "$IMG" | podman load -q >/dev/null
		podman tag "$IMG" "$PIMG" 2>/dev/null || podman tag "localhost/$IMG" "$PIMG"
		rm -rf "$W/rootfs.base"
		mkdir -p "$W/rootfs.base"
		docker rm -f edgehop-bench-export >/dev/null 2>&1 || true
		docker create --name edgehop-bench-export "$IMG" >/dev/null
		docker export edgehop-bench-export | tar -C "$W/rootfs.base" -xf -
		docker rm -f edgehop-bench-export >/dev/null
		echo "$id" >"$W/image.id"
	fi
	cmd_clean
}

cmd_clean() {
	docker ps -aq --filter label=edgehop.bench | xargs -r docker rm -f >/dev/null
	podman ps -aq --filter label=edgehop.bench | xargs -r podman rm -f >/dev/null
	local c
	for c in $(runc --root "$RUNC_ROOT" list -q 2>/dev/null); do
		runc --root "$RUNC_ROOT" delete -f "$c" >/dev/null 2>&1 || true
	done
	# A listener whose pull never came (a failed run).
	[ ! -s "$W/serve.pid" ] || kill "$(cat "$W/serve.pid")" 2>/dev/null || true
	rm -rf "$W/runc" "$W/out" "$W/in" "$W/serve.pid"
}

cmd_start() {
	local kind=$1 name=$2 t0 SVC; shift 2
	t0=$(now)
	case $kind in
	docker)
		svc_args "$name" $SVC_PORT "$@"
		docker run -d --security-opt seccomp=unconfined --label edgehop.bench=1 --name "$name" \
			"$IMG" "${SVC[@]}" >/dev/null ;;
	podman)
		svc_args "$name" $PODMAN_PORT "$@"
		podman run -d --network host --security-opt seccomp=unconfined --label edgehop.bench=1 \
			--name "$name" "$PIMG" "${SVC[@]}" >/dev/null ;;
	runc)
		bundle "$name" "$@"
		runc --root "$RUNC_ROOT" run -d --bundle "$W/runc/$name" "$name" </dev/null >/dev/null 2>&1
		nsenter -t "$(runc_pid "$name")" -n ip link set lo up ;;
	*) die "start: unknown kind $kind" ;;
	esac
	wait_answers "$kind" "$name" 300
	echo "start_s=$(dt "$t0" "$(now)")"
}

# serve PORT DIR: node-y's pull gets a tar of DIR's entries, once
serve() {
	local port=$1 dir=$2 s=$W/out/send.sh
	printf '#!/bin/sh\nexec tar -C %s --xattrs --xattrs-include=trusted.* -cf - .\n' "$dir" >"$s"
	chmod +x "$s"
	setsid busybox nc -l -p "$port" -e "$s" </dev/null >/dev/null 2>&1 &
	echo $! >"$W/serve.pid"
}

cmd_capture() {
	local kind=$1 name=$2 port=$3 t0 t1 id upper
	rm -rf "$W/out"
	mkdir -p "$W/out/x"
	t0=$(now)
	case $kind in
	docker)
		# Docker's own path: the checkpoint goes through containerd's content
		# store into containers/<id>/checkpoints/ck; the service stops.
		docker checkpoint create "$name" ck >/dev/null
		t1=$(now)
		id=$(docker inspect -f '{{.Id}}' "$name")
		upper=$(docker inspect -f '{{.GraphDriver.Data.UpperDir}}' "$name")
		# What node-y needs: the checkpoint and the container's layer (its UpperDir).
		mv "/var/lib/docker/containers/$id/checkpoints/ck" "$W/out/x/ck"
		mkdir "$W/out/x/upper"
		tar -C "$upper" --xattrs --xattrs-include='trusted.*' -cf - . | tar -C "$W/out/x/upper" --xattrs --xattrs-include='trusted.*' -xpf -
		;;
	podman)
		# Podman's own path: one archive (CRIU images + the layer's changes), zstd.
		podman container checkpoint --export "$W/out/x/ckpt.tar.zst" "$name" >/dev/null
		t1=$(now) ;;
	runc)
		# The floor: runc checkpoint (CRIU dump) of the container itself.
		runc --root "$RUNC_ROOT" checkpoint --image-path "$W/out/x/img" --work-path "$W/out/work" "$name"
		t1=$(now)
		mkdir -p "$W/out/x/state"
		mv "$W/runc/$name/rootfs$STATE"/* "$W/out/x/state/" ;;
	*) die "capture: unknown kind $kind" ;;
	esac
	echo "capture_s=$(dt "$t0" "$t1")"
	echo "prepare_s=$(dt "$t1" "$(now)")"
	echo "image_bytes=$(du -sb "$W/out/x" | cut -f1)"
	serve "$port" "$W/out/x"
}

cmd_pull() {
	local xip=$1 port=$2 dir=$3 t0 t1
	rm -rf "$dir" "$dir.bytes"
	mkdir -p "$dir"
	t0=$(now)
	for _ in $(seq 50); do	# node-x's listener may not be up yet
		if busybox nc "$xip" "$port" </dev/null 2>/dev/null | tee >(wc -c >"$dir.bytes") |
			tar -C "$dir" --xattrs --xattrs-include='trusted.*' -xpf - 2>/dev/null; then
			break
		fi
		sleep 0.1
		t0=$(now)
	done
	t1=$(now)
	until [ -s "$dir.bytes" ]; do sleep 0.02; done
	[ "$(cat "$dir.bytes")" -gt 0 ] || die "pull: nothing came from $xip:$port"
	echo "transfer_s=$(dt "$t0" "$t1")"
	echo "wire_bytes=$(cat "$dir.bytes")"
}

cmd_restore() {
	local kind=$1 name=$2 dir=$3 t0 t1 idy upper e; shift 3
	local SVC
	t0=$(now)
	case $kind in
	docker)
		svc_args "$name" $SVC_PORT "$@"
		docker create --security-opt seccomp=unconfined --label edgehop.bench=1 --name "$name" \
			"$IMG" "${SVC[@]}" >/dev/null
		idy=$(docker inspect -f '{{.Id}}' "$name")
		upper=$(docker inspect -f '{{.GraphDriver.Data.UpperDir}}' "$name")
		for e in "$dir"/upper/* "$dir"/upper/.[!.]*; do
			[ -e "$e" ] || [ -L "$e" ] || continue
			if [ -e "$upper/${e##*/}" ]; then
				tar -C "$dir/upper" --xattrs --xattrs-include='trusted.*' -cf - "${e##*/}" |
					tar -C "$upper" --xattrs --xattrs-include='trusted.*' -xpf -
			else
				mv "$e" "$upper/"
			fi
		done
		mkdir -p "/var/lib/docker/containers/$idy/checkpoints"
		mv "$dir/ck" "/var/lib/docker/containers/$idy/checkpoints/ck"
		docker start --checkpoint ck "$name" >/dev/null ;;
	podman)
		podman container restore --import "$dir/ckpt.tar.zst" >/dev/null ;;
	runc)
		mkdir -p "$W/runc/$name/rootfs$STATE"
		mv "$dir"/state/* "$W/runc/$name/rootfs$STATE/"
		runc --root "$RUNC_ROOT" restore -d --bundle "$W/runc/$name" --image-path "$dir/img" \
			--work-path "$W/in-work" "$name" </dev/null >/dev/null 2>&1
		# runc gives CRIU the network namespace as external: lo comes back down.
		nsenter -t "$(runc_pid "$name")" -n ip link set lo up ;;
	*) die "restore: unknown kind $kind" ;;
	esac
	t1=$(now)
	wait_answers "$kind" "$name" 300
	echo "restore_cmd_s=$(dt "$t0" "$t1")"
	echo "restore_s=$(dt "$t0" "$(now)")"
}

# bundle-for NAME ARGS...: node-y's runc bundle, made before the run (as the
# image is there before the run for Docker and Podman).
cmd_bundle() {
	bundle "$@"
}

[ $# -ge 1 ] || die "usage: node.sh prep|start|capture|pull|restore|bundle|clean ..."
verb=$1; shift
case $verb in
prep) cmd_prep ;;
clean) cmd_clean ;;
start) cmd_start "$@" ;;
capture) cmd_capture "$@" ;;
pull) cmd_pull "$@" ;;
restore) cmd_restore "$@" ;;
bundle) cmd_bundle "$@" ;;
*) die "unknown verb $verb" ;;
esac
