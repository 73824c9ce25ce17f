// node bench/imports.mjs (after npm run build): what importing each module costs, each in a fresh
// process (median of BENCH_RUNS), beside `node -e 0`. The numbers behind the README's start-up notes:
// which dependencies are worth loading lazily. Writes bench/results/imports.json. Not a timed test.
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const runs = Number(process.env.BENCH_RUNS ?? 5);
const dist = (p) => pathToFileURL(path.join(root, 'dist', p)).href;
const MODULES = [
  ['commander', 'commander'],
  ['yaml', 'yaml'],
  ['undici', 'undici'],
  ['@kubernetes/client-node (whole)', '@kubernetes/client-node'],
  ['@kubernetes/client-node/dist/config.js (kubeconfig only)', '@kubernetes/client-node/dist/config.js'],
  ['dist/cli/index.js', dist('cli/index.js')],
  ['dist/config/index.js', dist('config/index.js')],
  ['dist/pipeline.js', dist('pipeline.js')],
  ['dist/verify/index.js', dist('verify/index.js')],
  ['dist/process/derive.js', dist('process/derive.js')],
  ['dist/process/tsl/index.js', dist('process/tsl/index.js')],
  ['dist/zeta-provision.mjs (bundle entry)', dist('zeta-provision.mjs')],
];

function time(code) {
  const samples = [];
  for (let i = 0; i < runs; i++) {
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', code], { cwd: root, encoding: 'utf8' });
    if (r.status !== 0) throw new Error(r.stderr);
    samples.push(Number(r.stdout.trim()));
  }
  return samples.sort((a, b) => a - b)[Math.floor(samples.length / 2)];
}

// The bundle's larger chunks (each lazily imported by one stage), named by what dominates them.
import { readdirSync, statSync } from 'node:fs';
for (const f of readdirSync(path.join(root, 'dist', 'chunks')).filter((f) => f.endsWith('.mjs'))) {
  const size = statSync(path.join(root, 'dist', 'chunks', f)).size;
  if (size > 100_000) MODULES.push([`dist/chunks/${f} (${(size / 1024).toFixed(0)} KiB)`, dist(`chunks/${f}`)]);
}

const results = { date: new Date().toISOString(), node: process.version, loadavg: readFileSync('/proc/loadavg', 'utf8').trim(), runs, modules: [] };
for (const [name, spec] of MODULES) {
  const ms = time(`const t = performance.now(); await import(${JSON.stringify(spec)}); process.stdout.write(String(performance.now() - t));`);
  results.modules.push({ name, importMs: +ms.toFixed(1) });
  console.log(`${name.padEnd(60)} ${ms.toFixed(1).padStart(7)} ms`);
}
console.log(`load average at start: ${results.loadavg}`);
mkdirSync(path.join(root, 'bench', 'results'), { recursive: true });
writeFileSync(path.join(root, 'bench', 'results', 'imports.json'), JSON.stringify(results, null, 2) + '\n');
