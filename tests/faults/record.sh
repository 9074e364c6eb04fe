#!/bin/sh
# record.sh ACTION — a behaviour script of the fault suite: appends
# "TIME ACTION PEER_STATE" to $RECORD_DIR/$CHOREO_NODE.$CHOREO_BEHAVIOUR,
# then lasts a little (a level action takes time, so that a crash can hit
# one while it runs). PEER_STATE is the state of the peer that caused the
# call, or, for a call with no such peer (the run an `on: change`
# behaviour makes with its first snapshot after a start), the state of
# the first watched peer in the JSON on stdin.
input=$(cat)
state=${CHOREO_PEER_STATE:-}
if [ -z "$state" ]; then
  state=$(printf '%s' "$input" | jq -r '.peers[0].state // "-"' 2>/dev/null)
fi
printf '%s %s %s\n' "$(date +%s.%N)" "$1" "${state:--}" \
  >>"$RECORD_DIR/$CHOREO_NODE.$CHOREO_BEHAVIOUR"
sleep 0.3
