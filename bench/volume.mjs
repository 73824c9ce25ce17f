// node bench/volume.mjs (after `npm run build`): the volume publisher on 10,000 files / ~500 MiB.
// Per round (BENCH_ROUNDS, default 3; medians and ranges are reported):
// 1. first publish into an empty volume vs `cp -r` and `rsync -a` into an empty dir (we fsync every
//    file and directory; cp and rsync do not);
// 2. republish with one 1 MiB file changed (nothing to garbage-collect yet), then again with another
//    1 MiB change (this one also removes the oldest generation, as every later republish does):
//    wall time vs the first publish and bytes written (/proc/self/io write_bytes of the publishing
//    process);
// 3. `cp -al` of the tree: a directory tree of 10,000 hardlinks, the metadata any complete new
//    generation costs — the floor for a republish's write_bytes beside the changed file.
// Each publish runs in its own process so write_bytes and peak RSS belong to it alone. `sync` runs
// before every measured step, so no step inherits or leaves another's dirty pages.
// Writes bench/results/volume.json. Not a timed test. BENCH_FILES / BENCH_MIB scale it down.
import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { median } from './lib.mjs';

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
  const out = {
    ms,
    writeBytes: ioWriteBytes() - io0,
    fileBytesWritten: r.bytesWritten,
    linked: r.linked,
    copied: r.copied,
    removedGenerations: r.removedGenerations.length,
    peakRssMiB: process.resourceUsage().maxRSS / 1024,
  };
  process.stdout.write(JSON.stringify(out));
  process.exit(0);
}

const FILES = Number(process.env.BENCH_FILES ?? 10_000);
const TOTAL = Number(process.env.BENCH_MIB ?? 500) * 1024 * 1024;
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const ONE_MIB = 1024 * 1024;
const work = mkdtempSync(path.join(process.env.BENCH_DIR ?? os.tmpdir(), 'zp-bench-volume-'));

/** Run a command under /usr/bin/time inside bash, which prints its own write_bytes after the child is reaped (a reaped child's I/O is added to its parent's). */
function timed(cmd, args) {
  spawnSync('sync');
  const quoted = [cmd, ...args].map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
  const t0 = process.hrtime.bigint();
  const timeOut = path.join(work, 'time.out');
  const r = spawnSync('bash', ['-c', `/usr/bin/time -f '%M %U %S' -o '${timeOut}' ${quoted} && echo && grep '^write_bytes' /proc/$$/io`], {
    encoding: 'utf8',
    maxBuffer: 1 << 24,
  });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (r.status !== 0) throw new Error(`${cmd} failed: ${r.stderr}`);
  const [rss, user, sys] = readFileSync(timeOut, 'utf8').trim().split('\n').pop().split(' ').map(Number);
  const wb = /write_bytes: (\d+)/.exec(r.stdout);
  // CPU seconds (user + system) beside wall time: on a loaded machine they show what is work and what is waiting.
  return {
    ms,
    cpuMs: (user + sys) * 1000,
    peakRssMiB: rss / 1024,
    writeBytes: wb ? Number(wb[1]) : NaN,
    stdout: r.stdout.replace(/^write_bytes.*$/m, '').trim(),
  };
}

function publish(vol, list) {
  const listFile = path.join(work, 'files.json');
  writeFileSync(listFile, JSON.stringify(list));
  const r = timed(process.execPath, [fileURLToPath(import.meta.url), 'child-publish', vol, listFile]);
  return { ...JSON.parse(r.stdout), cpuMs: r.cpuMs };
}

function change(list) {
  const bytes = randomBytes(ONE_MIB);
  writeFileSync(list[0].source, bytes);
  list[0].sha256 = createHash('sha256').update(bytes).digest('hex');
}

