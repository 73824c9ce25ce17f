// node bench/volume.mjs (after `npm run build`): the volume publisher on 10,000 files / ~500 MiB.
// 1. first publish into an empty volume vs `cp -r` and `rsync -a` into an empty dir (we fsync every
//    file and directory; cp and rsync do not, so the ratio is an upper bound of our overhead);
// 2. republish with one 1 MiB file changed: bytes written (/proc/self/io write_bytes of the publishing
//    process) and wall time vs the first publish.
// Each publish runs in its own process so write_bytes and peak RSS belong to it alone.
// Writes bench/results/volume.json. Not a timed test. BENCH_FILES / BENCH_MIB scale it down.
import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

function ioWriteBytes() {
  const m = /write_bytes: (\d+)/.exec(readFileSync('/proc/self/io', 'utf8'));
  return m ? Number(m[1]) : NaN;
}

if (process.argv[2] === 'child-publish') {
  // Child: publish the listed files, report wall time, bytes and peak RSS.
  const { publishVolume } = await import(path.join(root, 'dist', 'publish', 'volume', 'index.js'));
  const files = JSON.parse(readFileSync(process.argv[4], 'utf8'));
  const io0 = ioWriteBytes();
  const t0 = process.hrtime.bigint();
  const r = await publishVolume(process.argv[3], files);
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  const out = { ms, writeBytes: ioWriteBytes() - io0, fileBytesWritten: r.bytesWritten, linked: r.linked, copied: r.copied, peakRssMiB: process.resourceUsage().maxRSS / 1024 };
  process.stdout.write(JSON.stringify(out));
  process.exit(0);
}

const FILES = Number(process.env.BENCH_FILES ?? 10_000);
const TOTAL = Number(process.env.BENCH_MIB ?? 500) * 1024 * 1024;
const ONE_MIB = 1024 * 1024;
const work = mkdtempSync(path.join(process.env.BENCH_DIR ?? os.tmpdir(), 'zp-bench-volume-'));

function timed(cmd, args) {
  const t0 = process.hrtime.bigint();
  const r = spawnSync('/usr/bin/time', ['-f', '%M', cmd, ...args], { encoding: 'utf8', maxBuffer: 1 << 24 });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (r.status !== 0) throw new Error(`${cmd} failed: ${r.stderr}`);
  const lines = r.stderr.trim().split('\n');
  return { ms, peakRssMiB: Number(lines.pop()) / 1024, stdout: r.stdout };
}

function publish(vol, list) {
  const listFile = path.join(work, 'files.json');
  writeFileSync(listFile, JSON.stringify(list));
  const r = timed(process.execPath, [fileURLToPath(import.meta.url), 'child-publish', vol, listFile]);
  return JSON.parse(r.stdout);
}

try {
  // Source tree: file 0 is exactly 1 MiB (the one we change), the rest share the remaining bytes.
  const src = path.join(work, 'src');
  const each = Math.floor((TOTAL - ONE_MIB) / (FILES - 1));
  const list = [];
  const seed = randomBytes(each + 4096);
  for (let i = 0; i < FILES; i++) {
    const rel = `data/d${String(Math.floor(i / 100)).padStart(3, '0')}/f${String(i).padStart(5, '0')}.bin`;
    const abs = path.join(src, rel);
    mkdirSync(path.dirname(abs), { recursive: true });
    // Distinct content per file without generating 500 MiB of randomness.
    const bytes = i === 0 ? randomBytes(ONE_MIB) : Buffer.concat([Buffer.from(String(i).padStart(16, '0')), seed.subarray(i % 4096, i % 4096 + each - 16)]);
    writeFileSync(abs, bytes);
    list.push({ path: rel, source: abs, size: bytes.length, sha256: createHash('sha256').update(bytes).digest('hex') });
  }
  const totalBytes = list.reduce((n, f) => n + f.size, 0);
  spawnSync('sync');

  const first = publish(path.join(work, 'vol'), list);
  const cp = timed('cp', ['-r', path.join(src, 'data'), path.join(work, 'cp-out')]);
  const rsync = timed('rsync', ['-a', path.join(src, 'data') + '/', path.join(work, 'rsync-out') + '/']);
  spawnSync('sync');

  const changed = randomBytes(ONE_MIB);
  writeFileSync(list[0].source, changed);
  list[0].sha256 = createHash('sha256').update(changed).digest('hex');
  const second = publish(path.join(work, 'vol'), list);

  const result = {
    when: new Date().toISOString(),
    node: process.version,
    cpus: os.cpus().length,
    files: FILES,
    totalMiB: +(totalBytes / ONE_MIB).toFixed(1),
    firstPublish: first,
    cpR: { ms: cp.ms, peakRssMiB: cp.peakRssMiB },
    rsyncA: { ms: rsync.ms, peakRssMiB: rsync.peakRssMiB },
    republishOneMiB: second,
    ratios: {
      firstVsCp: +(first.ms / cp.ms).toFixed(2),
      firstVsRsync: +(first.ms / rsync.ms).toFixed(2),
      republishWallVsFirst: +(second.ms / first.ms).toFixed(3),
      republishWriteBytesVsChangedFile: +(second.writeBytes / ONE_MIB).toFixed(2),
    },
  };
  mkdirSync(path.join(root, 'bench', 'results'), { recursive: true });
  writeFileSync(path.join(root, 'bench', 'results', 'volume.json'), JSON.stringify(result, null, 2) + '\n');
  const f = (ms) => `${(ms / 1000).toFixed(2)} s`;
  console.log(`${FILES} files, ${result.totalMiB} MiB (warm page cache)`);
  console.log(`first publish     ${f(first.ms)}  peak RSS ${first.peakRssMiB.toFixed(0)} MiB  write_bytes ${(first.writeBytes / ONE_MIB).toFixed(1)} MiB`);
  console.log(`cp -r             ${f(cp.ms)}  (×${result.ratios.firstVsCp} for us)  peak RSS ${cp.peakRssMiB.toFixed(0)} MiB`);
  console.log(`rsync -a          ${f(rsync.ms)}  (×${result.ratios.firstVsRsync} for us)  peak RSS ${rsync.peakRssMiB.toFixed(0)} MiB`);
  console.log(`republish 1 MiB   ${f(second.ms)}  = ${(result.ratios.republishWallVsFirst * 100).toFixed(1)}% of first  write_bytes ${(second.writeBytes / ONE_MIB).toFixed(2)} MiB  file bytes ${second.fileBytesWritten}  linked ${second.linked}  copied ${second.copied}  peak RSS ${second.peakRssMiB.toFixed(0)} MiB`);
} finally {
  rmSync(work, { recursive: true, force: true });
}
