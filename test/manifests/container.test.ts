/**
 * The Containerfile and the image it builds. The pinned public bases cannot be pulled here, so the
 * image is built by scripts/build-image.sh (buildah) on local stand-ins: the runtime stage on a base
 * made of this machine's node, the libraries ldd names and the CA bundle (no shell, no npm); the build
 * stage on this machine's node/npm, bind-mounted read-only. The built image is then run as its
 * numeric user on a read-only root filesystem: `version`, and `verify` of the example payload.
 */
import { mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { afterEach, describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../support/cli.js';
import { imageConfig, layerSizes, makeNodeBase, mountImage, privateBuildah, runInRootfs } from '../support/image.js';
import { requireProgram } from '../support/programs.js';
import { startRegistry } from '../support/registry.js';
import { useTempDirs } from '../support/tmp.js';
import { render, zetaContainers } from './rendered.js';

const tempDir = useTempDirs();
const MB = 1_000_000;
const stops: (() => Promise<void>)[] = [];
afterEach(async () => {
  await Promise.all(stops.splice(0).map((stop) => stop()));
});

interface Stage {
  from: string;
  name?: string;
  lines: string[];
}

function stages(text: string): Stage[] {
  const out: Stage[] = [];
  // Join continuation lines, drop comments.
  const lines = text
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'));
  for (const line of lines) {
    const from = /^FROM\s+(\S+)(?:\s+AS\s+(\S+))?$/i.exec(line);
    if (from) out.push({ from: from[1]!, name: from[2], lines: [] });
    else out.at(-1)?.lines.push(line);
  }
  return out;
}

/** `ARG NAME=default` lines before the first FROM (the bases) and inside stages. */
function argDefaults(text: string): Map<string, string> {
  return new Map([...text.matchAll(/^ARG (\w+)=(\S+)$/gm)].map((m) => [m[1]!, m[2]!]));
}

async function packageJson(): Promise<{ version: string; license: string; repository: { url: string } }> {
  return JSON.parse(await readFile(path.join(REPO_ROOT, 'package.json'), 'utf8'));
}

async function packFiles(): Promise<string[]> {
  const { stdout } = await execa('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: REPO_ROOT });
  return (JSON.parse(stdout) as { files: { path: string }[] }[])[0]!.files.map((f) => f.path).sort();
}

async function filesUnder(dir: string, keep: (rel: string) => boolean): Promise<string[]> {
  const rels = (await readdir(path.join(REPO_ROOT, dir), { recursive: true })) as string[];
  const out: string[] = [];
  for (const rel of rels) if ((await stat(path.join(REPO_ROOT, dir, rel))).isFile() && keep(rel)) out.push(`${dir}/${rel}`);
  return out;
}

/** Every path in a tree, relative, with a trailing / for directories. */
async function treeOf(root: string): Promise<string[]> {
  const rels = (await readdir(root, { recursive: true, withFileTypes: true })).map((d) => {
    const rel = path.relative(root, path.join(d.parentPath, d.name));
    return d.isDirectory() ? `${rel}/` : rel;
  });
  return rels.sort();
}

describe('Containerfile', () => {
  it('pins every base by tag and digest, as a build argument; the runtime stage runs nothing and holds one directory', async () => {
    const text = await readFile(path.join(REPO_ROOT, 'Containerfile'), 'utf8');
    const all = stages(text);
    // build, the CI-job image (needs a shell: the build base), and last, the default target, the runtime.
    expect(all.map((s) => [s.from, s.name])).toEqual([
      ['${BUILD_BASE}', 'build'],
      ['${BUILD_BASE}', 'ci'],
      ['${RUNTIME_BASE}', undefined],
    ]);
    const args = argDefaults(text);
    // name:tag@sha256:<64 hex> — the digest is what is pulled, the tag says what it was.
    expect(args.get('BUILD_BASE')).toMatch(/^docker\.io\/library\/node:(\d*[02468])-bookworm-slim@sha256:[0-9a-f]{64}$/);
    expect(args.get('RUNTIME_BASE')).toMatch(/^gcr\.io\/distroless\/nodejs(\d*[02468])-debian12:nonroot@sha256:[0-9a-f]{64}$/);
    // The same Node major in both stages: the bundle is built by the node it runs on.
    expect(/node:(\d+)-/.exec(args.get('BUILD_BASE')!)![1]).toBe(/nodejs(\d+)-/.exec(args.get('RUNTIME_BASE')!)![1]);

    const [build, ci, runtime] = all as [Stage, Stage, Stage];
    // The CI image carries the same files, with zeta-provision on PATH for job scripts.
    expect(ci.lines).toEqual([
      'COPY --from=build --chown=0:0 /out/ /',
      'RUN ln -s /opt/zeta-provision/bin/zeta-provision /usr/local/bin/zeta-provision',
      'ENTRYPOINT ["zeta-provision"]',
    ]);
    const buildRun = build.lines.filter((l) => l.startsWith('RUN')).join(' ');
    expect(buildRun).toContain('npm ci --ignore-scripts');
    expect(buildRun).toContain('npm run build');
    expect(buildRun).toContain('npm pack');
    // The runtime base has no shell: nothing may RUN there, and one COPY brings the packed package.
    expect(runtime.lines.filter((l) => l.startsWith('RUN'))).toEqual([]);
    expect(runtime.lines.filter((l) => l.startsWith('COPY'))).toEqual(['COPY --from=build --chown=0:0 /out/ /']);
    expect(runtime.lines.filter((l) => l.startsWith('USER'))).toEqual(['USER 65532:65532']);
    expect(runtime.lines).toContain('ENTRYPOINT ["/nodejs/bin/node", "/opt/zeta-provision/bin/zeta-provision"]');
  });

  it("labels the image with package.json's version, license and repository", async () => {
    const text = await readFile(path.join(REPO_ROOT, 'Containerfile'), 'utf8');
    const pkg = await packageJson();
    const args = argDefaults(text);
    // build-image.sh passes these from package.json; the defaults (plain `podman build`) must agree.
    expect(args.get('VERSION')).toBe(pkg.version);
    expect(args.get('LICENSES')).toBe(pkg.license);
    expect(args.get('SOURCE')).toBe(pkg.repository.url.replace(/^git\+/, '').replace(/\.git$/, ''));
    for (const [label, arg] of [
      ['version', 'VERSION'],
      ['licenses', 'LICENSES'],
      ['source', 'SOURCE'],
      ['revision', 'REVISION'],
    ]) {
      expect(text).toContain(`org.opencontainers.image.${label}="\${${arg}}"`);
    }
  });

  it('copies only files that exist in the repository; the build context admits exactly them', async () => {
    const text = await readFile(path.join(REPO_ROOT, 'Containerfile'), 'utf8');
    const [build] = stages(text);
    const sources = build!.lines.filter((l) => l.startsWith('COPY ')).flatMap((l) => l.slice(5).trim().split(/\s+/).slice(0, -1));
    expect(sources).toEqual(expect.arrayContaining(['package.json', 'package-lock.json', 'esbuild.config.mjs', 'src', 'bin', 'config']));
    for (const src of sources) await expect(stat(path.join(REPO_ROOT, src)), src).resolves.toBeTruthy();
    const ignore = (await readFile(path.join(REPO_ROOT, '.containerignore'), 'utf8'))
      .split('\n')
      .filter((l) => l.startsWith('!'))
      .map((l) => l.slice(1).replace(/\/$/, ''));
    expect(ignore.sort()).toEqual([...sources].sort());
    expect(await readFile(path.join(REPO_ROOT, '.dockerignore'), 'utf8')).toBe(await readFile(path.join(REPO_ROOT, '.containerignore'), 'utf8'));
  });

  it('npm pack lists exactly the runtime files: bin, the bundle, built-in config', async () => {
    const expected = [
      'README.md',
      'package.json',
      'bin/zeta-provision',
      ...(await filesUnder('config', () => true)),
      // The bundle: its entry and the chunks it imports (not tsc's per-module output, not source maps).
      ...(await filesUnder('dist', (rel) => rel === 'zeta-provision.mjs' || /^chunks\/[^/]+\.mjs$/.test(rel))),
    ].sort();
    const packed = await packFiles();
    expect(packed).toEqual(expected);
    expect(packed.filter((p) => /^(src|test|fixtures|manifests|bench|scripts)\/|\.(ts|map)$/.test(p))).toEqual([]);
    expect(packed).toContain('dist/zeta-provision.mjs');
  });
});

describe('the image (scripts/build-image.sh on a local Node base)', () => {
  it('pushes with the digest to pin; runs version and verify of the example payload as 65532 on a read-only root; has no shell or npm; stays within its size budget', async () => {
    const dir = await tempDir();
    const b = await privateBuildah(dir);
    const baseFiles = await makeNodeBase(b, dir, 'localhost/zp-test-node-base:latest');
    const pkg = await packageJson();
    const npmCache = String((await execa('npm', ['config', 'get', 'cache'])).stdout).trim();
    await mkdir(npmCache, { recursive: true });
    // The build stage on this machine's node and npm (read-only), the npm cache shared for speed.
    const hostMounts = ['/usr', '/lib', '/lib64', '/bin', '/etc'].flatMap((p) => ['-v', `${p}:${p}:ro`]);
    // Pushed as the README says, to a registry on 127.0.0.1 (plain HTTP, so listed as insecure).
    const registry = await startRegistry();
    stops.push(() => registry.stop());
    const registriesConf = path.join(dir, 'registries.conf');
    await writeFile(registriesConf, `[[registry]]\nlocation = "${registry.host}"\ninsecure = true\n`);
    const build = await execa(
      'bash',
      [
        path.join(REPO_ROOT, 'scripts', 'build-image.sh'),
        '--tag',
        'localhost/zeta-provision:test',
        '--runtime-base',
        'localhost/zp-test-node-base:latest',
        '--build-base',
        'scratch',
        '--revision',
        'test-revision',
        '--push',
        `${registry.host}/zeta/zeta-provision:${pkg.version}`,
        '--',
        '--network',
        'host',
        ...hostMounts,
        '-v',
        `${npmCache}:/root/.npm`,
      ],
      { env: { ...b.env, CONTAINERS_REGISTRIES_CONF: registriesConf }, cwd: os.tmpdir() },
    );
    const digest = /^digest (sha256:[0-9a-f]{64})$/m.exec(build.stdout)?.[1];
    expect(digest, build.stdout.slice(-500)).toBeTruthy();
    expect(build.stdout).toContain(`newName: ${registry.host}/zeta/zeta-provision, digest: ${digest}`);
    // The registry serves that digest, and it is this image (its labels).
    await requireProgram('skopeo', 'skopeo');
    const pushed = await execa('skopeo', ['inspect', '--tls-verify=false', `docker://${registry.host}/zeta/zeta-provision@${digest}`]);
    expect(JSON.parse(pushed.stdout).Labels).toMatchObject({
      'org.opencontainers.image.revision': 'test-revision',
      'org.opencontainers.image.version': pkg.version,
    });
    // Pinned in an overlay as printed, every zeta-provision container runs exactly that digest.
    await mkdir(path.join(dir, 'overlay'));
    await writeFile(
      path.join(dir, 'overlay', 'kustomization.yaml'),
      JSON.stringify({
        resources: [path.relative(path.join(dir, 'overlay'), path.join(REPO_ROOT, 'manifests', 'overlays', 'classic'))],
        images: [{ name: `registry.example.org/zeta/zeta-provision`, newName: `${registry.host}/zeta/zeta-provision`, digest }],
      }),
    );
    const rendered = await render(path.join(dir, 'overlay'));
    expect(new Set(zetaContainers(rendered.objects).map((z) => z.container.image))).toEqual(new Set([`${registry.host}/zeta/zeta-provision@${digest}`]));

    const { config, diffIds } = await imageConfig(b, 'localhost/zeta-provision:test');
    expect(config.Labels).toMatchObject({
      'org.opencontainers.image.version': pkg.version,
      'org.opencontainers.image.licenses': pkg.license,
      'org.opencontainers.image.source': 'https://git.example.org/zeta/zeta-provision',
      'org.opencontainers.image.revision': 'test-revision',
      'org.opencontainers.image.base.name': 'localhost/zp-test-node-base:latest',
      'org.opencontainers.image.title': 'zeta-provision',
    });
    expect(config.User).toBe('65532:65532');
    expect(config.Entrypoint).toEqual(['/nodejs/bin/node', '/opt/zeta-provision/bin/zeta-provision']);
    // The base's one layer plus one app layer.
    expect(diffIds).toHaveLength(2);

    const root = await mountImage(b, 'localhost/zeta-provision:test');
    const user = config.User;
    const version = await runInRootfs(root, path.join(REPO_ROOT, 'fixtures', 'example'), user, config.Env, [
      ...config.Entrypoint,
      'version',
      '--output',
      'json',
    ]);
    expect(version.exitCode, version.stderr).toBe(0);
    expect(JSON.parse(version.stdout)).toMatchObject({ name: 'zeta-provision', version: pkg.version });

    // The example payload (OCI layout with its cosign signature) mounted read-only; staging goes to the tmpfs /tmp.
    const verify = await runInRootfs(root, path.join(REPO_ROOT, 'fixtures', 'example'), user, config.Env, [
      ...config.Entrypoint,
      'verify',
      '--config',
      '/work/zeta-provision.yaml',
      '--output',
      'json',
    ]);
    expect(verify.exitCode, verify.stderr).toBe(0);
    const report = JSON.parse(verify.stdout);
    expect(report).toMatchObject({ outcome: 'verified', exitCode: 0, image: { checked: true, identity: 'provisioning@example.org' } });
    expect(report.verification.checks.length).toBeGreaterThan(0);
    expect(report.verification.checks.every((c: { ok: boolean }) => c.ok)).toBe(true);

    // It really is that user, and the root filesystem really is read-only.
    const probe = await runInRootfs(root, path.join(REPO_ROOT, 'fixtures', 'example'), user, config.Env, [
      '/nodejs/bin/node',
      '-e',
      "let w; try { require('fs').writeFileSync('/opt/zeta-provision/x', ''); w = 'written' } catch (e) { w = e.code } console.log(JSON.stringify([process.getuid(), process.getgid(), w]))",
    ]);
    expect(JSON.parse(probe.stdout)).toEqual([65532, 65532, 'EROFS']);

    // No shell to exec, no npm; the app added exactly /opt/zeta-provision to the base.
    const sh = await runInRootfs(root, path.join(REPO_ROOT, 'fixtures', 'example'), user, config.Env, ['/bin/sh', '-c', 'true']);
    expect(sh.exitCode).toBe(127);
    const tree = await treeOf(root);
    const names = new Set(tree.map((p) => path.basename(p.replace(/\/$/, ''))));
    for (const forbidden of ['sh', 'bash', 'dash', 'ash', 'busybox', 'npm', 'npx', 'corepack', 'node_modules', 'apt', 'apt-get', 'dpkg', 'apk'])
      expect(names.has(forbidden), forbidden).toBe(false);
    const runnerMountPoints = ['proc/', 'dev/', 'dev/null', 'dev/urandom', 'work/'];
    const added = tree.filter((p) => !runnerMountPoints.includes(p) && !baseFiles.some((f) => `/${p}` === f || f.startsWith(`/${p}`)) && p !== 'tmp/');
    expect(added.filter((p) => !p.startsWith('opt/'))).toEqual([]);
    expect(added).toContain('opt/zeta-provision/dist/zeta-provision.mjs');
    expect(added.some((p) => p.endsWith('.map'))).toBe(false);

    // Owned by root, not writable by the user that runs it.
    const bundle = await stat(path.join(root, 'opt/zeta-provision/dist/zeta-provision.mjs'));
    expect([bundle.uid, bundle.mode & 0o022]).toEqual([0, 0]);

    // Sizes: unpacked (what a node stores; the budget) and as pulled. README "Container image" quotes them.
    const [base, app] = await layerSizes(b, 'localhost/zeta-provision:test', path.join(dir, 'layout'));
    const mb = (n: number) => (n / MB).toFixed(2);
    console.log(
      `image ${mb(base!.tar + app!.tar)} MB unpacked (${mb(base!.blob + app!.blob)} MB pulled) = base ${mb(base!.tar)} MB + app layer ${mb(app!.tar)} MB (${mb(app!.blob)} MB pulled)`,
    );
    expect(app!.tar).toBeLessThanOrEqual(15 * MB);
    expect(base!.tar + app!.tar).toBeLessThanOrEqual(150 * MB);
  }, 900_000);
});
