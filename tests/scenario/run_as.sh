#!/bin/bash
# run_as.sh — behaviour scripts as a non-root user (docs/CONFIGURATION.md
# "run_as"): a behaviour with run_as runs its script with that user's uid
# and gid, HOME, USER and LOGNAME; defaults.run_as applies to behaviours
# that don't say; an unknown user, a script file or directory someone else
# could change, and a non-root agent asking for another user are refused
# by choreo check (exit 2, FILE:LINE:COL); a script made writable after
# the start fails at spawn time with the reason logged, counted and
# retried, and runs again once fixed. Users are created for the test and
# removed at exit: needs root.
. "$(dirname "$0")/lib.sh"

if [ "$(id -u)" != 0 ] || ! command -v useradd >/dev/null ||
  ! command -v runuser >/dev/null; then
  echo "SKIP: needs root, useradd and runuser to create users"
  exit 77
fi

U=chtu$$ # the run_as user of one behaviour
D=chtd$$ # defaults.run_as
O=chto$$ # someone else
remove_accounts() {
  userdel "$U" 2>/dev/null
  userdel "$D" 2>/dev/null
  userdel "$O" 2>/dev/null
  cleanup
}
trap remove_accounts EXIT
for u in "$U" "$D" "$O"; do
  useradd --system -M -d "/home/$u" -s /bin/sh "$u" || fail "useradd $u"
done
chmod 755 "$T"
# Where the scripts write: each user's own directory.
mkdir -p "$T/out.$U" "$T/out.$D"
chown "$U" "$T/out.$U"
chown "$D" "$T/out.$D"

# The script: root's, 0755, in a root 0755 directory.
mkdir "$T/bin"
cat >"$T/bin/who.sh" <<'SH'
#!/bin/sh
echo "uid=$(id -u) gid=$(id -g) home=$HOME user=$USER logname=$LOGNAME" >"$1/who"
SH
chmod 755 "$T/bin/who.sh"

behaviours="defaults:
  run_as: $D
behaviours:
  - name: mine
    peers: {node: db1}
    when: {any: maintenance}
    run: [$T/bin/who.sh, $T/out.$U]
    run_as: $U
    retries: 1
  - name: dflt
    peers: {node: db1}
    when: {any: draining}
    run: [$T/bin/who.sh, $T/out.$D]"

P1=$(free_port)
P2=$(free_port)
write_config db1 "$P1" "[db]" "[]"
write_config web1 "$P2" "[web]" "[tcp://127.0.0.1:$P1]" "$behaviours"
run_line=$(grep -n "run: \[$T/bin/who.sh, $T/out.$U\]" "$T/web1.yaml" | head -1 | cut -d: -f1)

# ---- choreo check: what it refuses ----
check_refuses() { # check_refuses WHAT PATTERN
  local out rc
  out=$("$CHOREO_BIN" check -c "$T/web1.yaml" 2>&1)
  rc=$?
  [ "$rc" = 2 ] || fail "$1: check exited $rc, expected 2: $out"
  echo "$out" | grep -q -- "$2" || fail "$1: check said: $out"
  ok "$1: refused by choreo check (exit 2): $(echo "$out" | grep -- "$2" | head -1)"
}
"$CHOREO_BIN" check -c "$T/web1.yaml" >/dev/null 2>&1 ||
  fail "the configuration is refused: $("$CHOREO_BIN" check -c "$T/web1.yaml" 2>&1)"
ok "a root-owned 0755 script with run_as passes choreo check"

chown "$O" "$T/bin/who.sh"
check_refuses "a script owned by another user" \
  "^$T/web1.yaml:$run_line:11: behaviour mine: run: $T/bin/who.sh is writable by uid $(id -u "$O") (its owner; not root or the run_as user)"
chown root "$T/bin/who.sh"
chmod 775 "$T/bin/who.sh"
check_refuses "a group-writable script" \
  "^$T/web1.yaml:$run_line:11: behaviour mine: run: $T/bin/who.sh is writable by group gid 0 (mode 0775"
chmod 755 "$T/bin/who.sh"
chmod 777 "$T/bin"
check_refuses "a script in a directory anyone can write" \
  "^$T/web1.yaml:$run_line:11: behaviour mine: run: the directory $T/bin is writable by anyone (mode 0777)"
