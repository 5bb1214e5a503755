import type { OperationOutcome, OperationOutcomeIssue } from '@medplum/fhirtypes';
import { errorSpec, frameworkClientError, httpStatusOf, publicMessage, toHubError } from '../errors/index.js';

/**
 * OperationOutcome helpers. Diagnostics name elements and rules, never
 * values: an outcome travels back to the client and into logs.
 */
export type IssueType = OperationOutcomeIssue['code'];

export interface FhirIssue {
  severity: 'error' | 'warning' | 'information' | 'fatal';
  code: IssueType;
  diagnostics: string;
  /** FHIRPath expressions of the offending element(s). */
  expression?: string[];
}

export function outcome(issues: readonly FhirIssue[]): OperationOutcome {
  return {
    resourceType: 'OperationOutcome',
    issue: issues.map((i) => ({
      severity: i.severity,
      code: i.code,
      diagnostics: i.diagnostics,
      ...(i.expression && i.expression.length > 0 ? { expression: [...i.expression] } : {}),
    })),
  };
}

export function errorIssue(code: IssueType, diagnostics: string, expression?: string): FhirIssue {
  return { severity: 'error', code, diagnostics, ...(expression ? { expression: [expression] } : {}) };
}

export function informational(diagnostics: string): OperationOutcome {
  return outcome([{ severity: 'information', code: 'informational', diagnostics }]);
}

/** Issue types for the framework's own client errors, by status; other 4xx: 'invalid'. */
const CLIENT_ISSUE: Partial<Record<number, IssueType>> = {
  400: 'invalid',
  401: 'login',
  403: 'forbidden',
  404: 'not-found',
  405: 'not-supported',
  406: 'not-supported',
  413: 'too-costly',
  415: 'not-supported',
  429: 'throttled',
};

/**
 * Anything thrown, as the status and OperationOutcome a FHIR client gets:
 * the status and issue type of its code (libs/errors), severity fatal for
 * 5xx. Diagnostics are publicMessage: for 5xx "<code>: <description>", never
 * the message, which may quote driver text.
 */
export function toOperationOutcome(err: unknown): { status: number; outcome: OperationOutcome } {
  const status = httpStatusOf(err);
  // The framework's own 4xx keep their status and message; anything else answers by its hub code.
  const hub = frameworkClientError(err) ? undefined : toHubError(err);
  const code: IssueType = hub ? errorSpec(hub.code).fhirIssue : (CLIENT_ISSUE[status] ?? 'invalid');
  const diagnostics = status >= 500 && hub ? `${hub.code}: ${publicMessage(hub)}` : publicMessage(err);
  return {
    status,
    outcome: outcome([{ severity: status >= 500 ? 'fatal' : 'error', code, diagnostics }]),
  };
}
