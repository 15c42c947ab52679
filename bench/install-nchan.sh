#!/usr/bin/env bash
# nchan, the nginx module the benchmark compares against (issue 45): Debian's package,
# on the system's nginx. Nothing of it is committed; `bench` runs it from a config of its
# own (one process, `master_process off`), see `ServerProcess::nchan` in bench/src/main.rs.
set -euo pipefail
if [ -f /usr/lib/nginx/modules/ngx_nchan_module.so ]; then
    echo "nchan: $(dpkg-query -W -f='${Version}' libnginx-mod-nchan 2>/dev/null || echo present)"
    exit 0
fi
sudo=""
[ "$(id -u)" -eq 0 ] || sudo=sudo
$sudo apt-get update -q
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q nginx libnginx-mod-nchan
echo "nchan: $(dpkg-query -W -f='${Version}' libnginx-mod-nchan)"
