#!/bin/sh
# record.sh ACTION — a behaviour script of the fault suite: appends
# "TIME ACTION PEER_STATE" to $RECORD_DIR/$CHOREO_NODE.$CHOREO_BEHAVIOUR,
# then lasts a little (a level action takes time, so that a crash can hit
# one while it runs).
printf '%s %s %s\n' "$(date +%s.%N)" "$1" "${CHOREO_PEER_STATE:--}" \
  >>"$RECORD_DIR/$CHOREO_NODE.$CHOREO_BEHAVIOUR"
cat >/dev/null
sleep 0.3
