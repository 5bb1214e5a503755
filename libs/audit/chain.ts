import { createHash, createHmac } from 'node:crypto';
import { HubError } from '../errors/index.js';
import type { AuditSummary } from './event.js';

/**
 * The audit log's tamper evidence: row n stores H(hash(n-1) + canonical JSON
 * of row n without its hash). Changing, inserting or deleting any row changes
 * every hash after it, so a verifier walking the chain names the first row
 * that does not match. Pure.
 *
 * Two chain versions, recorded per row so that a table written before keying
 * keeps verifying:
 *  - 1: H = sha256. Anyone who can write the table can recompute it, so it
 *    only shows accidents and edits made by someone who did not bother;
 *  - 2: H = HMAC-SHA256 with the chain key (AUDIT_CHAIN_KEY_FILE), and the
 *    version itself is hashed. Rewriting a row needs the key.
 * Once a version-2 row exists no version-1 row may follow it, so a rewrite
 * cannot fall back to the unkeyed hash for the rows after the cut-over
 * (rewriting every row from the cut-over on as version 1 is caught by
 * `hub audit verify` comparing the table with the audit topic, and by the
 * cut-over seq it prints).
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
  /** 2: keyed (HMAC). Absent on version-1 rows, whose hashed text predates the field. */
  chainVersion?: 2;
}

export type ChainVersion = 1 | 2;

/** The row's hash: sha256 for version 1, HMAC-SHA256 with `key` for version 2 (which needs it). */
export function rowHash(row: ChainedRow, key?: Buffer | null): string {
  if (row.chainVersion === 2) {
    if (!key)
      throw new HubError(
        'HUB_CONFIG_INVALID',
        'a keyed audit row needs the chain key (AUDIT_CHAIN_KEY_FILE)',
      );
    return createHmac('sha256', key).update(row.prevHash).update(canonicalJson(row)).digest('hex');
  }
  return createHash('sha256').update(row.prevHash).update(canonicalJson(row)).digest('hex');
}

export type ChainBreak = 'prev-hash-mismatch' | 'hash-mismatch' | 'seq-gap' | 'downgrade' | 'key-required';

export type ChainVerdict =
  | {
      ok: true;
      rows: number;
      lastHash: string;
      /** Version-1 (unkeyed) rows, all before `keyedFrom` (always set by ChainVerifier). */
      unkeyedRows?: number;
      /** Seq of the first keyed row; null when none is keyed yet (always set by ChainVerifier). */
      keyedFrom?: number | null;
    }
  | {
      ok: false;
      rows: number;
      brokenAt: number;
      reason: ChainBreak;
      /**
       * A hash-mismatch on the first keyed row. A key other than the one the
       * rows were written with breaks exactly there, so the verdict alone
       * cannot tell a wrong key from an edited row: the reader is told both.
       */
      firstKeyed?: true;
    };

/**
 * Folds over rows in seq order; feed it in pages (state carries over) so that
 * a long log is verified in constant memory.
 */
export class ChainVerifier {
  private prev = GENESIS_HASH;
  private lastSeq = 0;
  private count = 0;
  private unkeyed = 0;
  private keyedFrom: number | null = null;
  private broken: ChainVerdict | null = null;

  /** `key`: the chain key; without it a keyed row cannot be checked and breaks as `key-required`. */
  constructor(private readonly key: Buffer | null = null) {}

  private check(row: ChainedRow & { hash: string }): ChainBreak | null {
    const { hash, ...rest } = row;
    if (row.seq !== this.lastSeq + 1) return 'seq-gap';
    if (row.prevHash !== this.prev) return 'prev-hash-mismatch';
    if (row.chainVersion !== 2 && this.keyedFrom !== null) return 'downgrade';
    if (row.chainVersion === 2 && !this.key) return 'key-required';
    return rowHash(rest, this.key) === hash ? null : 'hash-mismatch';
  }

  push(row: ChainedRow & { hash: string }): boolean {
    if (this.broken) return false;
    this.count++;
    const reason = this.check(row);
    if (reason) {
      const firstKeyed = reason === 'hash-mismatch' && row.chainVersion === 2 && this.keyedFrom === null;
      this.broken = {
        ok: false,
        rows: this.count,
        brokenAt: row.seq,
        reason,
        ...(firstKeyed ? { firstKeyed: true as const } : {}),
      };
      return false;
    }
    if (row.chainVersion === 2) this.keyedFrom ??= row.seq;
    else this.unkeyed++;
    this.prev = row.hash;
    this.lastSeq = row.seq;
    return true;
  }

  verdict(): ChainVerdict {
    return (
      this.broken ?? {
        ok: true,
        rows: this.count,
        lastHash: this.prev,
        unkeyedRows: this.unkeyed,
        keyedFrom: this.keyedFrom,
      }
    );
  }
}

export function verifyRows(
  rows: readonly (ChainedRow & { hash: string })[],
  key: Buffer | null = null,
): ChainVerdict {
  const v = new ChainVerifier(key);
  for (const r of rows) if (!v.push(r)) break;
  return v.verdict();
}