const summary = (xs) => ({ median: +median(xs).toFixed(3), min: +Math.min(...xs).toFixed(3), max: +Math.max(...xs).toFixed(3) });

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
    const bytes = i === 0 ? randomBytes(ONE_MIB) : Buffer.concat([Buffer.from(String(i).padStart(16, '0')), seed.subarray(i % 4096, (i % 4096) + each - 16)]);
    writeFileSync(abs, bytes);
    list.push({ path: rel, source: abs, size: bytes.length, sha256: createHash('sha256').update(bytes).digest('hex') });
  }
  const totalBytes = list.reduce((n, f) => n + f.size, 0);

  const rounds = [];
  for (let round = 0; round < ROUNDS; round++) {
    const out = (name) => path.join(work, `${name}-${round}`);
    const first = publish(out('vol'), list);
    const cp = timed('cp', ['-r', path.join(src, 'data'), out('cp')]);
    const rsync = timed('rsync', ['-a', path.join(src, 'data') + '/', out('rsync') + '/']);
    const cpal = timed('cp', ['-al', path.join(src, 'data'), out('cpal')]);
    change(list);
    const republish = publish(out('vol'), list);
    change(list);
    const republishGc = publish(out('vol'), list);
    rounds.push({ first, cp, rsync, cpal, republish, republishGc });
    for (const n of ['vol', 'cp', 'rsync', 'cpal']) rmSync(out(n), { recursive: true, force: true });
    const s = (ms) => `${(ms / 1000).toFixed(2)} s`;
    const mib = (b) => `${(b / ONE_MIB).toFixed(2)} MiB`;
    console.log(
      `round ${round + 1}: first ${s(first.ms)} cpu ${s(first.cpuMs)} (write_bytes ${mib(first.writeBytes)}), cp -r ${s(cp.ms)}, rsync -a ${s(rsync.ms)}, cp -al ${s(cpal.ms)} (${mib(cpal.writeBytes)}); ` +
        `republish ${s(republish.ms)} = ${((100 * republish.ms) / first.ms).toFixed(1)}% cpu ${s(republish.cpuMs)} (${mib(republish.writeBytes)}, linked ${republish.linked}, copied ${republish.copied}); ` +
        `republish+GC ${s(republishGc.ms)} = ${((100 * republishGc.ms) / first.ms).toFixed(1)}% (${mib(republishGc.writeBytes)}, removed ${republishGc.removedGenerations} generation)`,
    );
  }

  const pick = (f) => summary(rounds.map(f));
  const result = {
    when: new Date().toISOString(),
    node: process.version,
    cpus: os.cpus().length,
    loadavg: os.loadavg(),
    files: FILES,
    totalMiB: +(totalBytes / ONE_MIB).toFixed(1),
    rounds,
    summary: {
      firstPublishS: pick((r) => r.first.ms / 1000),
      cpRS: pick((r) => r.cp.ms / 1000),
      rsyncAS: pick((r) => r.rsync.ms / 1000),
      firstVsCp: pick((r) => r.first.ms / r.cp.ms),
      firstVsRsync: pick((r) => r.first.ms / r.rsync.ms),
      republishS: pick((r) => r.republish.ms / 1000),
      republishVsFirst: pick((r) => r.republish.ms / r.first.ms),
      republishWriteMiB: pick((r) => r.republish.writeBytes / ONE_MIB),
      republishGcS: pick((r) => r.republishGc.ms / 1000),
      republishGcVsFirst: pick((r) => r.republishGc.ms / r.first.ms),
      republishGcWriteMiB: pick((r) => r.republishGc.writeBytes / ONE_MIB),
      cpAlWriteMiB: pick((r) => r.cpal.writeBytes / ONE_MIB),
      cpAlS: pick((r) => r.cpal.ms / 1000),
      cpuS: {
        first: pick((r) => r.first.cpuMs / 1000),
        republish: pick((r) => r.republish.cpuMs / 1000),
        republishGc: pick((r) => r.republishGc.cpuMs / 1000),
        cpAl: pick((r) => r.cpal.cpuMs / 1000),
      },
      peakRssMiB: { first: pick((r) => r.first.peakRssMiB), republish: pick((r) => r.republish.peakRssMiB) },
    },
  };
  mkdirSync(path.join(root, 'bench', 'results'), { recursive: true });
  writeFileSync(path.join(root, 'bench', 'results', 'volume.json'), JSON.stringify(result, null, 2) + '\n');
  console.log(
    `${FILES} files, ${result.totalMiB} MiB, ${ROUNDS} rounds, load average ${os
      .loadavg()
      .map((l) => l.toFixed(1))
      .join(' ')}`,
  );
  console.log(JSON.stringify(result.summary, null, 1));
} finally {
  rmSync(work, { recursive: true, force: true });
}
