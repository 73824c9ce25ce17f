/**
 * The Containerfile and the npm package it installs. No container engine runs here, so the build
 * stage's own steps are replayed on the built repo: `npm pack`, unpack, production install from the
 * lockfile — and the result must run.
 */
import { chmod, copyFile, mkdir, readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { execa } from 'execa';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../support/cli.js';
import { useTempDirs } from '../support/tmp.js';

const tempDir = useTempDirs();

interface Stage {
  from: string;
  name?: string;
  lines: string[];
}

function stages(text: string): Stage[] {
  const out: Stage[] = [];
  // Join continuation lines, drop comments.
  const lines = text.replace(/\\\n/g, ' ').split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
  for (const line of lines) {
    const from = /^FROM\s+(\S+)(?:\s+AS\s+(\S+))?$/i.exec(line);
    if (from) out.push({ from: from[1]!, name: from[2], lines: [] });
    else out.at(-1)?.lines.push(line);
  }
  return out;
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

describe('Containerfile', () => {
  it('is multi-stage: npm ci + tsc in the build stage, a slim Node LTS runtime with one directory from it', async () => {
    const text = await readFile(path.join(REPO_ROOT, 'Containerfile'), 'utf8');
    const all = stages(text);
    expect(all.map((s) => s.name)).toEqual(['build', undefined]);
    const nodeImage = /^ARG NODE_IMAGE=(\S+)$/m.exec(text)?.[1];
    // An even major is an LTS line; slim keeps compilers and docs out.
    expect(nodeImage).toMatch(/^docker\.io\/library\/node:(\d*[02468])-\w+-slim$/);
    expect(all.every((s) => s.from === '${NODE_IMAGE}')).toBe(true);
    const [build, runtime] = all as [Stage, Stage];
    const buildRun = build.lines.filter((l) => l.startsWith('RUN')).join(' ');
    expect(buildRun).toContain('npm ci');
    expect(buildRun).toContain('npm run build');
    expect(buildRun).toContain('npm pack');
    expect(buildRun).toContain('npm ci --omit=dev');
    // The runtime stage gets only the packed package; no source, no dev dependencies.
    expect(runtime.lines.filter((l) => l.startsWith('COPY'))).toEqual(['COPY --from=build /out/package /opt/zeta-provision']);
    expect(runtime.lines).toContain('ENTRYPOINT ["zeta-provision"]');
    const users = runtime.lines.filter((l) => l.startsWith('USER'));
    expect(users).toHaveLength(1);
    const [uid, gid] = users[0]!.slice(5).split(':').map(Number);
    expect(uid).toBeGreaterThan(0);
    expect(gid).toBeGreaterThan(0);
    // The USER line comes after every RUN, so nothing runs as root after it and the image ends non-root.
    expect(runtime.lines.findIndex((l) => l.startsWith('USER'))).toBeGreaterThan(runtime.lines.findLastIndex((l) => l.startsWith('RUN')));
    for (const label of ['title', 'description', 'licenses', 'version', 'revision', 'source']) expect(text).toContain(`org.opencontainers.image.${label}=`);
  });

  it('copies only files that exist in the repository after npm run build', async () => {
    const text = await readFile(path.join(REPO_ROOT, 'Containerfile'), 'utf8');
    const [build] = stages(text);
    const sources = build!.lines.filter((l) => l.startsWith('COPY ')).flatMap((l) => l.slice(5).trim().split(/\s+/).slice(0, -1));
    expect(sources).toEqual(expect.arrayContaining(['package.json', 'package-lock.json', 'src', 'bin', 'config']));
    for (const src of sources) await expect(stat(path.join(REPO_ROOT, src)), src).resolves.toBeTruthy();
    // The build context admits exactly what the build stage copies.
    const ignore = (await readFile(path.join(REPO_ROOT, '.containerignore'), 'utf8')).split('\n').filter((l) => l.startsWith('!')).map((l) => l.slice(1).replace(/\/$/, ''));
    expect(ignore.sort()).toEqual([...sources].sort());
    expect(await readFile(path.join(REPO_ROOT, '.dockerignore'), 'utf8')).toBe(await readFile(path.join(REPO_ROOT, '.containerignore'), 'utf8'));
    await expect(stat(path.join(REPO_ROOT, 'dist', 'main.js'))).resolves.toBeTruthy();
  });

  it('npm pack lists exactly the runtime files: bin, compiled JavaScript, built-in config', async () => {
    const expected = [
      'README.md',
      'package.json',
      'bin/zeta-provision',
      ...(await filesUnder('config', () => true)),
      ...(await filesUnder('dist', (rel) => rel.endsWith('.js'))),
    ].sort();
    const packed = await packFiles();
    expect(packed).toEqual(expected);
    expect(packed.filter((p) => /^(src|test|fixtures|manifests|bench|scripts)\/|\.(ts|map)$/.test(p))).toEqual([]);
    expect(packed).toContain('dist/watch/index.js');
  });

  it('the build stage steps give a package that runs with production dependencies only', async () => {
    const dir = await tempDir();
    const { stdout } = await execa('npm', ['pack', '--silent', '--ignore-scripts', '--pack-destination', dir], { cwd: REPO_ROOT });
    await mkdir(path.join(dir, 'out'));
    await execa('tar', ['-xzf', path.join(dir, stdout.trim()), '-C', path.join(dir, 'out')]);
    const pkg = path.join(dir, 'out', 'package');
    await chmod(path.join(pkg, 'bin', 'zeta-provision'), 0o755);
    await copyFile(path.join(REPO_ROOT, 'package-lock.json'), path.join(pkg, 'package-lock.json'));
    await execa('npm', ['ci', '--omit=dev', '--ignore-scripts', '--prefer-offline', '--no-audit', '--no-fund'], { cwd: pkg });
    const modules = await readdir(path.join(pkg, 'node_modules'));
    const { dependencies, devDependencies } = JSON.parse(await readFile(path.join(REPO_ROOT, 'package.json'), 'utf8')) as Record<string, Record<string, string>>;
    for (const dep of Object.keys(dependencies!)) expect(modules).toContain(dep.split('/')[0]);
    // execa is a runtime dependency since the docker credential helpers run through it (issue 14).
    for (const dev of ['vitest', 'typescript']) {
      expect(Object.keys(devDependencies!)).toContain(dev);
      expect(modules).not.toContain(dev);
    }
    const version = await execa(path.join(pkg, 'bin', 'zeta-provision'), ['version', '--output', 'json'], { cwd: dir });
    expect(JSON.parse(version.stdout)).toMatchObject({ name: 'zeta-provision', version: JSON.parse(await readFile(path.join(REPO_ROOT, 'package.json'), 'utf8')).version });
    const help = await execa(path.join(pkg, 'bin', 'zeta-provision'), ['watch', '--help'], { cwd: dir });
    expect(help.stdout).toContain('--process-name');
  });
});
