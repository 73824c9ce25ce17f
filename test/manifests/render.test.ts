/**
 * `kubectl kustomize` renders the base and every overlay; the rendered objects are checked for what
 * an operator relies on: restricted Pod Security, no subPath on provisioned mounts, one zeta-provision
 * image, the config ConfigMap where --config points, env twins that exist, sidecar arguments the CLI
 * accepts, consumers mounting what zeta-provision publishes.
 */
import { access, readFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseCommandLine } from '../../src/cli/index.js';
import { RUN_OPTIONS, envName } from '../../src/cli/options.js';
import { parseConfigText } from '../../src/config/index.js';
import { DEFAULT_OUTPUT_NAMES } from '../../src/config/process.js';
import type { Config } from '../../src/config/types.js';
import { parseSourceReference } from '../../src/source/reference.js';
import { REPO_ROOT } from '../support/cli.js';
import { allContainers, mountFor, podSpecs, render, volumeOf, zetaContainers, type Container, type K8sObject, type PodSpec } from './rendered.js';

/* eslint-disable @typescript-eslint/no-explicit-any -- rendered YAML is untyped by nature */

const KUSTOMIZATIONS = ['base', 'overlays/classic', 'overlays/gematik', 'overlays/classic-plain-sidecars'];
/**
 * Peak RSS measured per layout (GNU time, Node 20; README "Benchmarks"): pulls and the classic layout
 * stay under 120 MiB, the gematik profile's processors on the real test payload reached 160 MiB.
 */
const MEASURED_PEAK_MIB: Record<string, number> = { base: 120, 'overlays/classic': 120, 'overlays/gematik': 160, 'overlays/classic-plain-sidecars': 120 };
/** Created by the operator (README "Installing in a cluster"), never rendered: trust anchors and credentials. */
const OPERATOR_PROVIDED = ['zeta-provision-image-signing', 'zeta-provision-registry-ca', 'zeta-provision-pull-secret'];

/** The config the CronJob's `run` uses: the rendered config ConfigMap behind --config, or the shipped --profile file. */
async function cronJobConfig(
  objects: K8sObject[],
  dir: string,
): Promise<{ config: Config; flags: Record<string, any>; env: { name: string; value: string }[] }> {
  const { spec, container } = zetaContainers(objects).find((z) => z.owner.startsWith('CronJob/'))!;
  const cmd = parseCommandLine(container.args, {}, '0');
  expect(cmd.name).toBe('run');
  const flags = (cmd as Extract<typeof cmd, { name: 'run' }>).flags;
  if (flags.profile !== undefined) {
    // The image ships config/ (package.json "files"); the profile is read from there, not from a copy.
    expect(flags.config).toBeUndefined();
    const pkg = JSON.parse(await readFile(path.join(REPO_ROOT, 'package.json'), 'utf8'));
    expect(pkg.files).toContain('config/');
    const file = path.join(REPO_ROOT, 'config', `${flags.profile}.yaml`);
    return { config: parseConfigText(await readFile(file, 'utf8'), file, path.dirname(file)), flags, env: container.env };
  }
  const configMount = mountFor(container, flags.config!);
  const configVolume = volumeOf(spec, configMount.name);
  const configMap = objects.find((o) => o.kind === 'ConfigMap' && o.metadata.name === configVolume.configMap.name);
  expect(configMap.metadata.name).toMatch(/^zeta-provision-config-[a-z0-9]{10}$/);
  return {
    config: parseConfigText(configMap.data[path.posix.relative(configMount.mountPath, flags.config!)], `${dir} config`, '/'),
    flags,
    env: container.env,
  };
}

function memoryBytes(q: string): number {
  const m = /^(\d+)(Ki|Mi|Gi)?$/.exec(q);
  if (!m) throw new Error(`unexpected quantity ${q}`);
  return Number(m[1]) * { Ki: 1024, Mi: 1024 ** 2, Gi: 1024 ** 3, '': 1 }[m[2] ?? '']!;
}

