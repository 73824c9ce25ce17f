// node bench/startup.mjs [BASE_DIR] (after npm run build): whole-process times of the shipped CLI for the
// start-up-bound commands, interleaved run by run with the peers — `node -e 0`, `osslsigncode verify` —
// and, when BASE_DIR is given (another checkout with its own npm ci + build), with that build's bin/,
// so a change is measured as an A/B under the same load. Medians of BENCH_RUNS; peak RSS by GNU time.
// Writes bench/results/startup.json. Not a timed test.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { median, timed } from './lib.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const base = process.argv[2] ? path.resolve(process.argv[2]) : undefined;
const runs = Number(process.env.BENCH_RUNS ?? 9);
const realworld = process.env.ZETA_REALWORLD_DIR ?? path.resolve(root, '..', 'shared', 'realworld');
const cab = path.join(realworld, 'gematik-popp', 'TrustedTpm.cab');
if (!existsSync(cab)) throw new Error(`${cab} is missing (set ZETA_REALWORLD_DIR)`);

const measure = (cmd, args, okStatus = 0) => timed(cmd, args, { check: (r) => r.status === okStatus });

const work = mkdtempSync(path.join(os.tmpdir(), 'zp-bench-startup-'));
try {
  const payload = path.join(work, 'payload');
  mkdirSync(payload);
  writeFileSync(path.join(payload, 'TrustedTpm.cab'), readFileSync(cab));
  const config = path.join(work, 'verify.yaml');
  writeFileSync(
    config,
    `source: dir:${payload}\nimage:\n  signature: off\nverify:\n  - files: [TrustedTpm.cab]\n    kind: authenticode\n    trust: [microsoft]\n`,
  );
  const rootsPem = path.join(work, 'roots.pem');
  writeFileSync(
    rootsPem,
    ['MicRooCerAut_2010-06-23.crt', 'MicrosoftRootCertificateAuthority2011.cer']
      .map((f) => execFileSync('openssl', ['x509', '-inform', 'DER', '-in', path.join(root, 'config', 'trust', 'microsoft', f)]).toString())
      .join(''),
  );

  const sides = [['this build', root], ...(base ? [['base build', base]] : [])];
  const cases = {
    'node -e 0': () => measure(process.execPath, ['-e', '0']),
    'osslsigncode verify TrustedTpm.cab': () => measure('osslsigncode', ['verify', '-in', cab, '-CAfile', rootsPem, '-TSA-CAfile', rootsPem, '-ignore-crl']),
  };
  for (const [label, dir] of sides) {
    const bin = path.join(dir, 'bin', 'zeta-provision');
    cases[`${label}: version`] = () => measure(process.execPath, [bin, 'version']);
    cases[`${label}: verify (payload with TrustedTpm.cab)`] = () => measure(process.execPath, [bin, 'verify', '--config', config, '--log-format', 'json']);
  }
  const samples = Object.fromEntries(Object.keys(cases).map((k) => [k, []]));
  for (let i = 0; i < runs; i++) for (const [k, fn] of Object.entries(cases)) samples[k].push(fn());
  const results = { date: new Date().toISOString(), node: process.version, loadavg: readFileSync('/proc/loadavg', 'utf8').trim(), runs, base, series: {} };
  for (const [k, s] of Object.entries(samples)) {
    results.series[k] = { wallMs: Math.round(median(s.map((x) => x.ms))), peakRssMiB: +(Math.max(...s.map((x) => x.rssKiB)) / 1024).toFixed(1) };
    console.log(`${k.padEnd(52)} ${String(results.series[k].wallMs).padStart(6)} ms  ${results.series[k].peakRssMiB.toFixed(1).padStart(6)} MiB`);
  }
  const s = results.series;
  for (const [label] of sides) {
    const v = s[`${label}: version`].wallMs - s['node -e 0'].wallMs;
    const r = s[`${label}: verify (payload with TrustedTpm.cab)`].wallMs / s['osslsigncode verify TrustedTpm.cab'].wallMs;
    results[label] = { versionAboveNodeMs: v, verifyVsOsslsigncode: +r.toFixed(2) };
    console.log(`${label}: version ${v} ms above node -e 0; verify ${r.toFixed(2)}× osslsigncode`);
  }
  console.log(`load average at start: ${results.loadavg}`);
  mkdirSync(path.join(root, 'bench', 'results'), { recursive: true });
  writeFileSync(path.join(root, 'bench', 'results', 'startup.json'), JSON.stringify(results, null, 2) + '\n');
} finally {
  rmSync(work, { recursive: true, force: true });
}
