/**
 * Hostile *shapes*: layers whose cost lies in nesting and entry counts rather than bytes, and a
 * staging file system smaller than the caps. (How fast is measured in bench/shapes.mjs; here: that
 * they complete, or are refused with the cap named, and that nothing lands outside the staging tree.)
 */
import { execa } from 'execa';
import fs from 'node:fs/promises';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DEFAULT_UNPACK_LIMITS, parseSourceReference, resolveSource, STAGING_HEADROOM_MIB, unpackSource } from '../../src/source/index.js';
import type { UnpackLimits, UnpackResult } from '../../src/source/types.js';
import { REPO_ROOT } from '../support/cli.js';
import { packTar, singleImageLayout, tempDir, type PackEntry } from './helpers.js';
import { sourceFailure } from '../support/errors.js';

let tmp: string;
let n = 0;
beforeEach(async () => {
  tmp = await tempDir();
});
afterEach(async () => {
  await fs.rm(tmp, { recursive: true, force: true });
});

async function unpack(entries: PackEntry[], staging: string, limits?: Partial<UnpackLimits>): Promise<UnpackResult> {
  const dir = path.join(tmp, `layout${n++}`);
  await singleImageLayout(dir, { layers: [{ tar: await packTar(entries) }] });
  return unpackSource(await resolveSource(parseSourceReference(`oci-layout:${dir}`)), staging, limits);
}

describe('deep trees', () => {
  it('unpacks 2,000 nested directory entries', async () => {
    const entries: PackEntry[] = [];
    let p = '';
    for (let i = 0; i < 2000; i++) entries.push({ name: (p += 'd/'), type: 'directory', mode: 0o750 });
    entries.push({ name: `${p}leaf`, content: 'deep' });
    const staging = path.join(tmp, 'staging');
    const r = await unpack(entries, staging);
    expect(r.files).toBe(1);
    // Relative from inside: the absolute path would be longer than some tools accept.
    const { stdout } = await execa('bash', ['-c', 'find . -type d | wc -l; find . -type f; stat -c %a d d/d'], { cwd: staging });
    expect(stdout.split('\n')).toEqual(['2001', `./${p}leaf`, '750', '750']);
  });

  it('unpacks one file whose name implies 2,000 directories, and counts those as entries', async () => {
    const name = `${'d/'.repeat(2000)}f`;
    const r = await unpack([{ name, content: 'x' }], path.join(tmp, 'staging'));
    expect(r.files).toBe(1);
    const err = await sourceFailure(unpack([{ name: 'a/b/c/f', content: 'x' }], path.join(tmp, 'staging2'), { maxEntries: 3 }));
    expect(err.message).toMatch(/more than 3 entries in the image \(entry cap\)/);
  });

  it('refuses a name the kernel could not create, before creating anything for it', async () => {
    const err = await sourceFailure(unpack([{ name: `${'d/'.repeat(2040)}f`, content: 'x' }], path.join(tmp, 'staging')));
    expect(err.message).toMatch(/path longer than the system limit of 4096 bytes/);
    expect(await fs.readdir(path.join(tmp, 'staging'))).toEqual([]);
  });
});

describe('staging space', () => {
  it('stops before a small staging file system is full, naming it (exit 4)', async () => {
    const mnt = path.join(tmp, 'mnt');
    await fs.mkdir(mnt);
    // A real 1 MiB tmpfs, like the CronJob's memory-backed /tmp emptyDir (needs root, as CI runs).
    await execa('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', mnt]);
    try {
      const staging = path.join(mnt, 'staging');
      const zeros = Buffer.alloc(600 * 1024);
      const err = await sourceFailure(
        unpack(
          [
            { name: 'a', content: zeros },
            { name: 'b', content: zeros },
          ],
          staging,
        ),
      );
      expect(err.message).toMatch(new RegExp(`^staging area full: needed at least 1\\.2 MiB, 1\\.0 MiB free in ${staging}$`));
      expect(err.hint).toMatch(/sizeLimit of the CronJob's \/tmp emptyDir .* or point TMPDIR at a larger file system/);
      // The first file fit; the second was never started.
      expect(await fs.readdir(staging)).toEqual(['a']);
    } finally {
      await execa('umount', [mnt]);
    }
  });

  it('stops when the staging file system runs out of inodes, before ENOSPC', async () => {
    const mnt = path.join(tmp, 'mnt');
    await fs.mkdir(mnt);
    await execa('mount', ['-t', 'tmpfs', '-o', 'size=1m,nr_inodes=16', 'tmpfs', mnt]);
    try {
      const entries = Array.from({ length: 40 }, (_, i) => ({ name: `f${i}`, content: '' }));
      const err = await sourceFailure(unpack(entries, path.join(mnt, 'staging')));
      expect(err.message).toBe(`staging area full: no free inodes left in ${path.join(mnt, 'staging')}`);
    } finally {
      await execa('umount', [mnt]);
    }
  });

  it("the manifests' /tmp emptyDir holds the default payload cap plus the headroom for derived outputs", async () => {
    const yaml = await fs.readFile(path.join(REPO_ROOT, 'manifests', 'base', 'cronjob.yaml'), 'utf8');
    const m = /- name: tmp\n(?:\s+#.*\n)*\s+emptyDir:\n\s+medium: Memory\n\s+sizeLimit: (\d+)Mi/.exec(yaml);
    expect(m, 'tmp emptyDir with medium Memory and a sizeLimit in Mi').not.toBeNull();
    expect(Number(m![1])).toBe(DEFAULT_UNPACK_LIMITS.maxTotalBytes / 1024 / 1024 + STAGING_HEADROOM_MIB);
  });
});
