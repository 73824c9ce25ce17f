// node bench/shapes.mjs (after `npm run build`): hostile layer *shapes* — small layers whose cost lies in
// their entry count or nesting, not their size — unpacked by our source stage beside GNU `tar -xzf` of
// the very same layer blob, each in its own process under GNU time (wall ms, peak RSS):
//   nested-2000     2,000 nested directory entries (d/d/d/…), one directory per level
//   deep-name-2000  one empty file whose name has 2,000 levels (PAX path), no directory entries
//   files-200000    200,000 entries (empty files in directories of 1,000): the default entry cap exactly
//   refuse-200001   200,001 entries: we must refuse with exit 4; tar just unpacks them
// Targets (issue 14): nested ≤ 1 s; 200,000 files ≤ 150 MiB peak RSS and ≤ 3× tar; the refusal within
// the same bounds. Writes bench/results/shapes.json. Not a timed test. BENCH_RUNS (default 3) medians;
// BENCH_SHAPES=a,b picks shapes (also nested-N, files-N); BENCH_PROFILE_DIR=DIR writes CPU profiles; BENCH_COMPARE_DIST=DIR adds a series for another build of dist/.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { median, timed as runTimed } from './lib.mjs';
import { gzipSync } from 'node:zlib';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

if (process.argv[2] === 'child-unpack') {
  // Child: resolve and unpack one OCI layout with the built source stage; exit 4 on a SourceError.
  const [layout, dest, dist = path.join(root, 'dist')] = process.argv.slice(3);
  const { parseSourceReference, resolveSource, unpackSource } = await import(path.join(dist, 'source', 'index.js'));
  try {
    const resolved = await resolveSource(parseSourceReference(`oci-layout:${layout}`));
    const r = await unpackSource(resolved, dest);
    process.stdout.write(JSON.stringify({ files: r.files, bytes: r.bytes }));
    process.exit(0);
  } catch (err) {
    process.stdout.write(JSON.stringify({ error: String(err.message).slice(0, 300) }));
    process.exit(err.exitCode ?? 1);
  }
}

const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const work = mkdtempSync(path.join(process.env.BENCH_DIR ?? os.tmpdir(), 'zp-bench-shapes-'));

// ---- a minimal tar writer (ustar + PAX path records), so the shapes are exact and fast to build ----
function octal(n, len) {
  return n.toString(8).padStart(len - 1, '0') + '\0';
}
function header(name, type, size = 0, mode = type === '5' ? 0o755 : 0o644) {
  const b = Buffer.alloc(512);
  b.write(name, 0, 100, 'utf8');
  b.write(octal(mode, 8), 100);
  b.write(octal(0, 8), 108);
  b.write(octal(0, 8), 116);
  b.write(octal(size, 12), 124);
  b.write(octal(0, 12), 136);
  b.fill(0x20, 148, 156);
  b.write(type, 156);
  b.write('ustar\0', 257);
  b.write('00', 263);
  let sum = 0;
  for (let i = 0; i < 512; i++) sum += b[i];
  b.write(octal(sum, 7) + ' ', 148);
  return b;
}
function entry(name, type) {
  if (Buffer.byteLength(name) <= 99) return [header(name, type)];
  // PAX extended header carrying the long path, then the entry with a truncated name.
  const rec = ` path=${name}\n`;
  let len = rec.length + 1;
  while (String(len).length + rec.length !== len) len = String(len).length + rec.length;
  const data = Buffer.from(`${len}${rec}`);
  const pad = Buffer.alloc((512 - (data.length % 512)) % 512);
  return [header('PaxHeader', 'x', data.length), data, pad, header(name.slice(0, 99), type)];
}
function tarOf(entries) {
  const parts = [];
  for (const [name, type] of entries) parts.push(...entry(name, type));
  parts.push(Buffer.alloc(1024));
  return Buffer.concat(parts);
}

const SHAPES = {
  'nested-2000': () => nested(2000),
  'deep-name-2000': () => [['d/'.repeat(1999) + 'f', '0']],
  'files-200000': () => files(200_000),
  'refuse-200001': () => files(200_001),
};
/** `nested-N` / `files-N` for other sizes (scaling checks: is the cost linear?). */
function shapeOf(name) {
  const m = /^(nested|files)-(\d+)$/.exec(name);
  if (SHAPES[name]) return SHAPES[name]();
  if (m) return m[1] === 'nested' ? nested(Number(m[2])) : files(Number(m[2]));
  throw new Error(`unknown shape ${name}`);
}
function nested(n) {
  const out = [];
  let p = '';
  for (let i = 0; i < n; i++) out.push([(p += 'd/'), '5']);
  return out;
}
function files(n) {
  const out = [];
  for (let i = 0; i < n; i++) {
    if (i % 1000 === 0) out.push([`d${String(i / 1000).padStart(3, '0')}/`, '5']);
    out.push([`d${String(Math.floor(i / 1000)).padStart(3, '0')}/f${String(i).padStart(6, '0')}`, '0']);
  }
  // The directory entries count as entries too: keep the total at exactly n.
  return out.slice(0, n);
}

