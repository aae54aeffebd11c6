#!/usr/bin/env bash
# The README's "run a cluster" command: installs the system packages a real
# node needs (containerd, runc, the CNI plugins, busybox-static for the demo
# images) when they are missing, then runs examples/cluster. Extra arguments
# go to examples/cluster (see `go run ./examples/cluster -h`).
set -euo pipefail
cd "$(dirname "$0")/.."
need=()
command -v containerd >/dev/null || need+=(containerd)
command -v runc >/dev/null || need+=(runc)
[ -x /usr/lib/cni/bridge ] || need+=(containernetworking-plugins)
[ -x /bin/busybox ] || need+=(busybox-static)
if [ ${#need[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq "${need[@]}" >/dev/null
fi
export PATH="/usr/local/go/bin:$PATH"
exec go run ./examples/cluster "$@"
