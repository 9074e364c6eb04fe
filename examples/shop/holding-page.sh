#!/bin/sh
# Swap this webserver's document root between the site and a holding page.
# The swap is atomic (a symlink renamed over the old one), so a request
# never sees a half-written page. Run by choreo with "on" or "off".
set -eu
root="www/$CHOREO_NODE"
mkdir -p "$root"
[ -f "$root/site.html" ] || echo "<h1>Shop</h1><p>Welcome.</p>" > "$root/site.html"
[ -f "$root/holding.html" ] ||
  echo "<h1>Maintenance in progress</h1><p>Back in a few minutes.</p>" > "$root/holding.html"

case "$1" in
  on)  target=holding.html ;;
  off) target=site.html ;;
  *)   echo "usage: $0 on|off" >&2; exit 2 ;;
esac
ln -sfn "$target" "$root/.index.html.new"
mv -T "$root/.index.html.new" "$root/index.html"
echo "$CHOREO_NODE: serving $target ($CHOREO_EVENT: $CHOREO_PEER is $CHOREO_PEER_STATE${CHOREO_PEER_REASON:+, $CHOREO_PEER_REASON})"
