// npm run bench: the example payload through zeta-provision vs what the shell CronJob does
// (openssl cms -verify per signed file, cp -r into the volume, kubectl create configmap per target).
// Reports wall-time ratios and peak RSS, writes bench/results/latest.json. Not a timed test.
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { median, timed } from './lib.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const example = path.join(root, 'fixtures', 'example');
const runs = Number(process.env.BENCH_RUNS ?? 7);

const measure = (cmd, args, opts = {}) => timed(cmd, args, opts);

function series(name, fn) {
  const samples = [];
  for (let i = 0; i < runs; i++) samples.push(fn());
  return { name, wallMs: median(samples.map((s) => s.ms)), peakRssMiB: Math.max(...samples.map((s) => s.rssKiB)) / 1024 };
}

const work = mkdtempSync(path.join(os.tmpdir(), 'zp-bench-'));
try {
  const bin = path.join(root, 'bin', 'zeta-provision');
  const config = path.join(example, 'zeta-provision.yaml');
  const ours = (extra, vol, out) =>
    measure(process.execPath, [bin, 'run', '--config', config, '--volume', vol, '--kube-out', out, '--log-format', 'json', ...extra]);

  const fresh = series('zeta-provision run (fresh volume)', () => {
    const d = mkdtempSync(path.join(work, 'fresh-'));
    return ours([], path.join(d, 'vol'), path.join(d, 'out'));
  });
  const steady = path.join(work, 'steady');
  ours([], path.join(steady, 'vol'), path.join(steady, 'out'));
  const upToDate = series('zeta-provision run (up to date)', () => ours([], path.join(steady, 'vol'), path.join(steady, 'out')));

  // The shell CronJob: unpack the layer, verify each signed file with openssl, cp -r, kubectl per ConfigMap.
  const payload = path.join(example, 'payload');
  const ca = path.join(example, 'trust', 'example-root-ca.pem');
  const script = path.join(work, 'cronjob.sh');
  writeFileSync(
    script,
    `set -e
out=$(mktemp -d -p ${work}); mkdir -p $out/stage $out/vol
layer=$(ls -S ${example}/oci/blobs/sha256/* | head -1); tar -xzf $layer -C $out/stage
for f in nginx/nginx.conf keycloak-data/realm-zeta.json keycloak-data/themes/zeta/theme.properties; do
  openssl cms -verify -binary -inform DER -in $out/stage/$f.p7s -content $out/stage/$f -CAfile ${ca} -purpose any -out /dev/null 2>/dev/null
done
openssl cms -verify -binary -inform DER -in $out/stage/opa/policy.rego -CAfile ${ca} -purpose any -out $out/stage/opa/policy.txt 2>/dev/null
cp -r $out/stage/keycloak-data $out/vol/
kubectl create configmap nginx-config --from-file=$out/stage/nginx/nginx.conf --dry-run=client -o yaml > $out/nginx.yaml
kubectl create configmap opa-policy --from-file=policy.rego=$out/stage/opa/policy.txt --dry-run=client -o yaml > $out/opa.yaml
`,
  );
  const shell = series('shell CronJob (tar, openssl cms ×4, cp -r, kubectl ×2)', () => measure('bash', [script]));
  void payload;

  // Cold start: the shipped entry (bin/ → the bundle) printing its version, beside Node doing nothing.
  const version = series('zeta-provision version', () => measure(process.execPath, [bin, 'version']));
  const nodeAlone = series('node -e 0', () => measure(process.execPath, ['-e', '0']));

  const results = {
    date: new Date().toISOString(),
    node: process.version,
    loadavg: readFileSync('/proc/loadavg', 'utf8').trim(),
    runs,
    series: [fresh, upToDate, shell, version, nodeAlone],
    ratios: { freshVsShell: fresh.wallMs / shell.wallMs, upToDateVsShell: upToDate.wallMs / shell.wallMs },
    versionAboveNodeMs: version.wallMs - nodeAlone.wallMs,
  };
  mkdirSync(path.join(root, 'bench', 'results'), { recursive: true });
  writeFileSync(path.join(root, 'bench', 'results', 'latest.json'), JSON.stringify(results, null, 2) + '\n');
  console.log(`example payload, median of ${runs} runs (wall ms, peak RSS MiB):`);
  for (const s of results.series) console.log(`  ${s.name.padEnd(58)} ${s.wallMs.toFixed(0).padStart(6)} ms  ${s.peakRssMiB.toFixed(1).padStart(6)} MiB`);
  console.log(
    `  ratio fresh/shell ${results.ratios.freshVsShell.toFixed(2)}×, up-to-date/shell ${results.ratios.upToDateVsShell.toFixed(2)}×; version ${results.versionAboveNodeMs.toFixed(0)} ms above node -e 0`,
  );
  console.log(`  load average at start: ${results.loadavg}`);
  console.log(`results: bench/results/latest.json (${execFileSync('uname', ['-m']).toString().trim()}, ${os.cpus().length} cores)`);
} finally {
  rmSync(work, { recursive: true, force: true });
}
