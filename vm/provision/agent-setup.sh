#!/usr/bin/env bash
# Inside a node: writes /etc/edgehop/agent.conf for this node from the testbed's
# topology (vm/testbed.conf) and (re)starts the node agent (edgehop-agent.service).
#
#   agent-setup.sh [--migrate p|c|auto|none] [--svc-args "..."] [--image IMG]
#                  [--logrepo IP:PORT|""] [--fault STEP] [--attach auto|xdp|tc]
#                  [--restore auto|runc|docker] [--tcp-cc NAME|""] [--stop]
#
# --fault: test hook, migrations into this node fail on purpose at STEP
# (image, checkpoint, layer, restore, replay; done: commit, then drop "done";
# crash-uncommitted, crash-committed: the agent exits at the commit point, just
# before or after its commit record, and systemd starts it again). --tcp-cc: the peer channel's TCP
# congestion control (TCP_CONGESTION; "" the kernel's default).
#
# The peer key is the testbed's (vm/run/peer.key, made on the host by
# vm/provision/peer-key.sh); on other hosts provision a key file of your own.
set -euo pipefail
share=$(cd "$(dirname "$0")/../.." && pwd)
source "$share/vm/testbed.conf"
name=$(hostname)
migrate=p svc_args= image=edgehop-svc:small logrepo="$LOGREPO_IP:7779" stop=0 fault= attach=auto restore=auto tcp_cc=
while [ $# -gt 0 ]; do
	case $1 in
	--migrate)  migrate=$2; shift 2 ;;
	--svc-args) svc_args=$2; shift 2 ;;
	--image)    image=$2; shift 2 ;;
	--logrepo)  logrepo=$2; shift 2 ;;
	--fault)    fault=$2; shift 2 ;;
	--attach)   attach=$2; shift 2 ;;
	--restore)  restore=$2; shift 2 ;;
	--tcp-cc)   tcp_cc=$2; shift 2 ;;
	--stop)     stop=1; shift ;;
	*) echo "agent-setup: unknown option $1" >&2; exit 2 ;;
	esac
done
[ -n "${NODE_RADIO[$name]:-}" ] || { echo "agent-setup: $name is not in testbed.conf" >&2; exit 1; }
systemctl stop edgehop-agent.service 2>/dev/null || true
[ "$stop" = 1 ] && exit 0
# The restore runtime of this build (node-setup.sh installed the one of boot time).
[ -x "$share/build/bin/edgehop-runc" ] && install -m 0755 "$share/build/bin/edgehop-runc" /usr/local/sbin/edgehop-runc
mkdir -p /etc/edgehop
{
	echo "# written by vm/provision/agent-setup.sh"
	echo "NODE = $name"
	echo "RADIO = radio0"
	echo "WAN = wan0"
	echo "VIP = $VIP:$SVC_PORT"
	echo "KEY = $share/vm/run/peer.key"
	echo "IMAGE = $image"
	echo "SVC_ARGS = $svc_args"
	echo "MIGRATE = $migrate"
	echo "LOGREPO = $logrepo"
	[ -z "$fault" ] || echo "FAULT = $fault"
	echo "ATTACH = $attach"
	echo "RESTORE = $restore"
	[ -z "$tcp_cc" ] || echo "TCP_CONGESTION = $tcp_cc"
	for o in $NODES_ALL; do
		[ "$o" = "$name" ] && continue
		echo "PEER = $o ${NODE_WAN[$o]} ${NODE_RADIO[$o]}"
	done
} >/etc/edgehop/agent.conf
systemctl reset-failed edgehop-agent.service 2>/dev/null || true
systemctl start edgehop-agent.service
# Up when its control socket answers.
for _ in $(seq 100); do
	/usr/local/sbin/edgehop-agent status >/dev/null 2>&1 && exit 0
	sleep 0.2
done
echo "agent-setup: the agent on $name does not answer; journal:" >&2
journalctl -u edgehop-agent.service -n 30 --no-pager >&2 || true
exit 1
