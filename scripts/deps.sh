#!/usr/bin/env bash
# Install what choreo needs to build, test and run its demos on Debian
# bookworm. Idempotent: does nothing when everything is already there.
set -eu

PACKAGES=(
  build-essential meson ninja-build pkg-config
  libuv1-dev libnanomsg-dev nanomsg-utils libyaml-dev libjansson-dev
  libsodium-dev libcmocka-dev
  jq procps iproute2 python3 python3-prometheus-client shellcheck clang
  faketime # skewed clocks: tests/scenario/skew.sh, tests/faults
  nftables # packet loss, duplication and partitions: tests/faults
  libclang-rt-14-dev # libFuzzer and the sanitizers' runtimes for clang
  nginx haproxy postgresql socat curl # the real story: examples/shop-real, tests/scenario/real_story.sh
  python3-jsonschema # docs/schema against real output: tests/scenario/schemas.sh
  debhelper dpkg-dev fakeroot lintian adduser # the Debian package: scripts/deb.sh
  openssl # real_story.sh's self-signed certificate for the TLS + HTTP/2 server block
  pgbouncer apache2 # tests/scenario/packs_pgbouncer.sh, packs_apache.sh (they stop Debian's own services)
  libhttp-parser-dev # the HTTP endpoint's request parser (agent/http_req.c)
  chromium python3-websocket # the fleet page in a browser: tests/scenario/http_browser.sh
  prometheus # scraping the endpoint: tests/scenario/prometheus.sh
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
  echo "deps: missing packages: ${missing[*]}; run as root to install them" >&2
  exit 1
fi
echo "deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# Debian's prometheus starts a service on :9090; the tests run their own.
if command -v systemctl >/dev/null && systemctl is-enabled prometheus >/dev/null 2>&1; then
  systemctl disable --now prometheus >/dev/null 2>&1 || true
fi
