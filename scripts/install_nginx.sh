#!/usr/bin/env bash
# Make Debian's nginx available for the nginx smoke test and benchmarks/gateways/nginx.sh.
# Idempotent: does nothing when an nginx binary is already present. Exit 0 when nginx is
# usable afterwards, 1 when it is not (the caller's tests then skip with a reason).
set -euo pipefail

have_nginx() {
    command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ]
}

if have_nginx; then
    exit 0
fi
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "install_nginx: not root or no apt-get; nginx tests will skip" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
# Keep the package's post-install from starting a system nginx on port 80: tests and
# benchmarks run private instances on loopback ports.
policy=/usr/sbin/policy-rc.d
if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' > "$policy"
    chmod +x "$policy"
    trap 'rm -f "$policy"' EXIT
fi
# nginx-light is the small build (bookworm and older); later releases only ship nginx.
for pkg in nginx-light nginx; do
    if apt-get install -y -q --no-install-recommends "$pkg" >/dev/null 2>&1; then
        break
    fi
    apt-get update -q >/dev/null 2>&1 || true
    if apt-get install -y -q --no-install-recommends "$pkg" >/dev/null 2>&1; then
        break
    fi
done
# The package's own service is not wanted: tests and benchmarks run private instances.
if command -v systemctl >/dev/null 2>&1; then
    systemctl disable --now nginx >/dev/null 2>&1 || true
fi
if have_nginx; then
    exit 0
fi
echo "install_nginx: could not install nginx-light or nginx" >&2
exit 1
