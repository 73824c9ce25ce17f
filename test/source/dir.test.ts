import fs from 'node:fs/promises';
import path from 'node:path';
import { execa } from 'execa';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SourceError } from '../../src/errors.js';
import { parseSourceReference, resolveSource, unpackSource } from '../../src/source/index.js';
import type { ResolvedSource } from '../../src/source/types.js';
import { listTree, tempDir, writeFiles } from './helpers.js';
import { rejection } from '../support/errors.js';

let tmp: string;
let src: string;
beforeEach(async () => {
  tmp = await tempDir();
  src = path.join(tmp, 'payload');
  await writeFiles(src, {
    'tsl/TSL.xml': '<tsl/>',
    'tsl/TSL.xml.p7s': 'sig',
    'TrustedTpm.cab': 'MSCF',
    'empty/.keep': '',
  });
  await fs.symlink('tsl/TSL.xml', path.join(src, 'current-tsl'));
});
afterEach(async () => {
  await fs.rm(tmp, { recursive: true, force: true });
});

const resolve = (p = src): Promise<ResolvedSource> => resolveSource(parseSourceReference(`dir:${p}`));

async function sourceError(p: Promise<unknown>): Promise<Error> {
  const err = await rejection(p, SourceError);
  return err as Error;
}

describe('dir: resolve', () => {
  it('computes a stable digest that changes with content, names and modes', async () => {
    const a = await resolve();
    expect(a.digest).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(a.layers).toEqual([]);
    expect((await resolve()).digest).toBe(a.digest);

    await fs.writeFile(path.join(src, 'tsl/TSL.xml'), '<tsL/>');
    const b = await resolve();
    expect(b.digest).not.toBe(a.digest);
    await fs.writeFile(path.join(src, 'tsl/TSL.xml'), '<tsl/>');
    expect((await resolve()).digest).toBe(a.digest);

    await fs.chmod(path.join(src, 'TrustedTpm.cab'), 0o600);
    expect((await resolve()).digest).not.toBe(a.digest);
    await fs.chmod(path.join(src, 'TrustedTpm.cab'), 0o644);

    await fs.rename(path.join(src, 'TrustedTpm.cab'), path.join(src, 'trustedtpm.cab'));
    expect((await resolve()).digest).not.toBe(a.digest);
  });

  it('does not depend on timestamps', async () => {
    const a = await resolve();
    await fs.utimes(path.join(src, 'tsl/TSL.xml'), new Date(0), new Date(0));
    expect((await resolve()).digest).toBe(a.digest);
  });

  it('reports a missing path in one line', async () => {
    const err = await sourceError(resolveSource(parseSourceReference('dir:/nonexistent')));
    expect(err.message).toBe('source not found: dir:/nonexistent');
  });

  it('refuses a symlink leading out of the tree', async () => {
    await fs.symlink('../../etc', path.join(src, 'tsl/escape'));
    expect((await sourceError(resolve())).message).toMatch(/'tsl\/escape' is a symlink leading outside/);
    await fs.rm(path.join(src, 'tsl/escape'));
    await fs.symlink('/etc/passwd', path.join(src, 'abs'));
    expect((await sourceError(resolve())).message).toMatch(/'abs' absolute symlink target/);
  });
});

describe('dir: unpack', () => {
  it('copies a snapshot with modes and links, never following them', async () => {
    await fs.chmod(path.join(src, 'tsl'), 0o555);
    const resolved = await resolve();
    const staging = path.join(tmp, 'staging');
    const result = await unpackSource(resolved, staging);
    expect(await listTree(staging)).toEqual([
      'f TrustedTpm.cab 644 MSCF',
      'l current-tsl -> tsl/TSL.xml',
      'd empty 755',
      'f empty/.keep 644 ',
      'd tsl 555',
      'f tsl/TSL.xml 644 <tsl/>',
      'f tsl/TSL.xml.p7s 644 sig',
    ]);
    expect(result).toMatchObject({ root: staging, files: 4, bytes: 4 + 6 + 3 + 0, warnings: [] });
    await fs.chmod(path.join(staging, 'tsl'), 0o755);
  });

  it('skips fifos with a warning', async () => {
    await execa('mkfifo', [path.join(src, 'pipe')]);
    const staging = path.join(tmp, 'staging');
    const result = await unpackSource(await resolve(), staging);
    expect(result.warnings).toEqual([`dir:${src}: skipped special file 'pipe'`]);
    await expect(fs.lstat(path.join(staging, 'pipe'))).rejects.toThrow(/ENOENT/);
  });

  it('refuses when the tree changed between resolve and unpack', async () => {
    const resolved = await resolve();
    await fs.writeFile(path.join(src, 'TrustedTpm.cab'), 'MSCF-new');
    const err = await sourceError(unpackSource(resolved, path.join(tmp, 'staging')));
    expect(err.message).toMatch(/changed between resolve and unpack/);
  });

  it('enforces the caps', async () => {
    const resolved = await resolve();
    expect((await sourceError(unpackSource(resolved, path.join(tmp, 's1'), { maxFileBytes: 5 }))).message).toMatch(
      /'tsl\/TSL.xml' exceeds the 5 byte file limit/,
    );
    expect((await sourceError(unpackSource(resolved, path.join(tmp, 's2'), { maxEntries: 3 }))).message).toMatch(/more than 3 entries/);
  });
});
