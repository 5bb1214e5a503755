#!/usr/bin/env bash
# N consecutive fresh-clone, fresh-data-directory `npm run up` starts (default 10): each run clones
# this repository's HEAD into a new folder (a new .hub/dev, so Kafka is formatted on start), drops
# the dev databases `hub` and `hub_registry` first, runs `npm run up` until "hub is up", then Ctrl-C.
# Uses hub up's own ports: nothing else may run on them. Prints one line per run.
#   bash scripts/drills/fresh-clone-starts.sh [N]
set -u
n=${1:-10}
repo=$(git rev-parse --show-toplevel)
work=$(mktemp -d)
for i in $(seq 1 "$n"); do
  rm -rf "$work/clone" && git clone -q "$repo" "$work/clone" || exit 1
  psql -h 127.0.0.1 -U postgres -qc 'drop database if exists hub' -c 'drop database if exists hub_registry' >/dev/null 2>&1
  log="$work/run-$i.log"
  t0=$(date +%s%N)
  (cd "$work/clone" && npm run up >"$log" 2>&1) &
  ok=0
  for _ in $(seq 1 600); do
    if grep -q "hub is up in" "$log"; then ok=1; break; fi
    pgrep -f "bin/hub.js up" >/dev/null || pgrep -f "npm run up" >/dev/null || break
    sleep 0.5
  done
  t1=$(date +%s%N)
  if [ "$ok" = 1 ]; then
    echo "run $i: $(grep -o 'hub is up in [0-9.]*s' "$log") (npm run up incl. install and build: $(awk "BEGIN {printf \"%.1f\", ($t1-$t0)/1e9}") s; service restarts: $(grep -c 'restarting in' "$log"))"
  else
    echo "run $i: FAILED: $(grep -E 'HUB_|failed' "$log" | tail -2)"
  fi
  pkill -INT -f "bin/hub.js up"
  for _ in $(seq 1 120); do pgrep -f "bin/hub.js up" >/dev/null || break; sleep 0.5; done
done
echo "logs: $work"
