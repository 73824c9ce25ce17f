// node bench/kube.mjs (after npm run build): 50 ConfigMaps of 4 KiB published to the in-process API
// double with 5 ms latency per request — zeta-provision's first apply, its no-change runs, the shell
// CronJob's `kubectl create configmap --dry-run=client -o yaml | kubectl apply -f -` loop doing the same
// work, and `kubectl diff` of the same 50 objects (the closest kubectl has to "is the live state what
// was applied?"). Reports requests, writes and wall time; writes bench/results/kube.json. Not a timed test.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const COUNT = Number(process.env.BENCH_CONFIGMAPS ?? 50);
const LATENCY_MS = Number(process.env.BENCH_LATENCY_MS ?? 5);
const NS = 'zeta';
const RUNS = Number(process.env.BENCH_RUNS ?? 3);

// The double is TypeScript under test/support; compile it next to node_modules so `yaml` resolves.
const build = path.join(root, 'node_modules', '.cache', 'zeta-bench-kube-api');
execFileSync(
  process.execPath,
  [
    path.join(root, 'node_modules', 'typescript', 'bin', 'tsc'),
    '--outDir',
    build,
    '--module',
    'nodenext',
    '--moduleResolution',
    'nodenext',
    '--target',
    'es2022',
    '--skipLibCheck',
    '--types',
    'node',
    path.join(root, 'test', 'support', 'kube-api', 'index.ts'),
  ],
  { stdio: 'inherit' },
);
const { startKubeApi } = await import(pathToFileURL(path.join(build, 'index.js')).href);

