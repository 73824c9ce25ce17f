/** Platform parsing and the choice of an image from a multi-platform index. */
import path from 'node:path';
import fs from 'node:fs/promises';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SourceError, UsageError } from '../../src/errors.js';
import { parsePlatform, parseSourceReference, resolveSource, unpackSource } from '../../src/source/index.js';
import { choosePlatform } from '../../src/source/platform.js';
import { LayoutBuilder, listTree, packTar, tempDir } from './helpers.js';

const d = (digit: string, platform?: { os: string; architecture: string; variant?: string }) => ({
  mediaType: 'application/vnd.oci.image.manifest.v1+json',
  digest: `sha256:${digit.repeat(64)}`,
  size: 100,
  ...(platform ? { platform } : {}),
});

describe('parsePlatform', () => {
  it('reads os/arch and os/arch/variant', () => {
    expect(parsePlatform('linux/amd64')).toEqual({ os: 'linux', architecture: 'amd64' });
    expect(parsePlatform('Linux/ARM64/v8')).toEqual({ os: 'linux', architecture: 'arm64', variant: 'v8' });
  });
  it('refuses other shapes as usage errors naming the origin', () => {
    for (const bad of ['amd64', 'linux/', 'linux/amd64/v8/x', 'linux/../etc', '']) {
      const err = (() => {
        try {
          parsePlatform(bad, 'environment variable ZETA_PROVISION_PLATFORM');
        } catch (e) {
          return e;
        }
      })();
      expect(err, bad).toBeInstanceOf(UsageError);
      expect((err as Error).message).toMatch(/^environment variable ZETA_PROVISION_PLATFORM: expected OS\/ARCH\[\/VARIANT\]/);
    }
  });
});

describe('choosePlatform', () => {
  const amd = d('a', { os: 'linux', architecture: 'amd64' });
  const arm = d('b', { os: 'linux', architecture: 'arm64' });
  const armV7 = d('c', { os: 'linux', architecture: 'arm', variant: 'v7' });
  it('takes the requested platform, linux/amd64 by default', () => {
    expect(choosePlatform([arm, amd], undefined, 'idx')).toBe(amd);
    expect(choosePlatform([arm, amd], { os: 'linux', architecture: 'arm64' }, 'idx')).toBe(arm);
    // arm64 without a variant means v8.
    expect(choosePlatform([amd, arm], { os: 'linux', architecture: 'arm64', variant: 'v8' }, 'idx')).toBe(arm);
    expect(choosePlatform([amd, armV7], { os: 'linux', architecture: 'arm', variant: 'v7' }, 'idx')).toBe(armV7);
  });
  it('falls back to the only image only when no platform was asked for', () => {
    expect(choosePlatform([arm], undefined, 'idx')).toBe(arm);
    expect(() => choosePlatform([arm], { os: 'linux', architecture: 'amd64' }, 'idx')).toThrowError(SourceError);
  });
  it('lists the platforms on offer when the wanted one is missing', () => {
    const err = (() => {
      try {
        choosePlatform([amd, armV7], { os: 'linux', architecture: 's390x' }, 'sha256:idx');
      } catch (e) {
        return e as SourceError;
      }
    })()!;
    expect(err.message).toBe('image index sha256:idx has no linux/s390x image (platforms: linux/amd64, linux/arm/v7)');
    expect(err.exitCode).toBe(4);
    expect(err.hint).toMatch(/--platform/);
  });
});

describe('platform selection in a layout', () => {
  let tmp: string;
  beforeEach(async () => {
    tmp = await tempDir();
  });
  afterEach(async () => {
    await fs.rm(tmp, { recursive: true, force: true });
  });

  it('resolves and unpacks the image of the requested platform', async () => {
    const layout = await LayoutBuilder.create(path.join(tmp, 'layout'));
    const arm = await layout.image({ layers: [{ tar: await packTar([{ name: 'arch', content: 'arm64' }]) }] });
    const amd = await layout.image({ layers: [{ tar: await packTar([{ name: 'arch', content: 'amd64' }]) }] });
    const index = await layout.imageIndex([
      { ...amd, platform: { os: 'linux', architecture: 'amd64' } },
      { ...arm, platform: { os: 'linux', architecture: 'arm64' } },
    ]);
    await layout.writeIndex([{ ...index, tag: 'latest' }]);
    const options = { platform: parsePlatform('linux/arm64') };
    const resolved = await resolveSource(parseSourceReference(`oci-layout:${tmp}/layout:latest`), options);
    expect(resolved.digest).toBe(arm.digest);
    await unpackSource(resolved, path.join(tmp, 's'), {}, options);
    expect(await listTree(path.join(tmp, 's'))).toEqual(['f arch 644 arm64']);
    await expect(resolveSource(parseSourceReference(`oci-layout:${tmp}/layout:latest`), { platform: parsePlatform('linux/ppc64le') })).rejects.toThrowError(
      /has no linux\/ppc64le image \(platforms: linux\/amd64, linux\/arm64\)$/,
    );
  });
});
