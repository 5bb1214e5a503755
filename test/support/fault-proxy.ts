import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { connect, createServer, type Socket } from 'node:net';
import { join } from 'node:path';
import { MllpFramer, mllpFrame } from '../../libs/hl7/mllp.js';
import { repoDir, startProcess, type RunningProcess } from './processes.js';
import { ackField } from './raw-mllp-client.js';

/**
 * A TCP proxy in front of an MLLP listener that can swallow an ACK: armed,
 * the next AA coming back (Kafka has acknowledged the message by then) is
 * not forwarded; `onAa` runs (a test kills the adapter there) and both
 * sides are closed, so the sender sees no answer and resends. No production
 * hook is needed to land a kill between Kafka's ack and the MLLP ACK.
 */
export interface AckKillProxy {
  port: number;
  arm(): void;
  readonly armed: boolean;
  /** ACKs swallowed so far. */
  readonly swallowed: number;
  close(): Promise<void>;
}

export async function ackKillProxy(upstreamPort: () => number, onAa: () => void): Promise<AckKillProxy> {
  let armed = false;
  let swallowed = 0;
  const sockets = new Set<Socket>();
  const server = createServer((client) => {
    const up = connect({ port: upstreamPort(), host: '127.0.0.1' });
    up.setNoDelay(true);
    client.setNoDelay(true);
    for (const s of [client, up]) sockets.add(s);
    const closeBoth = () => {
      client.destroy();
      up.destroy();
      sockets.delete(client);
      sockets.delete(up);
    };
    client.on('error', closeBoth).on('close', closeBoth);
    up.on('error', closeBoth).on('close', closeBoth);
    client.on('data', (d: Buffer) => up.write(d));
    const framer = new MllpFramer({ maxMessageBytes: 1_000_000 });
    up.on('data', (chunk: Buffer) => {
      for (const ev of framer.push(chunk)) {
        if (ev.kind !== 'frame') continue;
        if (armed && ackField(ev.bytes.toString('latin1'), 'MSA', 1) === 'AA') {
          armed = false;
          swallowed++;
          onAa();
          closeBoth();
          return;
        }
        client.write(mllpFrame(ev.bytes));
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const addr = server.address();
  return {
    port: typeof addr === 'object' && addr ? addr.port : 0,
    arm: () => {
      armed = true;
    },
    get armed() {
      return armed;
    },
    get swallowed() {
      return swallowed;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

const BUILD_DIR = join(repoDir, '.hub', 'fault-build');

/**
 * Compiles libs and services once (tsc, ~15 s) so that a service restarted
 * hundreds of times starts as production does, from JavaScript, without
 * tsx transforming every module on each start. Null when that fails (the
 * caller falls back to tsx).
 */
export function compiledServices(): string | null {
  if (process.env['HUB_FAULT_COMPILED'] === '0') return null;
  spawnSync(
    process.execPath,
    [
      join(repoDir, 'node_modules', 'typescript', 'bin', 'tsc'),
      '-p',
      'tsconfig.build.json',
      '--outDir',
      BUILD_DIR,
    ],
    {
      cwd: repoDir,
      stdio: 'ignore',
    },
  );
  return existsSync(join(BUILD_DIR, 'services', 'adapter-hl7', 'main.js')) ? BUILD_DIR : null;
}

/**
 * A service's main as its own process: compiled JavaScript from `build` when
 * given (tsx's loader then has nothing to transform), else the TypeScript.
 */
export function startService(
  service: string,
  env: Record<string, string>,
  build: string | null,
): RunningProcess {
  return startProcess(
    [build ? join(build, 'services', service, 'main.js') : join('services', service, 'main.ts')],
    env,
  );
}
