#!/usr/bin/env bash
# Installs the Debian packages the network-lab tests and `make demo` drive:
# real routers (FRR, BIRD 2), real clients (arping, ndisc6, tcpdump, curl) and
# nft, which kube-proxy's nftables mode runs (sigs.k8s.io/knftables execs it).
# Idempotent: does nothing when every tool is already present; retries while
# another dpkg holds the lock (unattended upgrades on a fresh machine).
set -euo pipefail

pkgs=(frr bird2 arping ndisc6 tcpdump iproute2 iputils-ping openssl curl nftables)
have() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }

missing=()
for p in "${pkgs[@]}"; do have "$p" || missing+=("$p"); done
if ((${#missing[@]} == 0)); then
  exit 0
fi
if [[ $(id -u) != 0 ]]; then
  echo "install-test-deps: need root to install: ${missing[*]}" >&2
  exit 1
fi

retry() {
  local i
  for i in $(seq 1 30); do
    if "$@"; then return 0; fi
    echo "install-test-deps: '$*' failed (dpkg lock busy?), retry $i/30" >&2
    sleep 5
  done
  return 1
}

export DEBIAN_FRONTEND=noninteractive
echo "install-test-deps: installing ${missing[*]}" >&2
retry apt-get update -qq
retry apt-get install -y -qq --no-install-recommends \
  -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "${missing[@]}" >/dev/null
# The Debian frr package starts its own daemons via systemd where systemd runs;
# the lab starts private instances per namespace, so the packaged ones stay off.
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet frr 2>/dev/null; then
  systemctl stop frr || true
fi
