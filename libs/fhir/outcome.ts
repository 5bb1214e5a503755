import type { OperationOutcome, OperationOutcomeIssue } from '@medplum/fhirtypes';

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
