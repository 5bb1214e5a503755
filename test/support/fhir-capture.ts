import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * Saves the FHIR bodies the API served during the tests, exactly as served, so
 * that the independent HAPI validator (libs/stack/fhir-validator.ts) checks
 * every resource and Bundle the end-to-end suite saw: .ci/run sets the
 * directory and validates it after the run. Off unless HUB_FHIR_CAPTURE_DIR is set.
 */
export const FHIR_CAPTURE_ENV = 'HUB_FHIR_CAPTURE_DIR';

export function fhirCaptureDir(): string | undefined {
  return process.env[FHIR_CAPTURE_ENV] || undefined;
}

let seq = 0;

/** A file name that says which request it answered, unique across the parallel workers of a run. */
export function captureFileName(requestPath: string, n: number, pid = process.pid): string {
  const slug = requestPath
    .replace(/^https?:\/\/[^/]+/, '')
    .replace(/[^A-Za-z0-9._-]+/g, '_')
    .replace(/^_+|_+$/g, '')
    .slice(0, 120);
  return `${pid}-${String(n).padStart(5, '0')}-${slug || 'root'}.json`;
}

/** Whether a body is FHIR JSON: an object with a resourceType (billing and analytics JSON are not). */
export function isFhirJson(text: string): boolean {
  try {
    const v: unknown = JSON.parse(text);
    return (
      typeof v === 'object' &&
      v !== null &&
      typeof (v as { resourceType?: unknown }).resourceType === 'string'
    );
  } catch {
    return false;
  }
}

/**
 * Saves one response body (the raw text: an `"entry": []` must reach the
 * validator as it was served) when it is FHIR and capture is on. Returns the
 * file written, if any.
 */
export function captureFhirResponse(
  requestPath: string,
  text: string,
  dir: string | undefined = fhirCaptureDir(),
): string | undefined {
  if (!dir || !isFhirJson(text)) return undefined;
  mkdirSync(dir, { recursive: true });
  const file = join(dir, captureFileName(requestPath, ++seq));
  writeFileSync(file, text);
  return file;
}

/** `fetch` whose FHIR answers are captured; the body is read once and handed back parsed. */
export async function fetchFhir(
  url: string,
  init: RequestInit = {},
  dir: string | undefined = fhirCaptureDir(),
): Promise<{ status: number; text: string; body: unknown; file: string | undefined }> {
  const res = await fetch(url, init);
  const text = await res.text();
  const file = captureFhirResponse(url, text, dir);
  let body: unknown = undefined;
  try {
    body = JSON.parse(text);
  } catch {
    body = text;
  }
  return { status: res.status, text, body, file };
}

const pending = new Set<Promise<void>>();

/**
 * Wraps the global fetch so that every test's own client is captured without
 * changing it: FHIR-typed answers (application/fhir+json) are copied to the
 * directory. Installed by test/support/fhir-capture-setup.ts only when the
 * directory is set. Returns a function that waits for the copies in flight.
 */
export function installFhirCapture(dir: string): () => Promise<void> {
  const original = globalThis.fetch;
  globalThis.fetch = async (input, init) => {
    const res = await original(input, init);
    if ((res.headers.get('content-type') ?? '').includes('fhir+json')) {
      const url = typeof input === 'string' ? input : input instanceof URL ? input.href : input.url;
      const copy = res
        .clone()
        .text()
        .then((text) => void captureFhirResponse(url, text, dir))
        .catch(() => undefined)
        .finally(() => pending.delete(copy));
      pending.add(copy);
    }
    return res;
  };
  return async () => {
    await Promise.all([...pending]);
  };
}
