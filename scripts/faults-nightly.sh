#!/usr/bin/env bash
# The fault suite (test/faults/, issue 19) as a nightly job: it takes tens of
# minutes on a small machine, more than CI's budget. Runs every fault test
# (or those named as arguments), then writes docs/reliability-last-run.md
# from the figures each test leaves in .hub/faults/<name>.json; commit that
# file to publish the run. Registry and Postgres come from the environment
# (KAFKA_BROKERS, SCHEMA_REGISTRY_URL, DATABASE_URL) or the test profile the
# global setup starts; each test runs a three-broker cluster of its own.
#   scripts/faults-nightly.sh                      # the whole suite
#   HUB_FAULT_SCALE=0.05 scripts/faults-nightly.sh test/faults/leader-kill.fault.test.ts
set -uo pipefail
cd "$(dirname "$0")/.."

out=.hub/faults
doc=${FAULTS_REPORT:-docs/reliability-last-run.md}
mkdir -p "$out"
rm -f "$out"/*.json
started=$(date -u +%Y-%m-%dT%H:%M:%SZ)
t0=$(date +%s)

npx vitest run --config vitest.faults.config.ts "$@" 2>&1 | tee "$out/run.log"
status=${PIPESTATUS[0]}

FAULTS_STARTED="$started" FAULTS_SECONDS="$(($(date +%s) - t0))" FAULTS_STATUS="$status" \
  FAULTS_COMMIT="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)" \
  FAULTS_SCALE="${HUB_FAULT_SCALE:-1}" FAULTS_CPUS="$(nproc)" \
  node --input-type=module - "$out" "$doc" <<'EOF'
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const [dir, doc] = process.argv.slice(2);
const e = process.env;
const runs = readdirSync(dir)
  .filter((f) => f.endsWith('.json'))
  .sort()
  .map((f) => JSON.parse(readFileSync(join(dir, f), 'utf8')));
const failedLines = readFileSync(join(dir, 'run.log'), 'utf8')
  .split('\n')
  .filter((l) => /^\s*(FAIL|×)\s/.test(l.replace(/\x1b\[[0-9;]*m/g, '')))
  .map((l) => l.replace(/\x1b\[[0-9;]*m/g, '').trim());
const lines = [
  '# Fault suite: last run',
  '',
  'Written by `scripts/faults-nightly.sh` (do not edit by hand); what each test does and',
  'what its figures mean: [reliability.md](reliability.md).',
  '',
  `- Started ${e.FAULTS_STARTED}, ${Math.round(Number(e.FAULTS_SECONDS) / 60)} min, commit ${e.FAULTS_COMMIT},`,
  `  Node ${process.version}, ${e.FAULTS_CPUS} CPUs, size scale ${e.FAULTS_SCALE}.`,
  `- Result: ${e.FAULTS_STATUS === '0' ? 'all passed' : `FAILED (vitest exit ${e.FAULTS_STATUS})`}.`,
  ...failedLines.map((l) => `  - ${l}`),
  '',
];
for (const r of runs) {
  lines.push(`## ${r.name}: ${r.title}`, '', `At ${r.at}.`, '', '| figure | value |', '| --- | --- |');
  for (const [k, v] of Object.entries(r.figures)) lines.push(`| ${k} | ${String(v)} |`);
  lines.push('');
}
if (runs.length === 0) lines.push('No fault test reported figures (see the run log).', '');
writeFileSync(doc, lines.join('\n'));
process.stdout.write(`wrote ${doc} (${runs.length} fault tests)\n`);
EOF
exit "$status"