describe.each(KUSTOMIZATIONS)('manifests/%s', (dir) => {
  it('renders an hourly, non-overlapping, bounded CronJob', async () => {
    const { objects } = await render(dir);
    const cronJobs = objects.filter((o) => o.kind === 'CronJob');
    expect(cronJobs).toHaveLength(1);
    const cj = cronJobs[0].spec;
    expect(cj.schedule).toMatch(/^\d{1,2} \* \* \* \*$/);
    expect(cj).toMatchObject({ concurrencyPolicy: 'Forbid', successfulJobsHistoryLimit: 3, failedJobsHistoryLimit: 3 });
    // The schedule's zone is explicit, not the controller's local time; finished Jobs do not pile up.
    expect(cj.timeZone).toBe('Etc/UTC');
    expect(cj.jobTemplate.spec.ttlSecondsAfterFinished).toBeGreaterThanOrEqual(3600);
    expect(cj.startingDeadlineSeconds).toBeGreaterThan(0);
    // A pass must end before the next hour starts one.
    expect(cj.jobTemplate.spec.activeDeadlineSeconds).toBeLessThan(3600);
    expect(cj.jobTemplate.spec.backoffLimit).toBeGreaterThanOrEqual(1);
    // Exit 3 (verification failed) is not retried: the same payload fails the same way.
    expect(cj.jobTemplate.spec.podFailurePolicy.rules[0]).toMatchObject({
      action: 'FailJob',
      onExitCodes: { operator: 'In', values: expect.arrayContaining([3]) },
    });
  });

  it('runs every pod under the restricted Pod Security profile', async () => {
    const { objects } = await render(dir);
    for (const { owner, spec } of podSpecs(objects)) {
      expect(spec.securityContext, owner).toMatchObject({ runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } });
      expect(spec.securityContext.runAsUser, owner).toBeGreaterThan(0);
      expect(spec.hostNetwork ?? false, owner).toBe(false);
      expect(spec.hostPID ?? false, owner).toBe(false);
      expect(
        spec.volumes.filter((v: object) => 'hostPath' in v),
        owner,
      ).toEqual([]);
      for (const c of allContainers(spec)) {
        expect(c.securityContext, `${owner} ${c.name}`).toMatchObject({ allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } });
        expect(c.securityContext.privileged ?? false).toBe(false);
        expect(c.securityContext.capabilities.add ?? []).toEqual([]);
      }
    }
    for (const { owner, container } of zetaContainers(objects)) {
      expect(container.securityContext, `${owner} ${container.name}`).toMatchObject({ readOnlyRootFilesystem: true, runAsNonRoot: true });
      expect(container.resources.limits.memory, `${owner} ${container.name}`).toMatch(/^\d+Mi$/);
    }
  });

  it('gives the CronJob a memory-backed /tmp within its memory limit, measured from the benchmarks', async () => {
    const { objects } = await render(dir);
    const cronJob = zetaContainers(objects).find((z) => z.owner.startsWith('CronJob/'))!;
    const tmp = volumeOf(cronJob.spec, mountFor(cronJob.container, '/tmp').name);
    expect(tmp.emptyDir.medium).toBe('Memory');
    // tmpfs pages count against the container's memory: a full /tmp plus the measured peak RSS and a
    // quarter of headroom must fit under the limit.
    const limit = memoryBytes(cronJob.container.resources.limits.memory);
    expect(limit - memoryBytes(tmp.emptyDir.sizeLimit)).toBeGreaterThanOrEqual(MEASURED_PEAK_MIB[dir]! * 1.25 * 1024 ** 2);
    expect(memoryBytes(cronJob.container.resources.requests.memory)).toBeLessThanOrEqual(limit);
  });

  it('mounts provisioned data as directories, never with subPath, read-only for consumers', async () => {
    const { objects, text } = await render(dir);
    // subPath mounts resolve ..data once and never see a new generation.
    expect(text).not.toMatch(/subPath/);
    const pvc = objects.find((o) => o.kind === 'PersistentVolumeClaim');
    expect(pvc.spec.accessModes).toEqual(['ReadWriteMany']);
    for (const { owner, spec } of podSpecs(objects)) {
      for (const v of spec.volumes.filter((x: any) => x.persistentVolumeClaim)) {
        expect(v.persistentVolumeClaim.claimName, owner).toBe(pvc.metadata.name);
        const writer = owner.startsWith('CronJob/');
        expect(v.persistentVolumeClaim.readOnly ?? false, owner).toBe(!writer);
        for (const c of allContainers(spec)) {
          for (const m of (c.volumeMounts ?? []).filter((mm: any) => mm.name === v.name)) expect(m.readOnly ?? false, `${owner} ${c.name}`).toBe(!writer);
        }
      }
    }
  });

  it('points --config at the generated config ConfigMap, --volume at the claim, env twins at mounted files', async () => {
    const { objects } = await render(dir);
    const rendered = new Set(objects.filter((o) => o.kind === 'ConfigMap' || o.kind === 'Secret').map((o) => o.metadata.name));
    const { spec, container } = zetaContainers(objects).find((z) => z.owner.startsWith('CronJob/'))!;
    const { config, flags } = await cronJobConfig(objects, dir);
    expect(config.verify.length).toBeGreaterThan(0);

    expect(volumeOf(spec, mountFor(container, flags.volume!).name).persistentVolumeClaim).toBeTruthy();
    expect(mountFor(container, flags.volume!).mountPath).toBe(flags.volume);

    const twins = new Map(RUN_OPTIONS.map((s) => [envName(s), s]));
    const env = container.env as { name: string; value: string }[];
    for (const e of env.filter((x) => x.name.startsWith('ZETA_PROVISION_'))) {
      expect(twins.has(e.name), e.name).toBe(true);
      if (!e.value.startsWith('/')) continue;
      // A path twin must land in a mount of this container, whose source is rendered or operator-provided.
      const mount = mountFor(container, e.value);
      expect(mount, e.name).toBeTruthy();
      const v = volumeOf(spec, mount.name);
      const source = v.configMap?.name ?? v.secret?.secretName;
      expect(source, e.name).toBeTruthy();
      expect(rendered.has(source) || OPERATOR_PROVIDED.includes(source), `${e.name}: ${source}`).toBe(true);
      expect(v.configMap?.optional ?? v.secret?.optional ?? false, `${source} must not be optional: a missing anchor stops the Job`).toBe(false);
    }
    expect(env.map((e) => e.name)).toEqual(
      expect.arrayContaining(['ZETA_PROVISION_IMAGE_TRUST_CHAIN', 'ZETA_PROVISION_REGISTRY_CA', 'ZETA_PROVISION_REGISTRY_AUTH_FILE']),
    );

    // The README tells operators which objects to create.
    const readme = await readFile(path.join(REPO_ROOT, 'README.md'), 'utf8');
    for (const name of OPERATOR_PROVIDED) expect(readme, name).toContain(name);
  });

  it('binds the ServiceAccount the CronJob uses', async () => {
    const { objects } = await render(dir);
    const sa = zetaContainers(objects).find((z) => z.owner.startsWith('CronJob/'))!.spec.serviceAccountName;
    expect(objects.filter((o) => o.kind === 'ServiceAccount').map((o) => o.metadata.name)).toEqual([sa]);
    const hasRbac = await access(path.join(REPO_ROOT, 'manifests', 'base', 'rbac.yaml')).then(
      () => true,
      () => false,
    );
    // RBAC itself is the Kubernetes publishing issue's; once it is in the base, it must bind this account.
    if (hasRbac) {
      const bindings = objects.filter((o) => o.kind === 'RoleBinding');
      expect(bindings.flatMap((b) => b.subjects.map((s: { name: string }) => s.name))).toContain(sa);
    }
  });
});

