// npm run bench:verify — signature verification against the peer programs, in the same run:
//   1. a detached CMS signature over a 1 GiB file: zeta-provision's verifier vs `openssl cms -verify -binary`
//      (target: ≤ 1.2× openssl's wall time, flat memory: peak RSS must not grow with the file);
//   2. the real TrustedTpm.cab (Authenticode + RFC 3161 timestamp): ours vs `osslsigncode verify`.
// Each side runs as its own process under GNU time (wall ms, peak RSS); medians of BENCH_RUNS runs.
// Writes bench/results/verify.json. Not a timed test. BENCH_SIZE_MIB changes the file size.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, openSync, closeSync, writeSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { randomFillSync } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { median, timed } from './lib.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const dist = path.join(root, 'dist');

// Child mode: one verification in this process, so its wall time and RSS are measured like openssl's.
if (process.argv[2] === '--child') {
  const [, , , kind, ...args] = process.argv;
  const { loadCertificates } = await import(pathToFileURL(path.join(dist, 'pki', 'certs.js')).href);
  if (kind === 'cms') {
    const [content, sig, ca] = args;
    const { verifyCmsDetached } = await import(pathToFileURL(path.join(dist, 'verify', 'cms.js')).href);
    const trust = { anchors: await loadCertificates([ca]), intermediates: [] };
    const t0 = performance.now();
    await verifyCmsDetached(content, readFileSync(sig), trust, 'big.bin');
    process.stdout.write(`${performance.now() - t0}\n`);
  } else {
    const [cab, rootsDir] = args;
    const { verifyAuthenticodeCab } = await import(pathToFileURL(path.join(dist, 'verify', 'authenticode.js')).href);
    const trust = { anchors: await loadCertificates([rootsDir]), intermediates: [] };
    const t0 = performance.now();
    await verifyAuthenticodeCab(cab, trust, 'TrustedTpm.cab');
    process.stdout.write(`${performance.now() - t0}\n`);
  }
  process.exit(0);
}

const runs = Number(process.env.BENCH_RUNS ?? 5);
const sizeMiB = Number(process.env.BENCH_SIZE_MIB ?? 1024);
const realworld = process.env.ZETA_REALWORLD_DIR ?? path.resolve(root, '..', 'shared', 'realworld');

/** Run a command under GNU time; wall ms and peak RSS (KiB). */
function measure(cmd, args, check = (r) => r.status === 0) {
  const { ms, rssKiB, stdout } = timed(cmd, args, { check });
  // Our child prints the time of the verification call itself (without Node start-up and module load).
  const callMs = Number(stdout.trim().split('\n').pop());
  return { ms, rssKiB, ...(Number.isFinite(callMs) && stdout.trim() ? { callMs } : {}) };
}

/** Alternate the two sides run by run, so drift in machine load hits both alike. */
function compare(name, ours, peer) {
  const a = [];
  const b = [];
  for (let i = 0; i < runs; i++) {
    a.push(ours());
    b.push(peer());
  }
  const summary = (s) => ({
    wallMs: Math.round(median(s.map((x) => x.ms))),
    ...(s[0].callMs !== undefined ? { verifyCallMs: Math.round(median(s.map((x) => x.callMs))) } : {}),
    peakRssMiB: +(Math.max(...s.map((x) => x.rssKiB)) / 1024).toFixed(1),
  });
  const result = { name, runs, ours: summary(a), peer: summary(b) };
  result.ratio = +(result.ours.wallMs / result.peer.wallMs).toFixed(2);
  if (result.ours.verifyCallMs !== undefined) result.callRatio = +(result.ours.verifyCallMs / result.peer.wallMs).toFixed(2);
  const call = result.ours.verifyCallMs === undefined ? '' : ` (${result.ours.verifyCallMs} ms in the verify call)`;
  console.log(
    `${name}: ours ${result.ours.wallMs} ms process${call} / ${result.ours.peakRssMiB} MiB, ` +
      `peer ${result.peer.wallMs} ms / ${result.peer.peakRssMiB} MiB, ratio ${result.ratio}${result.callRatio === undefined ? '' : ` (call ${result.callRatio})`}`,
  );
  return result;
}

