import { describe, expect, it } from 'vitest';
import { UsageError } from '../../src/errors.js';
import { parseImageReference } from '../../src/source/registry/reference.js';

const D = 'sha256:' + 'a1'.repeat(32);

describe('parseImageReference', () => {
  it.each([
    [
      'registry.example.org/zeta/provisioning:latest',
      { registry: 'registry.example.org', apiHost: 'registry.example.org', repository: 'zeta/provisioning', tag: 'latest' },
    ],
    ['registry.example.org/zeta/provisioning', { repository: 'zeta/provisioning', tag: 'latest' }],
    [`registry.example.org/zeta/provisioning@${D}`, { tag: undefined, digest: D }],
    [`registry.example.org/zeta/provisioning:1.2@${D}`, { tag: '1.2', digest: D }],
    ['localhost:5000/repo:t', { registry: 'localhost:5000', repository: 'repo', tag: 't' }],
    ['localhost/repo', { registry: 'localhost', repository: 'repo' }],
    ['127.0.0.1:41234/a/b/c:v1', { registry: '127.0.0.1:41234', repository: 'a/b/c', tag: 'v1' }],
    ['ubuntu:22.04', { registry: 'docker.io', apiHost: 'registry-1.docker.io', repository: 'library/ubuntu', tag: '22.04' }],
    ['gematik/zeta', { registry: 'docker.io', repository: 'gematik/zeta', tag: 'latest' }],
    ['docker://index.docker.io/library/busybox', { registry: 'docker.io', repository: 'library/busybox' }],
  ])('%s', (ref, expected) => {
    expect(parseImageReference(ref)).toMatchObject(expected);
  });

  it.each([
    ['Registry.example.org/Zeta/x', /repository component 'Zeta'/],
    ['host/repo:-bad', /tag '-bad'/],
    ['host.example/repo@sha256:abc', /digest 'sha256:abc'/],
    ['host.example:99999/repo', /port '99999'/],
    ['host_name.example/repo', /registry host 'host_name.example'/],
    ['host.example/a//b', /repository component ''/],
    ['host.example/../etc', /repository component '\.\.'/],
    ['[zz::1]:5000/repo', /registry host '\[zz::1\]:5000'/],
    ['[::1]:0/repo', /port '0'/],
  ])('refuses %s naming the bad part', (ref, message) => {
    expect(() => parseImageReference(ref)).toThrowError(UsageError);
    expect(() => parseImageReference(ref)).toThrowError(message);
  });

  it('keeps IPv6 literal hosts in brackets, with or without a port', () => {
    expect(parseImageReference('[::1]:5000/zeta/provisioning:v1')).toEqual({
      registry: '[::1]:5000',
      apiHost: '[::1]:5000',
      repository: 'zeta/provisioning',
      tag: 'v1',
      digest: undefined,
    });
    expect(parseImageReference(`[fd00::1]/zeta/p@sha256:${'a'.repeat(64)}`)).toMatchObject({ registry: '[fd00::1]', repository: 'zeta/p', tag: undefined });
  });
});