describe.each(['overlays/classic', 'overlays/gematik', 'overlays/classic-plain-sidecars'])('manifests/%s consumers', (dir) => {
  it('use one pinned zeta-provision image, the overlay namespace, and ConfigMaps zeta-provision publishes', async () => {
    const { objects } = await render(dir);
    const images = new Set(zetaContainers(objects).map((z) => z.container.image));
    expect([...images]).toHaveLength(1);
    // By digest: a tag can be moved to other bytes, a digest cannot.
    expect([...images][0]).toMatch(/^[\w.-]+(\/[\w.-]+)+@sha256:[0-9a-f]{64}$/);
    expect([...images][0]).not.toContain('ghcr.io/example');

    const cronJob = objects.find((o) => o.kind === 'CronJob');
    const { config, env } = await cronJobConfig(objects, dir);
    // The image to provision: from the config, else from its env twin (or gematik's name for it).
    const source = config.source ?? env.find((e) => ['ZETA_PROVISION_SOURCE', 'PROVISIONING_CONTAINER_NAME'].includes(e.name))?.value;
    expect(source).toBeTruthy();
    expect(parseSourceReference(source!).kind, source).toBe('registry');
    // zeta-provision writes its ConfigMaps where the consumers are: the config's namespace, or (none
    // set, no flag) the in-cluster ServiceAccount's, which is the CronJob's.
    expect(env.map((e) => e.name)).not.toContain('ZETA_PROVISION_NAMESPACE');
    expect(config.namespace ?? cronJob.metadata.namespace).toBe(cronJob.metadata.namespace);
    const published = new Set(config.configMaps.map((c) => c.name));
    const rendered = new Set(objects.filter((o) => o.kind === 'ConfigMap').map((o) => o.metadata.name));
    const consumers = podSpecs(objects).filter((p) => !p.owner.startsWith('CronJob/'));
    expect(consumers.length).toBeGreaterThanOrEqual(3);
    // No consumer (nor its sidecar) calls the API: no ServiceAccount token in their pods. The CronJob needs its own.
    for (const { owner, spec } of consumers) expect(spec.automountServiceAccountToken, owner).toBe(false);
    expect(podSpecs(objects).find((p) => p.owner.startsWith('CronJob/'))!.spec.automountServiceAccountToken ?? true).toBe(true);
    for (const { owner, spec } of consumers) {
      for (const v of spec.volumes.filter((x: any) => x.configMap)) {
        expect(rendered.has(v.configMap.name) || published.has(v.configMap.name), `${owner} mounts ConfigMap ${v.configMap.name}`).toBe(true);
      }
    }
    // Keycloak reads the provisioning volume.
    const keycloak = consumers.find((c) => c.owner === 'Deployment/keycloak')!;
    expect(keycloak.spec.volumes.some((v: any) => v.persistentVolumeClaim?.claimName === 'zeta-provisioning')).toBe(true);

    // Every workload the config rolls out is rendered here, mounts the ConfigMap that triggers it, and
    // the Role allows reading and patching it (and the ConfigMaps) by name.
    const role = objects.find((o) => o.kind === 'Role');
    const named = (group: string, resource: string) =>
      new Set(
        role.rules
          .filter((r: any) => r.apiGroups.includes(group) && r.resources.includes(resource) && r.verbs.includes('get') && r.verbs.includes('patch'))
          .flatMap((r: any) => r.resourceNames ?? []),
      );
    expect(named('', 'configmaps')).toEqual(new Set(config.configMaps.map((c) => c.name)));
    const rolledOut = config.configMaps.flatMap((c) => c.consumers.map((ref) => ({ ref, target: c.name })));
    for (const { ref, target } of rolledOut) {
      const [kind, name] = ref.split('/') as [string, string];
      const workload = consumers.find((c) => c.owner.toLowerCase() === `${kind}/${name}`);
      expect(workload, ref).toBeTruthy();
      expect(
        workload!.spec.volumes.some((v: any) => v.configMap?.name === target),
        `${ref} mounts ${target}`,
      ).toBe(true);
      expect(named('apps', `${kind}s`).has(name), `Role: get/patch ${kind}s ${name}`).toBe(true);
    }
  });

  it('give every watch sidecar arguments the CLI accepts, watching a directory its pod mounts', async () => {
    const { objects } = await render(dir);
    for (const { owner, spec, container } of zetaContainers(objects).filter((z) => z.container.args[0] === 'watch')) {
      const cmd = parseCommandLine(container.args, {}, '0');
      expect(cmd.name, owner).toBe('watch');
      const { options } = cmd as Extract<typeof cmd, { name: 'watch' }>;
      const watched = mountFor(container, options.dir);
      expect(watched.mountPath, owner).toBe(options.dir);
      // The consumer container mounts the same volume: the sidecar sees what the consumer reads.
      const consumer = allContainers(spec).find((c: Container) => c !== container && (c.volumeMounts ?? []).some((m: any) => m.name === watched.name));
      if (options.action.kind === 'signal') {
        expect(consumer, owner).toBeTruthy();
        expect(spec.shareProcessNamespace, `${owner}: signalling another container needs a shared process namespace`).toBe(true);
        // Without CAP_KILL a signal needs the same UID: no container overrides the pod's user.
        for (const c of allContainers(spec)) expect(c.securityContext.runAsUser ?? spec.securityContext.runAsUser, owner).toBe(spec.securityContext.runAsUser);
      }
      if (options.action.kind === 'http') {
        expect(options.action.url.hostname, owner).toBe('127.0.0.1');
        expect(options.action.bodyFile!.startsWith(`${options.dir}/`), owner).toBe(true);
        expect(options.onStart, `${owner}: OPA starts empty and needs the first PUT`).toBe('always');
      }
    }
  });
});

