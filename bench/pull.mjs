// node bench/pull.mjs (after `npm run build`): pulling and unpacking a 3-layer image from Debian's
// docker-registry on 127.0.0.1, at ~1 GiB and ~100 MiB, three ways in the same run:
//   ours   the registry source (resolve + unpack: streaming gunzip, two sha256, checked tar apply)
//   skopeo `skopeo copy` to an OCI layout, then `tar -xzf` per layer (gematik's processor does this)
//   floor  `curl` of each blob piped into `tar -xz` (no digest check, no safety checks at all)
// plus the whole-process up-to-date check of `zeta-provision run` (the hourly CronJob's usual case).
// Each measurement is its own process under GNU time (wall ms, peak RSS of the largest process).
// Writes bench/results/pull.json. Not a timed test. BENCH_SIZES_MIB=1024,100 BENCH_RUNS=3 scale it;
// BENCH_PROFILE_DIR=DIR writes a CPU profile of each of our pulls there. BENCH_COMPARE_DIST=DIR[,DIR…]
// adds a series per other build of dist/ (e.g. `tsc --outDir` of an earlier commit, inside the repo so
// node_modules resolve), interleaved with ours so all see the same machine load: an A/B test.
import { spawn, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, cpSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { median, timed as runTimed } from './lib.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const MiB = 1024 * 1024;

if (process.argv[2] === 'child-pull') {
  // Child: resolve and unpack one registry image with the built source stage.
  const [ref, dest, host, dist = path.join(root, 'dist')] = process.argv.slice(3);
  const { parseSourceReference, resolveSource, unpackSource } = await import(path.join(dist, 'source', 'index.js'));
  const options = { registry: { insecureHosts: [host] } };
  const resolved = await resolveSource(parseSourceReference(ref), options);
  // Past the default 64 MiB payload cap (sized for the CronJob's /tmp), as --max-payload-mib 4096 would be.
  const r = await unpackSource(resolved, dest, { maxTotalBytes: 4 * 1024 * MiB, maxFileBytes: 2 * 1024 * MiB }, options);
  process.stdout.write(JSON.stringify({ files: r.files, bytes: r.bytes }));
  process.exit(0);
}

const SIZES = (process.env.BENCH_SIZES_MIB ?? '1024,100').split(',').map(Number);
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const work = mkdtempSync(path.join(process.env.BENCH_DIR ?? os.tmpdir(), 'zp-bench-pull-'));

function run(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 1 << 26, ...opts });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}): ${r.stderr}`);
  return r.stdout;
}

/** Wall ms and peak RSS (MiB, largest single process) of one command under GNU time. */
function timed(cmd, args, opts = {}) {
  const r = runTimed(cmd, args, opts);
  return { ms: r.ms, peakRssMiB: r.rssKiB / 1024, stdout: r.stdout };
}

const sha256File = (f) => createHash('sha256').update(readFileSync(f)).digest('hex');

/** 1 MiB blocks, half random and half repetitive text: gzip gets ~0.55, like real payload data. */
function content(bytes, seed) {
  const text = Buffer.from(`certificate ${seed} revocation list trust anchor keycloak realm opa policy\n`.repeat(8000));
  const out = Buffer.alloc(bytes);
  for (let off = 0; off < bytes; off += MiB) {
    const half = Math.min(MiB / 2, bytes - off);
    randomBytes(half).copy(out, off);
    if (off + half < bytes) text.copy(out, off + half, 0, Math.min(MiB / 2, bytes - off - half));
  }
  return out;
}

/** An OCI layout with three gzip layers: large files, many small files, medium files. */
function makeImage(dir, totalMiB) {
  const total = totalMiB * MiB;
  const layers = [
    // ~70%: two large files
    (d) => {
      for (let i = 0; i < 2; i++) writeFileSync(path.join(d, `large-${i}.bin`), content(Math.floor(total * 0.35), `l${i}`));
    },
    // ~20%: small files of 4..64 KiB in 100-file directories
    (d) => {
      let left = Math.floor(total * 0.2);
      for (let i = 0; left > 0; i++) {
        const size = Math.min(left, 4096 + ((i * 7919) % 61440));
        const sub = path.join(d, 'small', `d${String(Math.floor(i / 100)).padStart(4, '0')}`);
        mkdirSync(sub, { recursive: true });
        writeFileSync(path.join(sub, `f${i}.dat`), content(size, `s${i}`));
        left -= size;
      }
    },
    // ~10%: medium files of 1..8 MiB
    (d) => {
      let left = Math.floor(total * 0.1);
      mkdirSync(path.join(d, 'medium'));
      for (let i = 0; left > 0; i++) {
        const size = Math.min(left, (1 + (i % 8)) * MiB);
        writeFileSync(path.join(d, 'medium', `m${i}.bin`), content(size, `m${i}`));
        left -= size;
      }
    },
  ];
  mkdirSync(path.join(dir, 'blobs', 'sha256'), { recursive: true });
  const descs = [];
  const diffIds = [];
  let files = 0;
  for (const [i, fill] of layers.entries()) {
    const src = path.join(work, `src-${i}`);
    mkdirSync(src);
    fill(src);
    files += Number(run('bash', ['-c', `find ${src} -type f | wc -l`]).trim());
    const tarFile = path.join(work, `layer-${i}.tar`);
    run('tar', ['-C', src, '--sort=name', '--owner=0', '--group=0', '--numeric-owner', '-cf', tarFile, '.']);
    rmSync(src, { recursive: true, force: true });
    diffIds.push(`sha256:${sha256File(tarFile)}`);
    run('bash', ['-c', `gzip -n -6 -c ${tarFile} > ${tarFile}.gz`]);
    rmSync(tarFile);
    const hex = sha256File(`${tarFile}.gz`);
    const size = statSync(`${tarFile}.gz`).size;
    cpSync(`${tarFile}.gz`, path.join(dir, 'blobs', 'sha256', hex));
    rmSync(`${tarFile}.gz`);
    descs.push({ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: `sha256:${hex}`, size });
  }
  const blob = (bytes, mediaType) => {
    const hex = createHash('sha256').update(bytes).digest('hex');
    writeFileSync(path.join(dir, 'blobs', 'sha256', hex), bytes);
    return { mediaType, digest: `sha256:${hex}`, size: bytes.length };
  };
  const config = blob(
    Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: diffIds }, config: {} })),
    'application/vnd.oci.image.config.v1+json',
  );
  const manifest = blob(
    Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config, layers: descs })),
    'application/vnd.oci.image.manifest.v1+json',
  );
  writeFileSync(path.join(dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  writeFileSync(
    path.join(dir, 'index.json'),
    JSON.stringify({ schemaVersion: 2, manifests: [{ ...manifest, annotations: { 'org.opencontainers.image.ref.name': 'latest' } }] }),
  );
  return { layers: descs, files, compressedMiB: descs.reduce((n, d) => n + d.size, 0) / MiB };
}

async function startRegistry() {
  const dir = path.join(work, 'registry');
  mkdirSync(dir);
  const config = path.join(dir, 'config.yml');
  writeFileSync(config, `version: 0.1\nlog:\n  level: info\nstorage:\n  filesystem:\n    rootdirectory: ${dir}/data\nhttp:\n  addr: 127.0.0.1:0\n`);
  // Logs to a file, not a pipe: the measurements block this process (spawnSync), and a full pipe
  // would stall the registry mid-request.
  const logFile = path.join(dir, 'registry.log');
  const fd = openSync(logFile, 'w');
  const child = spawn('docker-registry', ['serve', config], { stdio: ['ignore', fd, fd] });
  closeSync(fd);
  for (let i = 0; i < 200; i++) {
    const m = /listening on 127\.0\.0\.1:(\d+)/.exec(readFileSync(logFile, 'utf8'));
    if (m) return { host: `127.0.0.1:${m[1]}`, stop: () => child.kill('SIGTERM') };
    if (child.exitCode !== null) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  child.kill('SIGTERM');
  throw new Error(`docker-registry did not start: ${readFileSync(logFile, 'utf8').slice(-1000)}`);
}

function fresh(name) {
  const d = path.join(work, name);
  rmSync(d, { recursive: true, force: true });
  spawnSync('sync');
  return d;
}

function series(label, fn, runs = RUNS) {
  const samples = [];
  for (let i = 0; i < runs; i++) samples.push(fn());
  return {
    name: label,
    wallMs: median(samples.map((s) => s.ms)),
    peakRssMiB: Math.max(...samples.map((s) => s.peakRssMiB)),
    samplesMs: samples.map((s) => Math.round(s.ms)),
  };
}

function measureSize(registry, sizeMiB) {
  const layout = path.join(work, `layout-${sizeMiB}`);
  const image = makeImage(layout, sizeMiB);
  const repo = `bench/pull-${sizeMiB}`;
  run('skopeo', ['copy', '--quiet', '--dest-tls-verify=false', `oci:${layout}:latest`, `docker://${registry.host}/${repo}:latest`]);
  rmSync(layout, { recursive: true, force: true });
  const ref = `${registry.host}/${repo}:latest`;

  const pull = (dist) => {
    const dest = fresh('out-ours');
    const flags = process.env.BENCH_PROFILE_DIR ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_PROFILE_DIR}`] : [];
    return timed(process.execPath, [...flags, fileURLToPath(import.meta.url), 'child-pull', ref, dest, registry.host, ...(dist ? [dist] : [])]);
  };
  const compareDists = (process.env.BENCH_COMPARE_DIST ?? '').split(',').filter(Boolean);
  const compared = compareDists.map(() => []);
  const ours = series('ours: resolve + unpack (registry source)', () => {
    for (const [i, dist] of compareDists.entries()) compared[i].push(pull(dist));
    return pull();
  });
  const skopeo = series('skopeo copy to OCI layout + tar -xzf per layer', () => {
    const dest = fresh('out-skopeo');
    const oci = fresh('skopeo-oci');
    const script = `set -e
