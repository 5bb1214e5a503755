import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

// scripts/node-lts.sh decides with shell arithmetic whether the machine's Node is supported; these
// tests keep that decision equal to package.json's engines, with a stand-in `node` on PATH (no
// download happens for a supported version, and --check never downloads).
const script = join(import.meta.dirname, 'node-lts.sh');
const bins = mkdtempSync(join(tmpdir(), 'node-lts-'));
afterAll(() => rmSync(bins, { recursive: true, force: true }));

function withNode(version: string): NodeJS.ProcessEnv {
  const dir = mkdtempSync(join(bins, 'v'));
  writeFileSync(join(dir, 'node'), `#!/bin/sh\necho v${version}\n`);
  chmodSync(join(dir, 'node'), 0o755);
  return { PATH: `${dir}:/usr/bin:/bin`, HUB_NODE_LTS: '', HUB_CACHE_DIR: join(bins, 'cache') };
}

describe('scripts/node-lts.sh', () => {
  it('given package.json, then the script states the same engines range', () => {
    const pkg = JSON.parse(readFileSync(join(import.meta.dirname, '..', 'package.json'), 'utf8')) as {
      engines: { node: string };
    };
    const stated = /^ENGINES='([^']+)'/m.exec(readFileSync(script, 'utf8'))?.[1];
    expect(stated).toBe(pkg.engines.node);
  });

  it('given Node versions around the engines bounds, then --check accepts exactly ^22.22.0 || >=24.6.0', () => {
    const versions = [
      '20.20.2',
      '22.17.1',
      '22.18.0',
      '22.21.1',
      '22.22.0',
      '22.22.3',
      '23.11.0',
      '24.1.0',
      '24.2.0',
      '24.5.0',
      '24.6.0',
      '24.22.3',
      '26.1.0',
    ];
    const accepted = versions.filter(
      (v) => spawnSync('sh', [script, '--check'], { env: withNode(v), stdio: 'ignore' }).status === 0,
    );
    expect(accepted).toEqual(['22.22.0', '22.22.3', '24.6.0', '24.22.3', '26.1.0']);
  });

  it('given a supported Node on PATH, when a command is run through it, then it runs as is and learns the version', () => {
    const out = execFileSync('sh', [script, 'sh', '-c', 'echo "$HUB_NODE_LTS $0"', 'ran'], {
      env: { ...withNode('24.22.3'), HUB_NODE_LTS: 'set-by-caller' },
      encoding: 'utf8',
    });
    expect(out.trim()).toBe('v24.22.3 ran');
  });
});