/** The file a container reads through an env value or a `--set-file=…=PATH` argument, as (volume, key). */
function readsFrom(spec: PodSpec, container: Container, file: string): { volume: any; key: string } {
  const mount = mountFor(container, file);
  expect(mount, `${container.name}: ${file} is under a mount`).toBeTruthy();
  return { volume: volumeOf(spec, mount.name), key: path.posix.relative(mount.mountPath, file) };
}

describe('manifests/overlays/gematik', () => {
  it('runs the shipped profile and wires its outputs: truststores on the volume for Keycloak, policy-signer.pub for OPA, roots.json for the PEP', async () => {
    const { objects } = await render('overlays/gematik');
    const { config, flags } = await cronJobConfig(objects, 'overlays/gematik');
    expect(flags.profile).toBe('gematik');
    // No second copy of the profile: the base's classic config is not rendered, nothing mounts one.
    expect(objects.filter((o) => o.kind === 'ConfigMap')).toEqual([]);
    const cronJob = zetaContainers(objects).find((z) => z.owner.startsWith('CronJob/'))!;
    expect(cronJob.container.volumeMounts.map((m: any) => m.mountPath)).not.toContain('/etc/zeta-provision/config');

    const pods = new Map(podSpecs(objects).map((p) => [p.owner, p.spec]));
    // An output's file name (the ConfigMap key unless one is given): the profile's rename, else gematik's.
    const fileName = (id: keyof typeof DEFAULT_OUTPUT_NAMES) => config.process?.names[id] ?? DEFAULT_OUTPUT_NAMES[id];
    const outputOf = (cm: string, key: string) =>
      config.configMaps.find((c) => c.name === cm)?.files.flatMap((f) => ('output' in f && (f.key || fileName(f.output)) === key ? [f.output] : []))[0];

    // Keycloak: every truststore path it is given is an output the profile writes to the volume.
    const keycloak = pods.get('Deployment/keycloak')!;
    const kc = keycloak.containers[0];
    const onVolume = new Set(config.volume.outputs.map(fileName));
    const stores = kc.env.filter((e: any) => /_FILE$/.test(e.name));
    expect(stores.map((e: any) => e.name).sort()).toEqual([
      'OCSP_SIGNERS_TRUSTSTORE_FILE',
      'SMCB_TRUSTSTORE_FILE',
      'SMCB_TRUSTSTORE_META_FILE',
      'TPM_TRUSTSTORE_FILE',
    ]);
    for (const e of stores) {
      const { volume, key } = readsFrom(keycloak, kc, e.value);
      expect(volume.persistentVolumeClaim?.claimName, e.name).toBe('zeta-provisioning');
      expect(onVolume.has(key), `${e.name}: ${key} is a volume output`).toBe(true);
    }

    // OPA: --set-file points into the ConfigMap carrying the policySignerKey output.
    const opa = pods.get('Deployment/opa')!;
    const setFile = (opa.containers[0].args as string[])
      .find((a) => a.startsWith('--set-file=keys.policy-signer.key='))!
      .split('=')
      .pop()!;
    const signer = readsFrom(opa, opa.containers[0], setFile);
    expect(outputOf(signer.volume.configMap.name, signer.key)).toBe('policySignerKey');

    // The PEP: ZETA_ROOTS_JSON points into the ConfigMap carrying roots.json.
    const pep = pods.get('Deployment/pep')!;
    const rootsFile = pep.containers[0].env.find((e: any) => e.name === 'ZETA_ROOTS_JSON').value;
    const roots = readsFrom(pep, pep.containers[0], rootsFile);
    expect(outputOf(roots.volume.configMap.name, roots.key)).toBe('rootsJson');

    // Both read their file only at start: the profile rolls them out, and the Role names exactly them.
    expect(config.configMaps.map((c) => [c.name, c.consumers])).toEqual([
      [signer.volume.configMap.name, ['deployment/opa']],
      [roots.volume.configMap.name, ['deployment/pep']],
    ]);
    const role = objects.find((o) => o.kind === 'Role');
    expect(role.rules.filter((r: any) => r.apiGroups.includes('apps'))).toEqual([
      { apiGroups: ['apps'], resources: ['deployments'], resourceNames: ['opa', 'pep'], verbs: ['get', 'patch'] },
    ]);
  });
});

describe('manifests/overlays/classic', () => {
  it('has the nginx reload sidecar and the OPA policy push', async () => {
    const { objects } = await render('overlays/classic');
    const sidecars = zetaContainers(objects).filter((z) => z.container.args[0] === 'watch');
    expect(sidecars.map((s) => `${s.owner}/${s.container.name}`).sort()).toEqual(['Deployment/nginx/reload', 'Deployment/opa/policy-push']);
    const nginx = sidecars.find((s) => s.owner === 'Deployment/nginx')!.container.args;
    expect(nginx).toEqual(expect.arrayContaining(['--signal', 'HUP', '--process-name', 'nginx']));
    const opa = sidecars.find((s) => s.owner === 'Deployment/opa')!.container.args;
    expect(opa.join(' ')).toMatch(/--http PUT http:\/\/127\.0\.0\.1:8181\/v1\/policies\/\w+ --body-file \/policies\/policy\.rego/);
  });
});