skopeo copy --quiet --src-tls-verify=false docker://${ref} oci:${oci}:latest
mkdir -p ${dest}
m=$(python3 -c "import json;print(json.load(open('${oci}/index.json'))['manifests'][0]['digest'][7:])")
for l in $(python3 -c "import json;print(' '.join(x['digest'][7:] for x in json.load(open('${oci}/blobs/sha256/'+'$m'))['layers']))"); do
  tar -xzf ${oci}/blobs/sha256/$l -C ${dest}
done`;
    return timed('bash', ['-c', script]);
  });
  const floor = series('floor: curl blob | tar -xz per layer', () => {
    const dest = fresh('out-curl');
    mkdirSync(dest);
    const script = image.layers.map((l) => `curl -sf http://${registry.host}/v2/${repo}/blobs/${l.digest} | tar -xz -C ${dest}`).join(' && ');
    return timed('bash', ['-o', 'pipefail', '-c', script]);
  });
  for (const d of ['out-ours', 'out-skopeo', 'skopeo-oci', 'out-curl']) rmSync(path.join(work, d), { recursive: true, force: true });
  return {
    sizeMiB,
    files: image.files,
    compressedMiB: Number(image.compressedMiB.toFixed(1)),
    layersMiB: image.layers.map((l) => Number((l.size / MiB).toFixed(1))),
    series: [
      ours,
      skopeo,
      floor,
      ...compareDists.map((dist, i) => ({
        name: `compare: ${path.basename(dist)}`,
        wallMs: median(compared[i].map((c) => c.ms)),
        peakRssMiB: Math.max(...compared[i].map((c) => c.peakRssMiB)),
        samplesMs: compared[i].map((c) => Math.round(c.ms)),
      })),
    ],
    ratios: { oursVsFloor: ours.wallMs / floor.wallMs, oursVsSkopeo: ours.wallMs / skopeo.wallMs },
  };
}

