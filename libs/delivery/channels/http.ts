import type { Outcome } from '../model.js';

/** How much of a refusing receiver's body is kept with the dead letter. */
const DETAIL_CHARS = 500;

/**
 * What an HTTP answer means for a delivery: 2xx delivered; 408, 429 and
 * 5xx are the receiver's trouble, not the event's (retried); any other
 * status refuses this event (dead-lettered with the receiver's words).
 */
export async function outcomeOfResponse(res: Response): Promise<Outcome> {
  if (res.status >= 200 && res.status < 300) {
    // Drained so that the connection goes back to the pool.
    await res.arrayBuffer().catch(() => undefined);
    return { kind: 'delivered', status: String(res.status) };
  }
  const body = await res.text().catch(() => '');
  if (res.status === 408 || res.status === 429 || res.status >= 500) {
    return { kind: 'unreachable', reason: `http-${res.status}` };
  }
  return {
    kind: 'rejected',
    reason: `http-${res.status}`,
    detail: `http ${res.status}: ${body.slice(0, DETAIL_CHARS)}`,
  };
}

/** A network failure as a code: the cause's errno (ECONNREFUSED, ...) or the abort; never a URL or a body. */
export function networkReason(err: unknown): string {
  if (err instanceof Error && (err.name === 'TimeoutError' || err.name === 'AbortError')) return 'timeout';
  const cause = err instanceof Error ? (err.cause as { code?: unknown } | undefined) : undefined;
  const code = typeof cause?.code === 'string' ? cause.code : 'network-error';
  return code.toLowerCase().replaceAll('_', '-');
}

/** One POST, classified; never throws for what the receiver or the network did. */
export async function post(
  endpoint: string,
  body: string,
  headers: Record<string, string>,
  timeoutMs: number,
): Promise<Outcome> {
  let res: Response;
  try {
    res = await fetch(endpoint, {
      method: 'POST',
      body,
      headers,
      redirect: 'manual',
      signal: AbortSignal.timeout(timeoutMs),
    });
  } catch (err) {
    return { kind: 'unreachable', reason: networkReason(err) };
  }
  return outcomeOfResponse(res);
}
