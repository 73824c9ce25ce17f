/**
 * The publisher as a non-root user on a volume the way Kubernetes prepares an fsGroup volume: owned by
 * root:<fsGroup>, mode 2775 (setgid), the writer's only link to it being the supplementary group.
 * The publisher runs in a child process started by setpriv (real uid/gid 65534, no capabilities), and
 * readers run the same way: one in the fsGroup, one outside it.
 */
import { chmod, chown, lstat, mkdir, readdir, readlink, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { execa } from 'execa';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../support/cli.js';
import { requireProgram } from '../support/programs.js';
import { useTempDirs } from '../support/tmp.js';
import { stageFiles } from '../support/volume.js';

const tempDir = useTempDirs();
const WRITER = 65534;
const READER = 65533;
const FS_GROUP = 4242;

/** A volume as kubelet prepares it for an fsGroup: root:<fsGroup>, mode 2775; plus the publisher script beside it. */
async function fsGroupVolume(): Promise<{ base: string; vol: string; publisher: string }> {
  // Switching to another uid needs root, which the suite has (it installs its peers with apt-get).
  if (process.getuid?.() !== 0) throw new Error('this test switches users with setpriv and must run as root, as the test command does in CI');
  await requireProgram('setpriv', 'util-linux');
  const base = await tempDir();
  await chmod(base, 0o755);
  const vol = path.join(base, 'vol');
  await mkdir(vol);
  await chown(vol, 0, FS_GROUP);
  await chmod(vol, 0o2775);
  const publisher = path.join(base, 'publish.mjs');
  await writeFile(publisher, PUBLISHER);
  return { base, vol, publisher };
}

const PUBLISHER = `
import { publishVolume } from ${JSON.stringify(path.join(REPO_ROOT, 'dist', 'publish', 'volume', 'index.js'))};
const [vol, filesJson, optsJson] = process.argv.slice(2);
try {
  const r = await publishVolume(vol, JSON.parse(filesJson), JSON.parse(optsJson));
  process.stdout.write(JSON.stringify({ uid: process.getuid(), gid: process.getgid(), groups: process.getgroups().sort((a, b) => a - b), ...r }));
} catch (err) {
  process.stdout.write(JSON.stringify({ error: err.message, hint: err.hint }));
  process.exitCode = 5;
}
`;

const CAT = `
import { readFile } from 'node:fs/promises';
const out = {};
for (const p of process.argv.slice(2)) out[p] = await readFile(p, 'utf8').catch((e) => e.code);
process.stdout.write(JSON.stringify(out));
`;

/** Run node as uid/gid `id` with exactly the given supplementary groups. */
async function asUser(id: number, groups: number[], script: string, args: string[]): Promise<{ exitCode?: number; out: Record<string, unknown> }> {
  const ids = ['--reuid', String(id), '--regid', String(id), ...(groups.length ? ['--groups', groups.join(',')] : ['--clear-groups'])];
  const r = await execa('setpriv', [...ids, '--inh-caps=-all', '--', process.execPath, script, ...args], { reject: false });
  if (!r.stdout) throw new Error(`no output (exit ${r.exitCode}): ${r.stderr}`);
  return { exitCode: r.exitCode, out: JSON.parse(String(r.stdout)) as Record<string, unknown> };
}

/** Every entry below dir (not following links) with its owner, group and mode. */
async function entries(dir: string): Promise<{ rel: string; uid: number; gid: number; mode: number; type: string }[]> {
  const out = [];
  for (const rel of (await readdir(dir, { recursive: true })).sort()) {
    const st = await lstat(path.join(dir, rel));
    out.push({ rel, uid: st.uid, gid: st.gid, mode: st.mode & 0o7777, type: st.isDirectory() ? 'dir' : st.isSymbolicLink() ? 'link' : 'file' });
  }
  return out;
}

describe('non-root publisher on an fsGroup volume', () => {
  it('writes group-owned, readable generations, and applies the mode and group settings', async () => {
    const { base, vol, publisher } = await fsGroupVolume();
    const cat = path.join(base, 'cat.mjs');
    await writeFile(cat, CAT);
    const stage = async (files: Record<string, string>) => {
      const dir = await tempDir();
      await chmod(dir, 0o755);
      return JSON.stringify(await stageFiles(dir, files));
    };
    const publish = (files: string, opts: object) => asUser(WRITER, [FS_GROUP], publisher, [vol, files, JSON.stringify(opts)]);
    const readAs = (id: number, groups: number[], rels: string[]) =>
      asUser(
        id,
        groups,
        cat,
        rels.map((r) => path.join(vol, r)),
      );
    const tree = { 'keycloak-data/realm.json': '{"realm":"zeta"}', 'keycloak-data/themes/zeta/login.ftl': 'ftl', 'top.txt': 'T' };

    // 1. Defaults: 0644/0755, the group comes from the setgid volume alone.
    const first = await publish(await stage(tree), {});
    expect(first.exitCode, JSON.stringify(first.out)).toBe(0);
    // Not root, and the fsGroup only as a supplementary group (Node lists the primary gid too).
    expect(first.out).toMatchObject({ uid: WRITER, gid: WRITER, groups: [FS_GROUP, WRITER], changed: true, copied: 3 });
    const g1 = String(first.out.generation);
    const payload = (await entries(path.join(vol, g1))).filter((e) => !e.rel.startsWith('..'));
    expect(payload.map((e) => [e.rel, e.type, e.uid, e.gid, e.mode])).toEqual([
      ['keycloak-data', 'dir', WRITER, FS_GROUP, 0o2755],
      ['keycloak-data/realm.json', 'file', WRITER, FS_GROUP, 0o644],
      ['keycloak-data/themes', 'dir', WRITER, FS_GROUP, 0o2755],
      ['keycloak-data/themes/zeta', 'dir', WRITER, FS_GROUP, 0o2755],
      ['keycloak-data/themes/zeta/login.ftl', 'file', WRITER, FS_GROUP, 0o644],
      ['top.txt', 'file', WRITER, FS_GROUP, 0o644],
    ]);
    expect(await stat(path.join(vol, g1))).toMatchObject({ uid: WRITER, gid: FS_GROUP });
    // Nothing in the volume belongs to root but the volume itself: the writer made every entry.
    expect((await entries(vol)).filter((e) => e.uid !== WRITER)).toEqual([]);
    const rels = Object.keys(tree);
    expect((await readAs(READER, [FS_GROUP], rels)).out).toEqual(Object.fromEntries(rels.map((r) => [path.join(vol, r), tree[r as keyof typeof tree]])));

    // 2. Group-only modes and an explicit group: members read, others are refused.
    const second = await publish(await stage({ ...tree, 'top.txt': 'T2' }), { fileMode: 0o640, dirMode: 0o750, gid: FS_GROUP });
    expect(second.exitCode, JSON.stringify(second.out)).toBe(0);
    // Same bytes but another mode: copies, never a chmod of an inode the live generation shares.
    expect(second.out).toMatchObject({ copied: 3, linked: 0, previous: g1 });
    const g2 = String(second.out.generation);
    expect(await readlink(path.join(vol, '..data'))).toBe(g2);
    for (const e of (await entries(path.join(vol, g2))).filter((x) => !x.rel.startsWith('..'))) {
      expect([e.rel, e.gid, e.mode]).toEqual([e.rel, FS_GROUP, e.type === 'dir' ? 0o2750 : 0o640]);
    }
    expect((await stat(path.join(vol, g1, 'top.txt'))).mode & 0o777).toBe(0o644);
    const member = await readAs(READER, [FS_GROUP], ['top.txt', 'keycloak-data/realm.json']);
    expect(member.out).toEqual({ [path.join(vol, 'top.txt')]: 'T2', [path.join(vol, 'keycloak-data/realm.json')]: '{"realm":"zeta"}' });
    const outsider = await readAs(READER, [], ['top.txt', 'keycloak-data/realm.json']);
    expect(outsider.out).toEqual({ [path.join(vol, 'top.txt')]: 'EACCES', [path.join(vol, 'keycloak-data/realm.json')]: 'EACCES' });

    // 3. A republish as the same user hardlinks what it wrote (protected_hardlinks allows own files)
    //    and garbage-collects the first generation.
    const third = await publish(await stage({ ...tree, 'top.txt': 'T3' }), { fileMode: 0o640, dirMode: 0o750, gid: FS_GROUP });
    expect(third.exitCode, JSON.stringify(third.out)).toBe(0);
    expect(third.out).toMatchObject({ copied: 1, linked: 2, removedGenerations: [g1] });
    expect((await readAs(READER, [FS_GROUP], ['top.txt'])).out).toEqual({ [path.join(vol, 'top.txt')]: 'T3' });
  });

  it('a writer outside the fsGroup is refused with exit 5, a hint, and nothing written', async () => {
    const { vol, publisher } = await fsGroupVolume();
    const dir = await tempDir();
    await chmod(dir, 0o755);
    const files = JSON.stringify(await stageFiles(dir, { 'a/x': '1' }));
    const r = await asUser(WRITER, [], publisher, [vol, files, '{}']);
    expect(r.exitCode).toBe(5);
    expect(r.out.error).toMatch(/EACCES/);
    expect(r.out.hint).toMatch(/not writable for this user; check fsGroup/);
    expect(await readdir(vol)).toEqual([]);
  });
});
