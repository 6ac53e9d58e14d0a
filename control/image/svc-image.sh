#!/usr/bin/env bash
# Inside a node: makes the service image edgehop-svc:SIZE.
#   1. edgehop-base:SIZE by "docker import" of the base tar made on the host by
#      control/image/mkbase.sh (imported once per node disk; re-imported when the
#      tar's recipe changes: the image carries it as a label);
#   2. the service binary on top, with control/image/Dockerfile.
#
#   /opt/edgehop/control/image/svc-image.sh [small|large]
set -euo pipefail
size=${1:-small}
share=$(cd "$(dirname "$0")/../.." && pwd)
tar=$share/vm/cache/base-$size.tar
recipe=$(cat "$share/vm/cache/base-$size.recipe" 2>/dev/null) \
	|| { echo "svc-image: $tar missing: run control/image/mkbase.sh $size on the host" >&2; exit 1; }
bin=$share/build/bin/edgehop-svc
[ -x "$bin" ] || { echo "svc-image: $bin missing: run make on the host" >&2; exit 1; }

have=$(docker image inspect -f '{{index .Config.Labels "edgehop.recipe"}}' "edgehop-base:$size" 2>/dev/null || true)
if [ "$have" != "$recipe" ]; then
	t0=$(date +%s)
	docker import -c "LABEL edgehop.recipe=$recipe" -c 'CMD ["/bin/bash"]' \
		"$tar" "edgehop-base:$size" >/dev/null
	echo "svc-image: imported edgehop-base:$size ($(du -h "$tar" | cut -f1)) in $(($(date +%s) - t0)) s" >&2
fi

ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT
cp "$share/control/image/Dockerfile" "$bin" "$ctx/"
DOCKER_BUILDKIT=0 docker build -q --build-arg "BASE=edgehop-base:$size" \
	-t "edgehop-svc:$size" "$ctx" 2>/dev/null
