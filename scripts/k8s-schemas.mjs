#!/usr/bin/env node
// Regenerates test/manifests/schemas/kubernetes-<version>.json, the offline schemas the manifest tests
// validate every rendered object against (test/manifests/k8s-schema.ts).
//
//   node scripts/k8s-schemas.mjs
//
// Source: @kubernetes/client-node, whose models are generated from Kubernetes' own OpenAPI document,
// one client release per Kubernetes release (the generated files name it: "release-1.27", "v1.34.0").
// The script fetches each release with `npm pack` (the npm registry, the ordinary client), checks
// that version line, and keeps per model type: every field's JSON name and type, and which fields are
// required (from the .d.ts: `'name': string` vs `'image'?: string`). Only the types reachable from
// the kinds in ROOTS are kept. Each file records the package, version and npm integrity it came from.
// Tests never fetch anything: they read the committed files.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const outDir = path.join(root, 'test', 'manifests', 'schemas');

/** Kubernetes release → the @kubernetes/client-node release generated from its OpenAPI document. */
const RELEASES = [
  { kubernetes: '1.27', client: '0.19.0', marker: /release-1\.27\b/ },
  { kubernetes: '1.29', client: '0.21.0', marker: /release-1\.29\b/ },
  { kubernetes: '1.34', client: '1.4.0', marker: /v1\.34\.\d+\b/ },
];

/** apiVersion + kind → model type, for every kind a manifest here may render. */
const ROOTS = {
  'v1 ConfigMap': 'V1ConfigMap',
  'v1 Secret': 'V1Secret',
  'v1 Service': 'V1Service',
  'v1 ServiceAccount': 'V1ServiceAccount',
  'v1 PersistentVolumeClaim': 'V1PersistentVolumeClaim',
  'v1 Pod': 'V1Pod',
  'v1 Namespace': 'V1Namespace',
  'apps/v1 Deployment': 'V1Deployment',
  'apps/v1 StatefulSet': 'V1StatefulSet',
  'apps/v1 DaemonSet': 'V1DaemonSet',
  'batch/v1 Job': 'V1Job',
  'batch/v1 CronJob': 'V1CronJob',
  'networking.k8s.io/v1 NetworkPolicy': 'V1NetworkPolicy',
  'rbac.authorization.k8s.io/v1 Role': 'V1Role',
  'rbac.authorization.k8s.io/v1 RoleBinding': 'V1RoleBinding',
  'rbac.authorization.k8s.io/v1 ClusterRole': 'V1ClusterRole',
  'rbac.authorization.k8s.io/v1 ClusterRoleBinding': 'V1ClusterRoleBinding',
  'policy/v1 PodDisruptionBudget': 'V1PodDisruptionBudget',
  'node.k8s.io/v1 RuntimeClass': 'V1RuntimeClass',
};

function modelsDir(pkgDir) {
  for (const d of ['dist/gen/models', 'dist/gen/model']) {
    try {
      readdirSync(path.join(pkgDir, d));
      return path.join(pkgDir, d);
    } catch {}
  }
  throw new Error(`no generated models in ${pkgDir}`);
}

/** Per class: [{baseName, name, type}] from `X.attributeTypeMap = [...]` (a JSON literal). */
function readModels(dir) {
  const models = new Map();
  for (const file of readdirSync(dir).filter((f) => f.endsWith('.js'))) {
    const js = readFileSync(path.join(dir, file), 'utf8');
    const m = /(\w+)\.attributeTypeMap = (\[[\s\S]*?\n\]);/.exec(js);
    if (!m) continue;
    const dts = readFileSync(path.join(dir, file.replace(/\.js$/, '.d.ts')), 'utf8');
    const body = new RegExp(`class ${m[1]} \\{([\\s\\S]*?)\\n\\}`).exec(dts)?.[1] ?? '';
    const required = new Set([...body.matchAll(/^\s+'([^']+)':/gm)].map((r) => r[1]));
    models.set(m[1], { attrs: JSON.parse(m[2]), required, header: js.slice(0, 400) });
  }
  return models;
}

/** The model names a type string refers to: `Array<V1Container>`, `{ [key: string]: V1X; }`, `V1X`. */
function refs(type) {
  return [...type.matchAll(/\b([A-Z]\w*)\b/g)].map((m) => m[1]).filter((n) => !['Array', 'Date', 'IntOrString'].includes(n));
}

function extract(release) {
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'k8s-schemas-'));
  try {
    const out = execFileSync('npm', ['pack', '--json', '--pack-destination', tmp, `@kubernetes/client-node@${release.client}`], { encoding: 'utf8' });
    const [{ filename, integrity }] = JSON.parse(out);
    execFileSync('tar', ['-xzf', path.join(tmp, path.basename(filename)), '-C', tmp]);
    const models = readModels(modelsDir(path.join(tmp, 'package')));
    const probe = models.get('V1Container');
    if (!probe || !release.marker.test(probe.header))
      throw new Error(`@kubernetes/client-node@${release.client} is not generated from Kubernetes ${release.kubernetes}`);

    const types = {};
    const todo = Object.values(ROOTS).filter((t) => models.has(t));
    while (todo.length) {
      const name = todo.pop();
      if (types[name]) continue;
      const model = models.get(name);
      if (!model) throw new Error(`${name} is referenced but not generated`);
      const fields = {};
      const required = [];
      for (const a of model.attrs) {
        fields[a.baseName] = a.type;
        if (model.required.has(a.name)) required.push(a.baseName);
        for (const r of refs(a.type)) if (!types[r]) todo.push(r);
      }
      types[name] = required.length ? { fields, required } : { fields };
    }
    const kinds = Object.fromEntries(Object.entries(ROOTS).filter(([, t]) => types[t]));
    return {
      kubernetes: release.kubernetes,
      source: { package: '@kubernetes/client-node', version: release.client, integrity, generatedBy: 'scripts/k8s-schemas.mjs' },
      kinds,
      types: Object.fromEntries(Object.entries(types).sort(([a], [b]) => a.localeCompare(b))),
    };
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

for (const release of RELEASES) {
  const schema = extract(release);
  const file = path.join(outDir, `kubernetes-${release.kubernetes}.json`);
  // One type per line: small diffs when a release is added or regenerated.
  const lines = Object.entries(schema.types).map(([n, t]) => `    ${JSON.stringify(n)}: ${JSON.stringify(t)}`);
  const text = `{\n  "kubernetes": ${JSON.stringify(schema.kubernetes)},\n  "source": ${JSON.stringify(schema.source)},\n  "kinds": ${JSON.stringify(schema.kinds)},\n  "types": {\n${lines.join(',\n')}\n  }\n}\n`;
  writeFileSync(file, text);
  console.log(`${path.relative(root, file)}: ${Object.keys(schema.types).length} types, ${Object.keys(schema.kinds).length} kinds`);
}