/** `zeta-provision run` against an image already applied: one manifest request, then exit. */
function measureUpToDate(registry) {
  const example = path.join(work, 'example');
  cpSync(path.join(root, 'fixtures', 'example'), example, { recursive: true });
  run('skopeo', ['copy', '--quiet', '--dest-tls-verify=false', `oci:${example}/oci:latest`, `docker://${registry.host}/zeta/provisioning:1.0`]);
  const sig = JSON.parse(readFileSync(path.join(example, 'oci', 'index.json'), 'utf8'))
    .manifests.map((m) => m.annotations?.['org.opencontainers.image.ref.name'])
    .find((t) => t?.endsWith('.sig'));
  if (sig) run('skopeo', ['copy', '--quiet', '--dest-tls-verify=false', `oci:${example}/oci:${sig}`, `docker://${registry.host}/zeta/provisioning:${sig}`]);
  const args = [
    path.join(root, 'bin', 'zeta-provision'),
    'run',
    '--config',
    path.join(example, 'zeta-provision.yaml'),
    '--volume',
    path.join(work, 'vol'),
    '--kube-out',
    path.join(work, 'kube'),
    '--insecure-registry',
    registry.host,
    '--source',
    `${registry.host}/zeta/provisioning:1.0`,
    '--log-format',
    'json',
  ];
  const first = timed(process.execPath, args);
  if (!/"outcome":\s*"applied"|applied/.test(first.stdout)) throw new Error(`first run did not apply: ${first.stdout}`);
  const s = series(
    'zeta-provision run, already up to date (whole process)',
    () => {
      const r = timed(process.execPath, args);
      if (!/up to date/.test(r.stdout)) throw new Error(`expected "up to date": ${r.stdout}`);
      return r;
    },
    Math.max(RUNS, 9),
  );
  return s;
}

const registry = await startRegistry();
try {
  const sizes = [];
  for (const size of SIZES) {
    const s = measureSize(registry, size);
    sizes.push(s);
    console.log(
      `\n${s.sizeMiB} MiB uncompressed, ${s.files} files, 3 gzip layers of ${s.layersMiB.join(' + ')} MiB (median of ${RUNS}; wall ms, peak RSS MiB):`,
    );
    for (const x of s.series)
      console.log(`  ${x.name.padEnd(50)} ${x.wallMs.toFixed(0).padStart(7)} ms ${x.peakRssMiB.toFixed(1).padStart(7)} MiB   [${x.samplesMs.join(', ')}]`);
    console.log(`  ours/floor ${s.ratios.oursVsFloor.toFixed(2)}×, ours/skopeo ${s.ratios.oursVsSkopeo.toFixed(2)}×`);
  }
  const upToDate = measureUpToDate(registry);
  const results = { date: new Date().toISOString(), node: process.version, cores: os.cpus().length, loadAverage: os.loadavg(), runs: RUNS, sizes, upToDate };
  mkdirSync(path.join(root, 'bench', 'results'), { recursive: true });
  writeFileSync(path.join(root, 'bench', 'results', 'pull.json'), JSON.stringify(results, null, 2) + '\n');
  console.log(`\n${upToDate.name}: ${upToDate.wallMs.toFixed(0)} ms, ${upToDate.peakRssMiB.toFixed(1)} MiB   [${upToDate.samplesMs.join(', ')}]`);
  console.log('results: bench/results/pull.json');
} finally {
  registry.stop();
  rmSync(work, { recursive: true, force: true });
}
