# identity_lib.sh — what the identity scenarios share (source it after
# lib.sh): keys and certificates made with the CLI as an operator would.

# ch ARGS...: the choreo command line.
ch() { "$CHOREO_BIN" "$@"; }

# secret FILE: a new signing key, mode 0600.
secret() { (umask 077 && ch keygen --signing > "$1") || fail "keygen --signing $1"; }

# issue_cert OUT OPKEY NODE GROUPS NODEKEY [OPTION...]: a certificate for
# the public half of NODEKEY, signed with OPKEY, written to OUT.
issue_cert() {
  local out=$1 op=$2 node=$3 groups=$4 nodekey=$5
  shift 5
  ch cert issue --operator-key "$op" --node "$node" --groups "$groups" \
    --public "$(ch pubkey "$nodekey")" "$@" > "$out" || fail "cert issue $out"
}
