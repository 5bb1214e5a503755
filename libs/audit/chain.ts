import { createHash } from 'node:crypto';
import type { AuditSummary } from './event.js';

/**
 * The audit log's tamper evidence: row n stores sha256(hash(n-1) + canonical
 * JSON of row n without its hash). Changing, inserting or deleting any row
 * changes every hash after it, so a verifier walking the chain names the first
 * row that does not match. Pure.
 */
export const GENESIS_HASH = '0'.repeat(64);

/** JSON with object keys sorted at every level and no whitespace: one text per value. */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') {
    if (typeof value === 'number' && !Number.isFinite(value)) return 'null';
    if (value === undefined) return 'null';
    return JSON.stringify(value);
  }
  if (Array.isArray(value)) return `[${value.map((v) => canonicalJson(v)).join(',')}]`;
  const obj = value as Record<string, unknown>;
  const keys = Object.keys(obj)
    .filter((k) => obj[k] !== undefined)
    .sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(obj[k])}`).join(',')}}`;
}

/** What is hashed of a row: everything but the hash itself. */
export interface ChainedRow extends AuditSummary {
  seq: number;
  /** The AuditEvent resource as received. */
  event: unknown;
  prevHash: string;
}

export function rowHash(row: ChainedRow): string {
  return createHash('sha256').update(row.prevHash).update(canonicalJson(row)).digest('hex');
}

export type ChainVerdict =
  | { ok: true; rows: number; lastHash: string }
  | { ok: false; rows: number; brokenAt: number; reason: 'prev-hash-mismatch' | 'hash-mismatch' | 'seq-gap' };

/**
 * Folds over rows in seq order; feed it in pages (state carries over) so that
 * a long log is verified in constant memory.
 */
export class ChainVerifier {
  private prev = GENESIS_HASH;
  private lastSeq = 0;
  private count = 0;
  private broken: ChainVerdict | null = null;

  push(row: ChainedRow & { hash: string }): boolean {
    if (this.broken) return false;
    const { hash, ...rest } = row;
    this.count++;
    let reason: 'prev-hash-mismatch' | 'hash-mismatch' | 'seq-gap' | null = null;
    if (row.seq !== this.lastSeq + 1) reason = 'seq-gap';
    else if (row.prevHash !== this.prev) reason = 'prev-hash-mismatch';
    else if (rowHash(rest) !== hash) reason = 'hash-mismatch';
    if (reason) {
      this.broken = { ok: false, rows: this.count, brokenAt: row.seq, reason };
      return false;
    }
    this.prev = hash;
    this.lastSeq = row.seq;
    return true;
  }

  verdict(): ChainVerdict {
    return this.broken ?? { ok: true, rows: this.count, lastHash: this.prev };
  }
}

export function verifyRows(rows: readonly (ChainedRow & { hash: string })[]): ChainVerdict {
  const v = new ChainVerifier();
  for (const r of rows) if (!v.push(r)) break;
  return v.verdict();
}
