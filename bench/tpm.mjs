// TPM truststore from the real TrustedTpm.cab: zeta-provision's TPM processor (src/process/tpm.ts:
// cabinet reader + certificate sniffing + PKCS#12 writer, in one process) vs gematik's approach
// (cabextract, one `openssl x509` per certificate file, `openssl pkcs12 -export`).
// Usage: npm run build && node bench/tpm.mjs   (env: ZETA_REALWORLD_DIR, BENCH_RUNS, BENCH_SHELL_RUNS)
// Reports median wall times and peak RSS (GNU time %M), and the memory the cabinet reader needs beyond
// the cabinet itself. Writes bench/results/tpm.json. Not a timed test.
import { existsSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { median, timed } from './lib.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const realworld = process.env.ZETA_REALWORLD_DIR ?? path.resolve(root, '..', 'shared', 'realworld');
const cab = path.join(realworld, 'gematik-test', 'TrustedTpm.cab');
const runs = Number(process.env.BENCH_RUNS ?? 7);
const shellRuns = Number(process.env.BENCH_SHELL_RUNS ?? 3);
if (!existsSync(cab)) throw new Error(`${cab} is missing (set ZETA_REALWORLD_DIR)`);
if (!existsSync(path.join(root, 'dist', 'process', 'tpm.js'))) throw new Error('dist/ is missing: npm run build first');

/** Run a command under GNU time; returns wall ms, peak RSS KiB and stdout. */
const measure = (cmd, args, opts = {}) => timed(cmd, args, opts);

function series(name, n, fn) {
  const samples = [];
  for (let i = 0; i < n; i++) samples.push(fn());
  return { name, runs: n, wallMs: median(samples.map((s) => s.ms)), peakRssMiB: Math.max(...samples.map((s) => s.rssKiB)) / 1024, last: samples.at(-1) };
}

const work = mkdtempSync(path.join(os.tmpdir(), 'zp-bench-tpm-'));
try {
  // One child per measurement so peak RSS is that of the work alone. Modes: "baseline" loads the modules
  // and reads the cabinet; "cab" also streams every member out of it; "tpm" builds and writes the store.
  const child = path.join(work, 'child.mjs');
  writeFileSync(
    child,
    `
import { readFileSync, writeFileSync } from 'node:fs';
const { readCabinet } = await import(${JSON.stringify(path.join(root, 'dist', 'cab', 'index.js'))});
const { buildTpmTrustSet, tpmTrustStoreFiles } = await import(${JSON.stringify(path.join(root, 'dist', 'process', 'tpm.js'))});
const [mode, cabFile, out] = process.argv.slice(2);
const bytes = readFileSync(cabFile);
const t0 = performance.now();
if (mode === 'cab') {
  // Three passes: if the reader kept what it yielded, RSS would grow with every pass.
  const rss = [];
  let n = 0, size = 0, peakArrayBuffers = 0;
  const start = process.memoryUsage();
  for (let pass = 0; pass < 3; pass++) {
    for (const e of readCabinet(bytes)) { n++; size += e.data.length; if (n % 50 === 0) peakArrayBuffers = Math.max(peakArrayBuffers, process.memoryUsage().arrayBuffers); }
    rss.push(+(process.memoryUsage().rss / 1048576).toFixed(1));
  }
  const mib = (x) => +(x / 1048576).toFixed(1);
  console.log(JSON.stringify({ files: n / 3, bytes: size / 3, msPerPass: (performance.now() - t0) / 3, rssStartMiB: mib(start.rss), rssAfterEachPassMiB: rss, peakArrayBuffersBeyondStartMiB: mib(peakArrayBuffers - start.arrayBuffers) }));
}
if (mode === 'tpm') {
  const set = buildTpmTrustSet(bytes);
  for (const f of tpmTrustStoreFiles(set, { password: 'no_secret_for_trust_only' })) writeFileSync(out + '/' + f.name, f.bytes);
  const { rejected, ignored, ...counts } = set.report;
  console.log(JSON.stringify({ ...counts, rejected: rejected.length, ignored: ignored.length, ms: performance.now() - t0 }));
}
if (mode === 'baseline') console.log(JSON.stringify({ bytes: bytes.length }));
`,
  );
  const ours = series('zeta-provision TPM processor (node, one process)', runs, () => {
    const out = mkdtempSync(path.join(work, 'ours-'));
    return measure(process.execPath, [child, 'tpm', cab, out]);
  });
  const baseline = series('node + modules + cabinet read (baseline)', runs, () => measure(process.execPath, [child, 'baseline', cab]));
  const reader = series('… + every member streamed out of the cabinet, 3 passes', runs, () => measure(process.execPath, [child, 'cab', cab]));

  // gematik's approach, re-stated: extract, convert each certificate file with its own openssl process
  // (PEM files are appended as they are, as gematik does), one pkcs12 -export. Its extension filter is
  // case-sensitive (so .CER files are skipped), which we keep: that is the work it actually does.
  const script = path.join(work, 'gematik.sh');
  writeFileSync(
    script,
    `set -u
out=$(mktemp -d -p ${work}); cabdir=$out/cab; mkdir -p $cabdir
cabextract -q -d $cabdir ${JSON.stringify(cab)} 2>/dev/null
pem=$out/all.pem; : > $pem
while IFS= read -r f; do cat "$f" >> $pem; done < <(grep -RIl "BEGIN CERTIFICATE" $cabdir | grep -E '\\.(der|cer|crt)$')
while IFS= read -r f; do openssl x509 -inform DER -in "$f" >> $pem 2>/dev/null; done < <(grep -RL "BEGIN CERTIFICATE" $cabdir | grep -E '\\.(der|cer|crt)$')
openssl pkcs12 -export -nokeys -in $pem -passout pass:no_secret_for_trust_only -out $out/tpm-trust-roots.p12
openssl pkcs12 -in $out/tpm-trust-roots.p12 -nokeys -passin pass:no_secret_for_trust_only 2>/dev/null | grep -c "BEGIN CERTIFICATE"
`,
  );
  const shell = series('gematik approach (cabextract, openssl x509 per file, pkcs12 -export)', shellRuns, () => measure('bash', [script]));

  const results = {
    date: new Date().toISOString(),
    node: process.version,
    cores: os.cpus().length,
    loadAverage: os.loadavg(),
    cabinet: { file: path.relative(root, cab), bytes: statSync(cab).size },
    ours: { wallMs: ours.wallMs, peakRssMiB: ours.peakRssMiB, runs: ours.runs, inProcess: JSON.parse(ours.last.stdout) },
    gematik: { wallMs: shell.wallMs, peakRssMiB: shell.peakRssMiB, runs: shell.runs, certificatesInStore: Number(shell.last.stdout.trim()) },
    speedup: shell.wallMs / ours.wallMs,
    cabReader: {
      baselinePeakRssMiB: baseline.peakRssMiB,
      readerPeakRssMiB: reader.peakRssMiB,
      beyondBaselineMiB: reader.peakRssMiB - baseline.peakRssMiB,
      members: JSON.parse(reader.last.stdout),
    },
  };
  mkdirSync(path.join(root, 'bench', 'results'), { recursive: true });
  writeFileSync(path.join(root, 'bench', 'results', 'tpm.json'), JSON.stringify(results, null, 2) + '\n');
  const line = (s) => `  ${s.name.padEnd(72)} ${s.wallMs.toFixed(0).padStart(7)} ms  ${s.peakRssMiB.toFixed(1).padStart(6)} MiB  (median of ${s.runs})`;
  console.log(
    `TPM truststore from ${results.cabinet.file} (${results.cabinet.bytes} bytes), ${results.cores} cores, load ${results.loadAverage.map((l) => l.toFixed(1)).join(' ')}:`,
  );
  for (const s of [ours, shell, baseline, reader]) console.log(line(s));
  console.log(`  ours: ${JSON.stringify(results.ours.inProcess)}`);
  console.log(`  gematik's store holds ${results.gematik.certificatesInStore} certificates; speed-up ${results.speedup.toFixed(1)}×`);
  console.log(
    `  cabinet reader needs ${results.cabReader.beyondBaselineMiB.toFixed(1)} MiB beyond loading the cabinet (${results.cabReader.members.files} members, ${results.cabReader.members.bytes} bytes)`,
  );
  console.log('results: bench/results/tpm.json');
} finally {
  rmSync(work, { recursive: true, force: true });
}
