#!/usr/bin/env bash
# The Debian packages: scripts/deb.sh builds choreo, libchoreo0 and
# libchoreo-dev with dpkg-buildpackage and checks them with lintian; each
# package holds what it should; unpacked (dpkg -x) the binary runs
# `choreo version` and `choreo check` of the example configuration; and,
# as root on a machine where choreo is not installed, `apt-get install
# ./choreo_*.deb` installs it with its `choreo` group, and a purge removes
# it again. Skipped (77) without Debian's packaging tools.
source "$(dirname "$0")/lib.sh"

for tool in dpkg-buildpackage dh lintian fakeroot; do
  command -v "$tool" >/dev/null || { echo "# skip: $tool is missing"; exit 77; }
done

"$CHOREO_SRC/scripts/deb.sh" "$T/out" > "$T/deb.log" 2>&1 ||
  fail "scripts/deb.sh failed: $(tail -n 30 "$T/deb.log")"
V=$(sed -n "s/^  version : '\([^']*\)'.*/\1/p" "$CHOREO_SRC/meson.build" | head -1)
A=$(dpkg --print-architecture)
for p in choreo libchoreo0 libchoreo-dev; do
  [ -f "$T/out/${p}_${V}_${A}.deb" ] || fail "no ${p}_${V}_${A}.deb: $(ls "$T/out")"
done
ok "scripts/deb.sh builds choreo, libchoreo0 and libchoreo-dev ${V} (${A}), lintian clean"

# has PACKAGE PATH...: the package holds every path.
has() {
  local deb=$T/out/$1_${V}_${A}.deb f
  shift
  dpkg -c "$deb" | awk '{print $6}' > "$T/list"
  for f in "$@"; do
    grep -qx "./$f" "$T/list" || fail "$deb lacks $f: $(cat "$T/list")"
  done
}
has choreo usr/bin/choreo usr/share/man/man1/choreo.1.gz \
  usr/share/man/man5/choreo.yaml.5.gz etc/choreo/choreo.yaml \
  lib/systemd/system/choreo.service lib/systemd/system/choreo.service.d/group.conf \
  usr/share/bash-completion/completions/choreo usr/share/zsh/vendor-completions/_choreo \
  usr/share/choreo/behaviours/nginx-holding-page.yaml usr/share/doc/choreo/schema/status.json
has libchoreo0 "usr/lib/$(dpkg-architecture -qDEB_HOST_MULTIARCH)/libchoreo.so.0"
has libchoreo-dev usr/include/choreo.h "usr/lib/$(dpkg-architecture -qDEB_HOST_MULTIARCH)/libchoreo.so" \
  "usr/lib/$(dpkg-architecture -qDEB_HOST_MULTIARCH)/pkgconfig/libchoreo.pc"
dpkg -c "$T/out/choreo_${V}_${A}.deb" | grep -q 'usr/include' && fail "choreo ships the header"
dpkg-deb -f "$T/out/choreo_${V}_${A}.deb" Depends | grep -q 'libchoreo0' ||
  fail "choreo does not depend on libchoreo0"
dpkg-deb -e "$T/out/choreo_${V}_${A}.deb" "$T/ctl"
grep -qx /etc/choreo/choreo.yaml "$T/ctl/conffiles" || fail "the example configuration is not a conffile"
grep -q 'adduser --system --group' "$T/ctl/postinst" || fail "postinst makes no choreo user"
grep -q 'systemctl.*enable' "$T/ctl/postinst" && fail "the unit is enabled on installation"
ok "each package holds its files; the configuration is a conffile; no service enabled"

mkdir -p "$T/root"
for p in choreo libchoreo0; do dpkg -x "$T/out/${p}_${V}_${A}.deb" "$T/root"; done
export LD_LIBRARY_PATH=$T/root/usr/lib/$(dpkg-architecture -qDEB_HOST_MULTIARCH)
"$T/root/usr/bin/choreo" version | grep -qx "choreo $V" || fail "choreo version from the package"
"$T/root/usr/bin/choreo" check -c "$T/root/etc/choreo/choreo.yaml" > "$T/check" 2>&1 ||
  fail "choreo check of the example configuration: $(cat "$T/check")"
bash -c "source '$T/root/usr/share/bash-completion/completions/choreo' && complete -p choreo" >/dev/null ||
  fail "the bash completion does not load"
COMP_WORDS=(choreo watch --sn); COMP_CWORD=2
source "$T/root/usr/share/bash-completion/completions/choreo"
_choreo
[ "${COMPREPLY[*]}" = "--snapshot" ] || fail "bash completion of 'watch --sn': ${COMPREPLY[*]}"
unset LD_LIBRARY_PATH
ok "unpacked: choreo version and choreo check of the example configuration; the bash completion works"

# Install onto this machine, only where that can't clobber anything.
if [ "$(id -u)" -ne 0 ] || dpkg -s choreo >/dev/null 2>&1 || [ -e /usr/bin/choreo ]; then
  echo "# not installing: not root, or choreo is installed here already"
  exit 0
fi
purge() { apt-get purge -y -qq choreo libchoreo0 libchoreo-dev >/dev/null 2>&1 || true; }
trap 'purge; cleanup' EXIT
apt-get install -y -qq --no-install-recommends "$T/out/libchoreo0_${V}_${A}.deb" \
  "$T/out/choreo_${V}_${A}.deb" "$T/out/libchoreo-dev_${V}_${A}.deb" > "$T/apt.log" 2>&1 ||
  fail "apt-get install: $(tail -n 20 "$T/apt.log")"
/usr/bin/choreo version | grep -qx "choreo $V" || fail "installed choreo version"
/usr/bin/choreo check -c /etc/choreo/choreo.yaml > "$T/check2" 2>&1 ||
  fail "installed choreo check: $(cat "$T/check2")"
getent group choreo >/dev/null || fail "no choreo group after installation"
pkg-config --exists libchoreo || fail "libchoreo.pc not found after installing libchoreo-dev"
purge
[ -e /usr/bin/choreo ] && fail "/usr/bin/choreo left after purge"
[ -e /etc/choreo/choreo.yaml ] && fail "the configuration left after purge"
trap cleanup EXIT
ok "apt-get install ./choreo_*.deb: choreo version, choreo check, the choreo group; purge removes it"
