#!/usr/bin/env bash
# On the host: makes the testbed's pre-shared key of the agents' peer channel,
# vm/run/peer.key (32 random bytes, hex), once. The nodes read it through the
# read-only share. Prints its path.
set -euo pipefail
dir=$(cd "$(dirname "$0")/.." && pwd)/run
key=$dir/peer.key
mkdir -p "$dir"
if [ ! -s "$key" ]; then
	umask 077
	head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$key.tmp"
	echo >>"$key.tmp"
	mv "$key.tmp" "$key"
fi
echo "$key"