function layoutOf(dir, tar) {
  mkdirSync(path.join(dir, 'blobs', 'sha256'), { recursive: true });
  const blob = (bytes, mediaType) => {
    const hex = createHash('sha256').update(bytes).digest('hex');
    writeFileSync(path.join(dir, 'blobs', 'sha256', hex), bytes);
    return { mediaType, digest: `sha256:${hex}`, size: bytes.length };
  };
  const gz = gzipSync(tar, { level: 6 });
  const layer = blob(gz, 'application/vnd.oci.image.layer.v1.tar+gzip');
  const diffId = `sha256:${createHash('sha256').update(tar).digest('hex')}`;
  const config = blob(
    Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [diffId] }, config: {} })),
    'application/vnd.oci.image.config.v1+json',
  );
  const manifest = blob(
    Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config, layers: [layer] })),
    'application/vnd.oci.image.manifest.v1+json',
  );
  writeFileSync(path.join(dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  writeFileSync(
    path.join(dir, 'index.json'),
    JSON.stringify({ schemaVersion: 2, manifests: [{ ...manifest, annotations: { 'org.opencontainers.image.ref.name': 'latest' } }] }),
  );
  return { blobFile: path.join(dir, 'blobs', 'sha256', layer.digest.slice(7)), layerBytes: gz.length, tarBytes: tar.length };
}

/** Wall ms, peak RSS (MiB) and exit code of one command under GNU time. */
function timed(cmd, args) {
  const r = runTimed(cmd, args, { check: () => true });
  return { ms: r.ms, peakRssMiB: r.rssKiB / 1024, status: r.status, stdout: r.stdout, stderr: r.stderr };
}

function summary(name, samples) {
  return {
    name,
    wallMs: median(samples.map((s) => s.ms)),
    peakRssMiB: Math.max(...samples.map((s) => s.peakRssMiB)),
    samplesMs: samples.map((s) => Math.round(s.ms)),
    status: samples.map((s) => s.status),
    last: samples.at(-1).stdout.slice(0, 300),
  };
}

/** `rm -rf`: Node's rmSync recurses once per level and overflows its stack on 2,000 levels. */
function rmrf(d) {
  spawnSync('rm', ['-rf', d]);
}
function fresh(name) {
  const d = path.join(work, name);
  rmrf(d);
  return d;
}

const wanted = (process.env.BENCH_SHAPES ?? Object.keys(SHAPES).join(',')).split(',');
const compare = process.env.BENCH_COMPARE_DIST;
const results = [];
const loadAtStart = os.loadavg();
try {
  for (const shape of wanted) {
    const layout = path.join(work, `layout-${shape}`);
    const { blobFile, layerBytes, tarBytes } = layoutOf(layout, tarOf(shapeOf(shape)));
    const ours = (dist) => () => {
      const dest = fresh('out-ours');
      const flags = process.env.BENCH_PROFILE_DIR ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_PROFILE_DIR}`] : [];
      const r = timed(process.execPath, [...flags, fileURLToPath(import.meta.url), 'child-unpack', layout, dest, ...(dist ? [dist] : [])]);
      rmrf(dest);
      return r;
    };
    const tarRun = () => {
      const dest = fresh('out-tar');
      mkdirSync(dest);
      const r = timed('tar', ['-xzf', blobFile, '-C', dest]);
      rmrf(dest);
      return r;
    };
    // Interleaved (ours, peer, ours, peer …) so every series sees the same machine load.
    const ways = [
      ['ours (oci-layout source: resolve + unpack)', ours()],
      ...(compare ? [[`compare: ${path.basename(compare)}`, ours(compare)]] : []),
      ['tar -xzf', tarRun],
    ];
    const samples = ways.map(() => []);
    for (let i = 0; i < RUNS; i++) for (const [w, [, fn]] of ways.entries()) samples[w].push(fn());
    const [oursSeries, ...rest] = ways.map(([name], w) => summary(name, samples[w]));
    const tar = rest.at(-1);
    const s = [oursSeries, ...rest.slice(0, -1)];
    rmrf(layout);
    const res = {
      shape,
      layerKiB: Math.round(layerBytes / 1024),
      tarKiB: Math.round(tarBytes / 1024),
      series: [...s, tar],
      oursVsTar: s[0].wallMs / tar.wallMs,
    };
    results.push(res);
    console.log(`\n${shape}: ${res.layerKiB} KiB gzip layer, ${res.tarKiB} KiB tar (median of ${RUNS}; wall ms, peak RSS MiB, exit codes):`);
    for (const x of res.series)
      console.log(
        `  ${x.name.padEnd(44)} ${x.wallMs.toFixed(0).padStart(7)} ms ${x.peakRssMiB.toFixed(1).padStart(7)} MiB  exit ${x.status.join(',')}  [${x.samplesMs.join(', ')}]  ${x.last}`,
      );
    console.log(`  ours/tar ${res.oursVsTar.toFixed(2)}×`);
  }
  const out = {
    date: new Date().toISOString(),
    node: process.version,
    cores: os.cpus().length,
    loadAverageAtStart: loadAtStart,
    loadAverage: os.loadavg(),
    runs: RUNS,
    results,
  };
  mkdirSync(path.join(root, 'bench', 'results'), { recursive: true });
  writeFileSync(path.join(root, 'bench', 'results', 'shapes.json'), JSON.stringify(out, null, 2) + '\n');
  console.log(
    `\nload average ${os
      .loadavg()
      .map((x) => x.toFixed(2))
      .join(' ')}; results: bench/results/shapes.json`,
  );
} finally {
  rmrf(work);
}
