#!/usr/bin/env bash
# `meson install` puts everything in its place, and a program built against
# the installed libchoreo through pkg-config talks to a running agent.
source "$(dirname "$0")/lib.sh"
: "${CHOREO_BUILD:?CHOREO_BUILD must point at the meson build directory}"

root=$T/root
meson install -C "$CHOREO_BUILD" --no-rebuild --destdir "$root" >"$T/install.log" 2>&1 ||
  fail "meson install: $(tail -5 "$T/install.log")"
prefix=$(meson introspect "$CHOREO_BUILD" --buildoptions | jq -r '.[] | select(.name == "prefix") | .value')
libdir=$(meson introspect "$CHOREO_BUILD" --buildoptions | jq -r '.[] | select(.name == "libdir") | .value')
for f in "bin/choreo" "include/choreo.h" "share/man/man1/choreo.1" "share/man/man5/choreo.yaml.5" \
         "share/choreo/behaviours/README.md" "$libdir/pkgconfig/libchoreo.pc"; do
  [ -e "$root$prefix/$f" ] || fail "not installed: $prefix/$f"
done
ls "$root$prefix/$libdir"/libchoreo.so.0* >/dev/null 2>&1 || fail "libchoreo.so.0 not installed"
find "$root" -name choreo.service | grep -q . || fail "choreo.service not installed"
grep -q "^ExecStart=$prefix/bin/choreo agent" "$(find "$root" -name choreo.service)" || fail "unit's ExecStart"
ok "meson install: binary, library, header, pkg-config file, man pages, packs, systemd unit"

export PKG_CONFIG_SYSROOT_DIR=$root PKG_CONFIG_PATH=$root$prefix/$libdir/pkgconfig
# A library built with sanitizers needs programs built with them too.
sanitize=$(meson introspect "$CHOREO_BUILD" --buildoptions | jq -r '.[] | select(.name == "b_sanitize") | .value')
[ "$sanitize" = none ] && sanflags=() || sanflags=("-fsanitize=$sanitize")
cc "${sanflags[@]}" -o "$T/peers-in-state" "$CHOREO_SRC/examples/libchoreo/peers-in-state.c" \
  $(pkg-config --cflags --libs libchoreo) 2>"$T/cc.log" || fail "building the example: $(cat "$T/cc.log")"
ok "the example builds against the installed library via pkg-config"

p1=$(free_port); p2=$(free_port)
write_config db1 "$p1" "[db]" "[]"
write_config web1 "$p2" "[web]" "[tcp://127.0.0.1:$p1]"
start_agent db1
start_agent web1
wait_for "web1 sees db1" 10 sees web1 db1 ready
run_example() { LD_LIBRARY_PATH=$root$prefix/$libdir "$T/peers-in-state" "$@"; }
run_example "$T/web1.sock" maintenance; rc=$?
[ "$rc" = 1 ] || fail "example with nobody in maintenance: exit $rc"
c db1 set maintenance --reason "schema 42" || fail "set"
wait_for "web1 sees db1 in maintenance" 10 sees web1 db1 maintenance
out=$(run_example "$T/web1.sock" maintenance 2>&1) || fail "example: exit $?: $out"
[ "$out" = "$(printf 'db1\tschema 42')" ] || fail "example printed: $out"
run_example "$T/nobody.sock" ready; rc=$?
[ "$rc" = 3 ] || fail "example without an agent: exit $rc"
ok "the example program talks to a running agent through the installed library"