chmod 755 "$T/bin"
# A directory further up that another user owns: they could rename bin.
mkdir -p "$T/o/bin"
cp -p "$T/bin/who.sh" "$T/o/bin/who.sh"
chown "$O" "$T/o"
sed -i "s|run: \[$T/bin/who.sh, $T/out.$U\]|run: [$T/o/bin/who.sh, $T/out.$U]|" "$T/web1.yaml"
check_refuses "a script below a directory another user owns" \
  "^$T/web1.yaml:$run_line:11: behaviour mine: run: the directory $T/o is writable by uid $(id -u "$O") (its owner; not root or the run_as user)"
sed -i "s|run: \[$T/o/bin/who.sh, $T/out.$U\]|run: [$T/bin/who.sh, $T/out.$U]|" "$T/web1.yaml"

sed -i "s/    run_as: $U/    run_as: nosuch$$/" "$T/web1.yaml"
check_refuses "an unknown user" \
  "^$T/web1.yaml:$((run_line + 1)):13: behaviours\[0\].run_as: no user \"nosuch$$\""
sed -i "s/    run_as: nosuch$$/    run_as: $U/" "$T/web1.yaml"

chmod 644 "$T/web1.yaml"
out=$(runuser -u "$O" -- "$CHOREO_BIN" check -c "$T/web1.yaml" 2>&1)
rc=$?
[ "$rc" = 2 ] || fail "a non-root check of run_as exited $rc: $out"
echo "$out" | grep -q "^$T/web1.yaml:$((run_line + 1)):13: behaviours\[0\].run_as: the agent runs as uid $(id -u "$O"), not root: it can't run scripts as \"$U\"" ||
  fail "a non-root check of run_as said: $out"
ok "an agent that is not root can't run scripts as another user (exit 2, FILE:LINE:COL)"

# ---- the scripts run as their users ----
start_agent db1
start_agent web1
wait_for "web1 sees db1" 10 has_members web1 2
c db1 set maintenance >/dev/null || fail "set maintenance"
wait_for "mine ran" 10 test -s "$T/out.$U/who"
want="uid=$(id -u "$U") gid=$(id -g "$U") home=/home/$U user=$U logname=$U"
[ "$(cat "$T/out.$U/who")" = "$want" ] ||
  fail "mine ran as: $(cat "$T/out.$U/who"), expected $want"
ok "run_as $U: the script ran with $want"
c db1 set draining >/dev/null || fail "set draining"
wait_for "dflt ran" 10 test -s "$T/out.$D/who"
want="uid=$(id -u "$D") gid=$(id -g "$D") home=/home/$D user=$D logname=$D"
[ "$(cat "$T/out.$D/who")" = "$want" ] ||
  fail "dflt ran as: $(cat "$T/out.$D/who"), expected $want"
ok "defaults.run_as $D: the behaviour without run_as ran with $want"

# ---- made writable after the start: refused at spawn, counted, retried ----
failed_before=$(metric web1 choreo_script_failures_total)
rm -f "$T/out.$U/who"
chmod 757 "$T/bin/who.sh"
c db1 set ready >/dev/null || fail "set ready"
settled web1
c db1 set maintenance >/dev/null || fail "set maintenance again"
refused="mine: refusing to run $T/bin/who.sh as uid $(id -u "$U"): $T/bin/who.sh is writable by anyone (mode 0757)"
wait_for "the refusal is logged twice (a try and its retry)" 10 has_lines "$T/web1.log" "$refused" 2
wait_for "the failure is counted" 10 test "$(metric web1 choreo_script_failures_total)" -gt "$failed_before"
grep -q "mine: refused: the script file is not trusted; retry 1 of 1" "$T/web1.log" ||
  fail "no retry logged: $(grep mine "$T/web1.log")"
[ ! -e "$T/out.$U/who" ] || fail "the untrusted script ran: $(cat "$T/out.$U/who")"
ok "a script made writable after the start is refused at spawn, logged, retried and counted as a failure"

# ---- fixed: it runs again ----
chmod 755 "$T/bin/who.sh"
c db1 set ready >/dev/null || fail "set ready"
settled web1
c db1 set maintenance >/dev/null || fail "set maintenance once more"
wait_for "mine ran again" 10 test -s "$T/out.$U/who"
ok "once the file is fixed, the script runs again"