for (const [p, pkg] of [
  ['openssl', 'openssl'],
  ['osslsigncode', 'osslsigncode'],
  ['/usr/bin/time', 'time'],
]) {
  if (spawnSync('sh', ['-c', `command -v ${p}`]).status !== 0) throw new Error(`${p} is needed: apt-get install ${pkg}`);
}
if (!existsSync(path.join(dist, 'verify', 'cms.js'))) throw new Error('dist/ is missing: npm run build first');

const work = mkdtempSync(path.join(os.tmpdir(), 'zp-bench-verify-'));
const results = {
  date: new Date().toISOString(),
  node: process.version,
  cpus: os.cpus().length,
  loadavg: readFileSync('/proc/loadavg', 'utf8').trim(),
  openssl: execFileSync('openssl', ['version']).toString().trim(),
  benchmarks: [],
};
try {
  // --- 1. detached CMS over a large file ------------------------------------------------------
  const makeFile = (file, mib) => {
    const fd = openSync(file, 'w');
    const chunk = Buffer.alloc(8 << 20);
    for (let i = 0; i < Math.ceil(mib / 8); i++) writeSync(fd, randomFillSync(chunk));
    closeSync(fd);
  };
  const big = path.join(work, 'big.bin');
  const small = path.join(work, 'small.bin');
  makeFile(big, sizeMiB);
  makeFile(small, 16);
  const ossl = (args) => execFileSync('openssl', args, { cwd: work, stdio: ['ignore', 'ignore', 'pipe'] });
  ossl([
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:P-256',
    '-nodes',
    '-days',
    '30',
    '-subj',
    '/CN=Bench Root',
    '-addext',
    'basicConstraints=critical,CA:true',
    '-addext',
    'keyUsage=critical,keyCertSign',
    '-keyout',
    'root.key',
    '-out',
    'root.pem',
  ]);
  ossl(['req', '-new', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=Bench Signer', '-keyout', 'signer.key', '-out', 'signer.csr']);
  writeFileSync(path.join(work, 'ext.cnf'), 'basicConstraints=CA:false\nkeyUsage=critical,digitalSignature\n');
  ossl([
    'x509',
    '-req',
    '-in',
    'signer.csr',
    '-CA',
    'root.pem',
    '-CAkey',
    'root.key',
    '-set_serial',
    '2',
    '-days',
    '30',
    '-extfile',
    'ext.cnf',
    '-out',
    'signer.pem',
  ]);
  ossl(['cms', '-sign', '-binary', '-md', 'sha256', '-in', big, '-signer', 'signer.pem', '-inkey', 'signer.key', '-outform', 'DER', '-out', 'big.p7s']);
  ossl(['cms', '-sign', '-binary', '-md', 'sha256', '-in', small, '-signer', 'signer.pem', '-inkey', 'signer.key', '-outform', 'DER', '-out', 'small.p7s']);
  const sig = path.join(work, 'big.p7s');
  const ca = path.join(work, 'root.pem');
  // Flat memory: the same verification over 16 MiB, to compare peak RSS with the large file's.
  const smallRss =
    Math.max(
      ...Array.from(
        { length: runs },
        () => measure(process.execPath, [fileURLToPath(import.meta.url), '--child', 'cms', small, path.join(work, 'small.p7s'), ca]).rssKiB,
      ),
    ) / 1024;
  // Warm the page cache once so neither side pays the first read.
  execFileSync('cat', [big], { stdio: ['ignore', 'ignore', 'ignore'] });
  const cms = compare(
    `detached CMS over ${sizeMiB} MiB (RSA-2048, SHA-256)`,
    () => measure(process.execPath, [fileURLToPath(import.meta.url), '--child', 'cms', big, sig, ca]),
    () =>
      measure('openssl', ['cms', '-verify', '-binary', '-inform', 'DER', '-in', sig, '-content', big, '-CAfile', ca, '-purpose', 'any', '-out', '/dev/null']),
  );
  cms.fileMiB = sizeMiB;
  cms.targetRatio = 1.2;
  cms.oursPeakRssMiBAt16MiB = +smallRss.toFixed(1);
  console.log(`  peak RSS of ours: ${cms.oursPeakRssMiBAt16MiB} MiB at 16 MiB, ${cms.ours.peakRssMiB} MiB at ${sizeMiB} MiB`);
  results.benchmarks.push(cms);
  rmSync(big);

  // --- 2. the real TrustedTpm.cab ------------------------------------------------------------
  const cab = path.join(realworld, 'gematik-popp', 'TrustedTpm.cab');
  if (!existsSync(cab)) {
    console.log(`skipped the cabinet benchmark: ${cab} is absent (set ZETA_REALWORLD_DIR)`);
  } else {
    const rootsDir = path.join(root, 'config', 'trust', 'microsoft');
    const rootsPem = path.join(work, 'microsoft-roots.pem');
    const pems = ['MicRooCerAut_2010-06-23.crt', 'MicrosoftRootCertificateAuthority2011.cer'].map((f) =>
      execFileSync('openssl', ['x509', '-inform', 'DER', '-in', path.join(rootsDir, f)]).toString(),
    );
    writeFileSync(rootsPem, pems.join(''));
    const r = compare(
      'Authenticode TrustedTpm.cab (gematik-popp, 2.4 MiB, RFC 3161 timestamp)',
      () => measure(process.execPath, [fileURLToPath(import.meta.url), '--child', 'cab', cab, rootsDir]),
      () =>
        measure(
          'osslsigncode',
          ['verify', '-in', cab, '-CAfile', rootsPem, '-TSA-CAfile', rootsPem, '-ignore-crl'],
          (x) => x.status === 0 && /^Succeeded$/m.test(x.stdout),
        ),
    );
    results.benchmarks.push(r);

    // --- 3. the same cabinet through the shipped CLI: `zeta-provision verify` of a dir: payload ----------
    // The whole process as an operator or CI runs it: start-up, config, source, the check, the report.
    const payload = path.join(work, 'payload');
    mkdirSync(payload);
    writeFileSync(path.join(payload, 'TrustedTpm.cab'), readFileSync(cab));
    const config = path.join(work, 'verify.yaml');
    writeFileSync(
      config,
      `source: dir:${payload}\nimage:\n  signature: off\nverify:\n  - files: [TrustedTpm.cab]\n    kind: authenticode\n    trust: [microsoft]\n`,
    );
    const cli = compare(
      'zeta-provision verify (bin/, whole process) of a payload holding TrustedTpm.cab',
      () => measure(process.execPath, [path.join(root, 'bin', 'zeta-provision'), 'verify', '--config', config, '--log-format', 'json']),
      () =>
        measure(
          'osslsigncode',
          ['verify', '-in', cab, '-CAfile', rootsPem, '-TSA-CAfile', rootsPem, '-ignore-crl'],
          (x) => x.status === 0 && /^Succeeded$/m.test(x.stdout),
        ),
    );
    cli.targetRatio = 5;
    const node0 = Array.from({ length: runs }, () => measure(process.execPath, ['-e', '0']).ms);
    cli.nodeAloneMs = Math.round(median(node0));
    console.log(`  node -e 0 alone: ${cli.nodeAloneMs} ms (${(cli.nodeAloneMs / cli.peer.wallMs).toFixed(1)}× osslsigncode)`);
    results.benchmarks.push(cli);
  }

  mkdirSync(path.join(root, 'bench', 'results'), { recursive: true });
  writeFileSync(path.join(root, 'bench', 'results', 'verify.json'), JSON.stringify(results, null, 2) + '\n');
  console.log('wrote bench/results/verify.json');
} finally {
  rmSync(work, { recursive: true, force: true });
}
