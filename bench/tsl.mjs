// node bench/tsl.mjs (after npm run build): XMLDSig of the real TSLs — zeta-provision's parser + verifier
// (src/process/tsl/xml-parser.ts, c14n.ts, xmldsig.ts) vs `xmlsec1 --verify` (libxml2 + libxmlsec1).
// Each side runs as its own process under GNU time, interleaved run by run so load drift hits both;
// ours also reports the time of parse + verify inside the process (without Node's start-up).
// Target (issue 17): in-process parse + verify ≤ 2× xmlsec1's whole process. Medians of BENCH_RUNS.
// Writes bench/results/tsl.json. Not a timed test.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { median, timed } from './lib.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const dist = path.join(root, 'dist');

if (process.argv[2] === '--child') {
  const file = process.argv[3];
  const t0 = performance.now();
  const { parseTslXml, NS_DSIG } = await import(pathToFileURL(path.join(dist, 'process', 'tsl', 'xml.js')).href);
  const { verifyXmlSignature } = await import(pathToFileURL(path.join(dist, 'process', 'tsl', 'xmldsig.js')).href);
  const t1 = performance.now();
  const c1 = process.cpuUsage();
  const tsl = parseTslXml(readFileSync(file), file);
  const t2 = performance.now();
  const r = verifyXmlSignature(tsl.doc, tsl.doc.getElementsByTagNameNS(NS_DSIG, 'Signature').item(0));
  const t3 = performance.now();
  const cpu = process.cpuUsage(c1);
  process.stdout.write(JSON.stringify({ ok: r.ok, loadMs: t1 - t0, parseMs: t2 - t1, verifyMs: t3 - t2, cpuMs: (cpu.user + cpu.system) / 1000 }) + '\n');
  process.exit(0);
}

const runs = Number(process.env.BENCH_RUNS ?? 9);
const realworld = process.env.ZETA_REALWORLD_DIR ?? path.resolve(root, '..', 'shared', 'realworld');
const files = ['gematik-test/ECC-RSA_TSL-test.xml', 'gematik-popp/ECC-RSA_TSL-test.xml', 'gematik-popp/TSL-valid-ECC-rise-cvc.xml']
  .map((f) => path.join(realworld, f))
  .filter(existsSync);
if (files.length === 0) throw new Error(`no real TSL under ${realworld} (set ZETA_REALWORLD_DIR)`);
if (!existsSync(path.join(dist, 'process', 'tsl', 'xmldsig.js'))) throw new Error('dist/ is missing: npm run build first');
for (const [p, pkg] of [
  ['xmlsec1', 'xmlsec1'],
  ['/usr/bin/time', 'time'],
]) {
  if (spawnSync('sh', ['-c', `command -v ${p}`]).status !== 0) throw new Error(`${p} is needed: apt-get install ${pkg}`);
}

const measure = (cmd, args) => timed(cmd, args, { check: () => true });
const r1 = (x) => +x.toFixed(1);

const results = {
  date: new Date().toISOString(),
  node: process.version,
  cpus: os.cpus().length,
  loadavg: readFileSync('/proc/loadavg', 'utf8').trim(),
  runs,
  files: [],
};
for (const file of files) {
  const ours = [];
  const peer = [];
  for (let i = 0; i < runs; i++) {
    const o = measure(process.execPath, [fileURLToPath(import.meta.url), '--child', file]);
    const inner = JSON.parse(o.stdout);
    ours.push({ ...o, ...inner, processCpuMs: o.cpuMs, cpuMs: inner.cpuMs });
    peer.push(measure('xmlsec1', ['--verify', '--insecure', '--enabled-key-data', 'x509', '--id-attr:Id', 'SignedProperties', file]));
  }
  const okOurs = ours[0].ok;
  const okPeer = peer[0].status === 0;
  const inProcess = median(ours.map((s) => s.parseMs + s.verifyMs));
  const entry = {
    file: path.relative(realworld, file),
    bytes: readFileSync(file).length,
    verdict: { ours: okOurs ? 'valid' : 'invalid', xmlsec1: okPeer ? 'valid' : 'invalid' },
    ours: {
      processMs: r1(median(ours.map((s) => s.ms))),
      parseMs: r1(median(ours.map((s) => s.parseMs))),
      verifyMs: r1(median(ours.map((s) => s.verifyMs))),
      parsePlusVerifyMs: r1(inProcess),
      parsePlusVerifyCpuMs: r1(median(ours.map((s) => s.cpuMs))),
      processCpuMs: r1(median(ours.map((s) => s.processCpuMs))),
      peakRssMiB: r1(Math.max(...ours.map((s) => s.rssKiB)) / 1024),
    },
    xmlsec1: {
      processMs: r1(median(peer.map((s) => s.ms))),
      processCpuMs: r1(median(peer.map((s) => s.cpuMs))),
      peakRssMiB: r1(Math.max(...peer.map((s) => s.rssKiB)) / 1024),
    },
  };
  entry.ratioInProcess = +(entry.ours.parsePlusVerifyMs / entry.xmlsec1.processMs).toFixed(2);
  entry.ratioWholeProcess = +(entry.ours.processMs / entry.xmlsec1.processMs).toFixed(2);
  // CPU time is steadier than wall time on a loaded machine (GNU time's %U+%S has 10 ms resolution).
  entry.cpuRatioInProcess = +(entry.ours.parsePlusVerifyCpuMs / Math.max(entry.xmlsec1.processCpuMs, 10)).toFixed(2);
  results.files.push(entry);
  console.log(
    `${entry.file} (${(entry.bytes / 1024).toFixed(0)} KiB, ${entry.verdict.ours}/${entry.verdict.xmlsec1}): ours parse ${entry.ours.parseMs} + verify ${entry.ours.verifyMs} ms ` +
      `(process ${entry.ours.processMs} ms, ${entry.ours.peakRssMiB} MiB), xmlsec1 ${entry.xmlsec1.processMs} ms (${entry.xmlsec1.peakRssMiB} MiB); ` +
      `ratio in-process ${entry.ratioInProcess}×, whole process ${entry.ratioWholeProcess}×; CPU ours ${entry.ours.parsePlusVerifyCpuMs} ms in-process / xmlsec1 ${entry.xmlsec1.processCpuMs} ms`,
  );
  if (okOurs !== okPeer) throw new Error(`verdicts differ on ${file}`);
}
console.log(`load average at start: ${results.loadavg}`);
mkdirSync(path.join(root, 'bench', 'results'), { recursive: true });
writeFileSync(path.join(root, 'bench', 'results', 'tsl.json'), JSON.stringify(results, null, 2) + '\n');
console.log('wrote bench/results/tsl.json');
