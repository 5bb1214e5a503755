#!/usr/bin/env bash
# Fault drill: kill -9 each service under a running `npm run up`, one after another; print how
# long until its /ready answers 200 again and whether any other service's process changed.
#   npm run up            # in another terminal
#   bash scripts/drills/kill-services.sh
# The ports are hub up's (cli/services.ts).
set -u
declare -A PORT=([adapter-hl7]=8092 [adapter-fhir]=8093 [patient-directory]=8091 [projector-billing]=8095
  [projector-analytics]=8096 [projector-portal]=8097 [api]=8098 [delivery]=8099)
pid_of() { pgrep -f "services/$1/main.ts" | head -1; }
snapshot() { for s in "${!PORT[@]}"; do echo "$s=$(pid_of "$s")"; done | sort; }
for s in adapter-hl7 adapter-fhir patient-directory projector-billing projector-analytics projector-portal api delivery; do
  old=$(pid_of "$s")
  [ -n "$old" ] || { echo "$s: not running (is npm run up running?)"; exit 1; }
  before=$(snapshot)
  t0=$(date +%s%N)
  kill -9 "$old"
  for _ in $(seq 1 1200); do new=$(pid_of "$s"); [ -n "$new" ] && [ "$new" != "$old" ] && break; sleep 0.05; done
  for _ in $(seq 1 1200); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 1 "http://127.0.0.1:${PORT[$s]}/ready")" = 200 ] && break
    sleep 0.1
  done
  t1=$(date +%s%N)
  changed=$(diff <(echo "$before" | grep -v "^$s=") <(snapshot | grep -v "^$s=") | grep -c '^>')
  printf '%-20s killed pid %-7s new pid %-7s ready again after %5.1f s; other services restarted: %s\n' \
    "$s" "$old" "$new" "$(awk "BEGIN {print ($t1-$t0)/1e9}")" "$changed"
done