const work = mkdtempSync(path.join(os.tmpdir(), 'zp-bench-kube-'));
// No token check: kubectl does not send a bearer token to a plain-HTTP server.
const api = await startKubeApi({ rbac: 'allow-all', latencyMs: LATENCY_MS });
const results = { configMaps: COUNT, bytesEach: 4096, latencyMs: LATENCY_MS, loadavg: readFileSync('/proc/loadavg', 'utf8').trim(), runs: [] };
try {
  const payload = path.join(work, 'payload');
  mkdirSync(payload);
  const lines = ['configMaps:'];
  for (let i = 0; i < COUNT; i++) {
    const name = `cm-${String(i).padStart(2, '0')}`;
    writeFileSync(path.join(payload, `${name}.conf`), `# ${name}\n` + 'x'.repeat(4096 - name.length - 4) + '\n');
    lines.push(`  - name: ${name}`, `    files: [${name}.conf]`);
  }
  writeFileSync(path.join(work, 'config.yaml'), lines.join('\n') + '\n');
  const kubeconfig = path.join(work, 'kubeconfig');
  writeFileSync(
    kubeconfig,
    `apiVersion: v1\nkind: Config\nclusters: [{name: double, cluster: {server: "${api.url}", insecure-skip-tls-verify: true}}]\nusers: [{name: u, user: {token: bench-token}}]\ncontexts: [{name: d, context: {cluster: double, user: u, namespace: ${NS}}}]\ncurrent-context: d\n`,
  );

  // The double runs in this process, so the programs under test run as children without blocking it.
  const run = (cmd, args, env) =>
    new Promise((resolve) => {
      const child = spawn(cmd, args, { env: { PATH: process.env.PATH, HOME: work, ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
      let stderr = '';
      child.stderr.on('data', (d) => (stderr += d));
      child.on('close', (status) => resolve({ status, stderr }));
    });
  const measure = async (label, fn, okStatus = [0]) => {
    const before = api.requests.length;
    const t0 = process.hrtime.bigint();
    const r = await fn();
    const wallMs = Math.round(Number(process.hrtime.bigint() - t0) / 1e6);
    const reqs = api.requests.slice(before);
    // Writes that were stored: dry-run requests (kubectl diff) validate only.
    const writes = reqs.filter((q) => ['create', 'patch', 'delete'].includes(q.verb) && !q.dryRun).length;
    const entry = { label, wallMs, requests: reqs.length, writes, exit: r.status, ok: okStatus.includes(r.status) };
    if (!entry.ok) entry.error = r.stderr.slice(-600);
    results.runs.push(entry);
    console.log(
      `${label.padEnd(52)} ${String(entry.requests).padStart(5)} requests (${String(writes).padStart(3)} writes) ${String(wallMs).padStart(7)} ms exit ${r.status}${entry.ok ? '' : '  FAILED: ' + entry.error}`,
    );
    return entry;
  };

  const bin = path.join(root, 'bin', 'zeta-provision');
  // One pass over the benchmark payload; the target is the API double unless told otherwise.
  const zp = (ns, extra, target = ['--kubeconfig', kubeconfig]) =>
    run(process.execPath, [
      bin,
      'run',
      '--config',
      path.join(work, 'config.yaml'),
      '--source',
      `dir:${payload}`,
      ...target,
      '--namespace',
      ns,
      '--log-format',
      'json',
      ...extra,
    ]);
  // Each repetition in a namespace of its own, so every "first apply" starts from nothing.
  for (let i = 0; i < RUNS; i++) {
    const ns = `${NS}-${i}`;
    await measure('zeta-provision: first apply', () => zp(ns, []));
    await measure('zeta-provision: no change (up to date)', () => zp(ns, []));
    await measure('zeta-provision: no change (--force: plan from one LIST)', () => zp(ns, ['--force']));
  }
  const kubectl = spawnSync('kubectl', ['version', '--client'], { encoding: 'utf8' });
  if (kubectl.status === 0) {
    const script = path.join(work, 'kubectl-loop.sh');
    writeFileSync(
      script,
      `set -e\nfor f in ${payload}/*.conf; do n=$(basename $f .conf)\n  kubectl create configmap $n --from-file=$f --dry-run=client -o yaml | kubectl --kubeconfig ${kubeconfig} -n ${NS}-kubectl apply --validate=false -f - >/dev/null\ndone\n`,
    );
    // The same work in its own namespace, so both start from nothing.
    await measure('kubectl create | kubectl apply loop: first apply', () => run('bash', [script]));
    await measure('kubectl create | kubectl apply loop: no change', () => run('bash', [script]));
    // `kubectl diff` of the same objects against the live state (what an operator would run to see
    // drift): the manifests come from zeta-provision --kube-out, so they are byte for byte the objects
    // the API target applies (labels, annotations included); kubectl diffs them by server-side dry run.
    const manifests = path.join(work, 'manifests');
    await zp(`${NS}-0`, [], ['--kube-out', manifests]);
    rmSync(path.join(manifests, '.zeta-provision.json'), { force: true });
    for (const mode of [['--server-side', '--field-manager=zeta-provision'], []]) {
      const label = `kubectl diff ${mode.length ? '--server-side ' : ''}(${COUNT} objects, no change)`;
      // kubectl diff exits 1 when it reports differences, above 1 on errors.
      await measure(label, () => run('kubectl', ['--kubeconfig', kubeconfig, '-n', `${NS}-0`, 'diff', ...mode, '-f', manifests]), [0, 1]);
    }
  } else results.kubectl = 'not installed';
  // Medians per label: the machine is shared, single runs are noisy.
  const labels = [...new Set(results.runs.map((r) => r.label))];
  results.summary = labels.map((label) => {
    const rs = results.runs.filter((r) => r.label === label);
    const med = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
    return {
      label,
      runs: rs.length,
      medianWallMs: med(rs.map((r) => r.wallMs)),
      requests: med(rs.map((r) => r.requests)),
      writes: med(rs.map((r) => r.writes)),
      ok: rs.every((r) => r.ok),
    };
  });
  console.log('\nmedians:');
  for (const x of results.summary)
    console.log(
      `${x.label.padEnd(56)} ${String(x.requests).padStart(5)} requests (${String(x.writes).padStart(3)} writes) ${String(x.medianWallMs).padStart(7)} ms  (n=${x.runs})`,
    );
  mkdirSync(path.join(root, 'bench', 'results'), { recursive: true });
  writeFileSync(path.join(root, 'bench', 'results', 'kube.json'), JSON.stringify(results, null, 2) + '\n');
} finally {
  await api.stop();
  rmSync(work, { recursive: true, force: true });
}
