import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/errors.js';
import { credentialsFor, loadAuthFile, normalizeHost } from '../../src/source/registry/credentials.js';
import { useTempDirs } from '../support/tmp.js';

const tempDir = useTempDirs();
const b64 = (s: string) => Buffer.from(s).toString('base64');

describe('registry credentials from docker auth files', () => {
  it('matches by host[:port] only, in config.json and legacy .dockercfg shapes', () => {
    const config = {
      auths: { 'registry.example.org': { auth: b64('robot:pw:with:colons') }, 'https://other.example:5000/v1/': { username: 'u2', password: 'p2' } },
    };
    expect(credentialsFor('registry.example.org', config)).toEqual({ username: 'robot', password: 'pw:with:colons' });
    expect(credentialsFor('other.example:5000', config)).toEqual({ username: 'u2', password: 'p2' });
    expect(credentialsFor('other.example', config)).toBeUndefined();
    expect(credentialsFor('evil.example.org', config)).toBeUndefined();
    expect(credentialsFor('registry.example.org', { 'registry.example.org': { auth: b64('legacy:pw'), email: 'x@y' } })).toEqual({
      username: 'legacy',
      password: 'pw',
    });
    expect(credentialsFor('docker.io', { auths: { 'https://index.docker.io/v1/': { auth: b64('hub:pw') } } })).toEqual({ username: 'hub', password: 'pw' });
  });

  it('normalises keys', () => {
    expect(normalizeHost('https://Registry.Example.org/v2/')).toBe('registry.example.org');
    expect(normalizeHost('registry-1.docker.io')).toBe('docker.io');
  });

  it('reads a mounted pull Secret directory and names the file, not its content, on errors', async () => {
    const dir = await tempDir();
    await mkdir(path.join(dir, 'secret'));
    await writeFile(path.join(dir, 'secret', '.dockerconfigjson'), JSON.stringify({ auths: { 'r.example': { auth: b64('a:b') } } }));
    expect(credentialsFor('r.example', await loadAuthFile(path.join(dir, 'secret')))).toEqual({ username: 'a', password: 'b' });
    await writeFile(path.join(dir, 'bad.json'), '{"auths": {"r": {"auth": "c2VjcmV0LXZhbHVl"}');
    const err = await loadAuthFile(path.join(dir, 'bad.json')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as Error).message).toMatch(/bad\.json: not valid JSON$/);
    expect((err as Error).message).not.toContain('c2VjcmV0');
    await expect(loadAuthFile(path.join(dir, 'nothing-here'))).rejects.toThrowError(ConfigError);
  });
});
