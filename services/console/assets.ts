import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance } from 'fastify';

/**
 * Everything the browser loads comes from here, read once at start: the
 * console's own CSS and scripts and the two libraries from node_modules
 * (htmx for live fragments and forms, Chart.js for charts). No CDN, so the
 * console works on a hospital network with no way out, and the CSP can say
 * `'self'` only.
 */
const require = createRequire(import.meta.url);
const here = dirname(fileURLToPath(import.meta.url));

const ASSETS: Record<string, { file: string; type: string }> = {
  'htmx.min.js': { file: require.resolve('htmx.org/dist/htmx.min.js'), type: 'text/javascript' },
  // chart.js exports no subpaths: its UMD build sits beside the main entry (dist/).
  'chart.umd.js': {
    file: join(dirname(require.resolve('chart.js')), 'chart.umd.min.js'),
    type: 'text/javascript',
  },
  'console.css': { file: join(here, 'assets', 'console.css'), type: 'text/css' },
  'console.js': { file: join(here, 'assets', 'console.js'), type: 'text/javascript' },
  'charts.js': { file: join(here, 'assets', 'charts.js'), type: 'text/javascript' },
};

export function registerAssets(app: FastifyInstance): void {
  const loaded = new Map(
    Object.entries(ASSETS).map(([name, a]) => [name, { ...a, body: readFileSync(a.file) }]),
  );
  app.get<{ Params: { name: string } }>('/assets/:name', (req, reply) => {
    const a = loaded.get(req.params.name);
    if (!a) return reply.status(404).type('text/plain').send('no such asset');
    return reply.type(`${a.type}; charset=utf-8`).header('cache-control', 'public, max-age=300').send(a.body);
  });
}
