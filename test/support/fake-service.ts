/**
 * A stand-in for a hub service in supervisor tests, run as its own process
 * (`node --import tsx test/support/fake-service.ts`). It serves /health and
 * /ready on PORT and logs JSON lines like the services do.
 *
 * - READY=0: /ready answers 503 with a failing `kafka` check.
 * - EXIT_ON_START=<code>: logs an error line and exits at once with that code.
 * - EXIT_ONCE_MARKER=<file>: on the first start (the file is absent) creates
 *   the file, logs an error and exits with code 1; later starts serve.
 * - GET /exit?code=<n>: logs an error line (with a field that must not be
 *   reported) and exits with that code.
 */
import { existsSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';

const port = Number(process.env['PORT']);
const log = (level: number, fields: Record<string, unknown>, msg: string) =>
  process.stdout.write(`${JSON.stringify({ level, time: new Date().toISOString(), ...fields, msg })}\n`);

function crash(code: number, why: string): never {
  // `patient` stands for any field that may hold data: a supervisor must not print it.
  log(50, { code: 'HUB_TEST_CRASH', patient: 'CANARY-PHI-7731' }, why);
  process.exit(code);
}

const onStart = process.env['EXIT_ON_START'];
if (onStart !== undefined) crash(Number(onStart), 'exiting at start on purpose');
const marker = process.env['EXIT_ONCE_MARKER'];
if (marker && !existsSync(marker)) {
  writeFileSync(marker, String(process.pid));
  crash(1, 'first start fails on purpose');
}

const ready = process.env['READY'] !== '0';
const server = createServer((req, res) => {
  const url = new URL(req.url ?? '/', 'http://x');
  if (url.pathname === '/exit') {
    res.end('bye');
    crash(Number(url.searchParams.get('code') ?? '1'), 'told to exit');
  }
  if (url.pathname === '/health') {
    res.end(JSON.stringify({ status: 'ok', pid: process.pid }));
    return;
  }
  if (url.pathname === '/ready') {
    res.statusCode = ready ? 200 : 503;
    res.setHeader('content-type', 'application/json');
    const checks = ready
      ? { kafka: { ok: true } }
      : { kafka: { ok: false, detail: 'HUB_KAFKA_UNAVAILABLE' }, postgres: { ok: true } };
    res.end(JSON.stringify({ status: ready ? 'ready' : 'not ready', checks, pid: process.pid }));
    return;
  }
  res.statusCode = 404;
  res.end();
});
server.listen(port, '127.0.0.1', () => log(30, { port }, 'listening'));
const stop = () => server.close(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
