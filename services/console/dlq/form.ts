import { HubError } from '../../../libs/errors/index.js';

/**
 * Reading the dead-letter and message pages' forms: every value is a string
 * or absent, and a record is named by its topic, partition and offset (the
 * hidden fields of its row), never by anything a person typed.
 */

/** A form field's text, trimmed; empty when absent or repeated. */
export const text = (v: unknown): string => (typeof v === 'string' ? v.trim() : '');

export interface RecordAddress {
  topic: string;
  partition: number;
  offset: bigint;
}

/** The record a row's form names; `what` says what it is in the error. */
export function recordAddress(b: Record<string, unknown>, what: string): RecordAddress {
  const topic = text(b['topic']);
  const partition = text(b['partition']);
  const offset = text(b['offset']);
  if (topic === '' || !/^\d{1,9}$/.test(partition) || !/^\d{1,19}$/.test(offset)) {
    throw new HubError('HUB_INPUT_INVALID', `${what} is named by topic, partition and offset`);
  }
  return { topic, partition: Number(partition), offset: BigInt(offset) };
}

/** The least a reason must say (as `hub dlq --reason`): it is kept on the audit trail. */
export const MIN_REASON = 5;

export function checkReason(reason: string): string {
  const r = reason.trim();
  if (r.length < MIN_REASON) {
    throw new HubError(
      'HUB_INPUT_INVALID',
      `give a reason (at least ${MIN_REASON} characters); it is audited`,
    );
  }
  return r;
}
