import { describe, expect, it } from 'vitest';
import { UsageError } from '../../src/errors.js';
import { parseSourceReference as parseRef } from '../../src/source/reference.js';
import type { ImageReference } from '../../src/source/registry/reference.js';

/** Every member's fields at once: the assertions below say which kind they expect. */
const parseSourceReference = (ref: string, cwd?: string) =>
  parseRef(ref, cwd) as ReturnType<typeof parseRef> & { path: string; tag?: string; digest?: string; image: ImageReference };

const D = `sha256:${'ab'.repeat(32)}`;

function usage(ref: string): UsageError {
  try {
    parseSourceReference(ref, '/work');
  } catch (err) {
    expect(err).toBeInstanceOf(UsageError);
    return err as UsageError;
  }
  throw new Error(`no error for ${ref}`);
}

describe('parseSourceReference', () => {
  it('parses dir: with absolute and relative paths', () => {
    expect(parseSourceReference('dir:/zeta-guard-provisioning', '/work')).toEqual({
      kind: 'dir',
      path: '/zeta-guard-provisioning',
      original: 'dir:/zeta-guard-provisioning',
    });
    expect(parseSourceReference('dir:payload/x', '/work').path).toBe('/work/payload/x');
    expect(parseSourceReference('dir:../p', '/work/a').path).toBe('/work/p');
  });

  it('parses oci-layout: path, tag and digest forms', () => {
    expect(parseSourceReference('oci-layout:/l', '/work')).toEqual({ kind: 'oci-layout', path: '/l', original: 'oci-layout:/l' });
    expect(parseSourceReference('oci-layout:img:v1.2', '/work')).toEqual({
      kind: 'oci-layout',
      path: '/work/img',
      tag: 'v1.2',
      original: 'oci-layout:img:v1.2',
    });
    expect(parseSourceReference(`oci-layout:/l@${D}`, '/work')).toEqual({
      kind: 'oci-layout',
      path: '/l',
      digest: D,
      original: `oci-layout:/l@${D}`,
    });
    const both = parseSourceReference(`oci-layout:/l:latest@${D}`, '/work');
    expect([both.tag, both.digest]).toEqual(['latest', D]);
  });

  it('uses process.cwd() by default', () => {
    expect(parseSourceReference('dir:x').path).toBe(`${process.cwd()}/x`);
  });

  it('parses registry references', () => {
    expect(parseSourceReference('registry.example.org/zeta/provisioning:latest', '/work')).toMatchObject({
      kind: 'registry',
      image: { registry: 'registry.example.org', repository: 'zeta/provisioning', tag: 'latest' },
    });
    expect(parseSourceReference(`registry.example.org/zeta/provisioning@${D}`, '/work').image).toMatchObject({ digest: D });
    expect(parseSourceReference('localhost:5000/repo:tag', '/work').image).toMatchObject({ registry: 'localhost:5000', repository: 'repo' });
    expect(parseSourceReference('docker://registry.example.org/x:1', '/work').image).toMatchObject({ registry: 'registry.example.org', tag: '1' });
    expect(parseSourceReference('ubuntu:22.04', '/work').image).toMatchObject({ registry: 'docker.io', repository: 'library/ubuntu', tag: '22.04' });
    expect(usage('Registry.example.org/Bad').message).toMatch(/invalid image reference/);
  });

  it('parses archive forms and refuses transports it cannot read', () => {
    expect(parseSourceReference('oci-archive:/x.tar:latest', '/work')).toMatchObject({ kind: 'oci-archive', path: '/x.tar', tag: 'latest' });
    expect(parseSourceReference('docker-archive:x.tar:zeta/provisioning:1.0', '/work')).toMatchObject({
      kind: 'docker-archive',
      path: '/work/x.tar',
      tag: 'zeta/provisioning:1.0',
    });
    for (const ref of ['docker-daemon:img:1', 'containers-storage:img']) {
      expect(usage(ref).message).toMatch(/not supported in this version/);
    }
    expect(usage('oci:/x').hint).toMatch(/oci-layout:\/x/);
  });

  it('names the offending part of a malformed reference', () => {
    expect(usage('dir:').message).toMatch(/empty path/);
    expect(usage('oci-layout:').message).toMatch(/empty path/);
    expect(usage('oci-layout::tag').message).toMatch(/empty path/);
    expect(usage(`oci-layout:@${D}`).message).toMatch(/empty path/);
    expect(usage('oci-layout:/l@sha256:abc').message).toMatch(/bad digest 'sha256:abc'/);
    expect(usage(`oci-layout:/l@sha256:${'AB'.repeat(32)}`).message).toMatch(/bad digest/);
    expect(usage(`oci-layout:/l@sha512:${'ab'.repeat(64)}`).message).toMatch(/bad digest/);
    expect(usage('oci-layout:/l:').message).toMatch(/bad tag/);
    expect(usage('ftp:/x').message).toMatch(/unknown source scheme 'ftp:'/);
    expect(usage('/abs/path').message).toMatch(/has no scheme/);
    expect(usage('').message).toMatch(/empty source reference/);
  });
});
