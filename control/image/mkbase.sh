#!/usr/bin/env bash
# Makes the root file system of the service's base image, as a tar for
# "docker import" inside a node (no registry is reachable):
#
#   control/image/mkbase.sh small    Debian trixie minbase, stripped (~tens of MB)
#   control/image/mkbase.sh large    the same + incompressible filler up to
#                                    BASE_LARGE_MB (909 MB, the paper's base image)
#
# Output: vm/cache/base-SIZE.tar and base-SIZE.recipe (the hash that names the
# imported image's label). Cached: rebuilt only when this recipe changes.
# Runs on the host, as root (debootstrap); the deb cache is the node image's.
set -euo pipefail
LOG_TAG=base-image
source "$(dirname "$0")/../../vm/lib.sh"

BASE_LARGE_MB=${BASE_LARGE_MB:-909}
size=${1:-small}
case $size in small|large) ;; *) die "usage: $0 small|large" ;; esac

recipe=$({ cat "$0"; echo "$SUITE $size $BASE_LARGE_MB"; } | sha256sum | cut -c1-16)
out=$CACHE/base-$size.tar
if [ -f "$out" ] && [ "$(cat "$CACHE/base-$size.recipe" 2>/dev/null)" = "$recipe" ]; then
	log "base-$size up to date ($out, recipe $recipe)"
	exit 0
fi
need_root
command -v debootstrap >/dev/null || die "debootstrap missing (run scripts/install-deps.sh)"
need_disk "$CACHE" $((BASE_LARGE_MB * 3))
mkdir -p "$CACHE/debs"
root=$CACHE/work-base-$size
rm -rf "$root"
T0=$SECONDS
step_begin "debootstrap $SUITE minbase for base-$size"
debootstrap_minbase "$root" "$(debian_mirror)" "$CACHE/base-$size.log"
step_end "debootstrap"
# What a container never uses.
rm -rf "$root"/usr/share/{doc,man,info,locale}/* "$root"/var/cache/apt/* \
	"$root"/var/lib/apt/lists/* "$root"/var/log/* "$root"/dev/*
if [ "$size" = large ]; then
	cur=$(du -sm "$root" | cut -f1)
	fill=$((BASE_LARGE_MB - cur))
	if [ "$fill" -gt 0 ]; then
		step_begin "filler ${fill} MB (incompressible) to reach ${BASE_LARGE_MB} MB"
		mkdir -p "$root/opt/filler"
		head -c "${fill}M" /dev/urandom >"$root/opt/filler/base-filler.bin"
		step_end "filler"
	fi
fi
tar --numeric-owner -C "$root" -cf "$out.tmp" .
mv "$out.tmp" "$out"
echo "$recipe" >"$CACHE/base-$size.recipe"
rm -rf "$root"
log "base-$size: $(du -h "$out" | cut -f1) in $((SECONDS - T0)) s ($out)"
