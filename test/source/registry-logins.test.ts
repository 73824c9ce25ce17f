/**
 * Registry logins as operators make them: real `skopeo login` and `podman login` files, a docker
 * config.json naming credential helpers (real scripts of ours on PATH), all against Debian's
 * docker-registry with htpasswd over TLS (private CA). Also: hints for TLS and plain-HTTP mistakes,
 * and the User-Agent on the wire.
 */
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import { createServer, request, type Server } from 'node:http';
import path from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/errors.js';
import { parseSourceReference, resolveSource, unpackSource, type SourceOptions } from '../../src/source/index.js';
import { REPO_ROOT } from '../support/cli.js';
import { requireProgram } from '../support/programs.js';
import { makeLoopbackTls, makeTestCa, pushLayout, startRegistry, type TestRegistry } from '../support/registry.js';
import { useTempDirs } from '../support/tmp.js';
import { sourceFailure } from '../support/errors.js';

const tempDir = useTempDirs();
/** Directories that live as long as a describe block (useTempDirs removes its own after each test). */
const lasting: string[] = [];
const lastingDir = async (): Promise<string> => {
  const d = await mkdtemp(path.join(os.tmpdir(), 'zp-logins-'));
  lasting.push(d);
  return d;
};
afterAll(async () => {
  await Promise.all(lasting.map((d) => rm(d, { recursive: true, force: true })));
});
const LAYOUT = path.join(REPO_ROOT, 'fixtures', 'example', 'oci');
const creds = { username: 'robot', password: 'tls-htpasswd-secret' };

describe('logins against a TLS registry with htpasswd', () => {
  let registry: TestRegistry;
  let caFile: string;
  let certDir: string;
  let ref: string;
  beforeAll(async () => {
    const dir = await lastingDir();
    const pki = await makeLoopbackTls(dir, 'Login Test Registry CA');
    caFile = pki.caFile;
    registry = await startRegistry({ htpasswd: creds, tls: pki.tls });
    // containers/image reads a CA from a --cert-dir as *.crt.
    certDir = path.join(dir, 'certs');
    await mkdir(certDir);
    await writeFile(path.join(certDir, 'ca.crt'), await readFile(caFile));
    await pushLayout(LAYOUT, 'latest', `${registry.host}/zeta/provisioning:v1`, creds);
    ref = `${registry.host}/zeta/provisioning:v1`;
  });
  afterAll(() => registry?.stop());

  const options = (env: NodeJS.ProcessEnv, extra: Partial<NonNullable<SourceOptions['registry']>> = {}): SourceOptions => ({
    registry: { transport: { caFile, attempts: 1 }, env: { PATH: process.env.PATH, ...env }, ...extra },
  });
  const pull = async (opts: SourceOptions): Promise<number> => {
    const resolved = await resolveSource(parseSourceReference(ref), opts);
    return (await unpackSource(resolved, path.join(await tempDir(), 'staging'), {}, opts)).files;
  };

  it('uses the file `skopeo login --authfile` wrote, through REGISTRY_AUTH_FILE', async () => {
    const file = path.join(await tempDir(), 'auth.json');
    await execa('skopeo', ['login', '--authfile', file, '--cert-dir', certDir, '--username', creds.username, '--password-stdin', registry.host], {
      input: creds.password,
    });
    expect(await pull(options({ REGISTRY_AUTH_FILE: file }))).toBeGreaterThan(3);
  });

  it('uses ${XDG_RUNTIME_DIR}/containers/auth.json as skopeo and podman write it by default', async () => {
    const runtime = await tempDir();
    await execa('skopeo', ['login', '--cert-dir', certDir, '--username', creds.username, '--password-stdin', registry.host], {
      input: creds.password,
      env: { XDG_RUNTIME_DIR: runtime },
    });
    expect(JSON.parse(await readFile(path.join(runtime, 'containers', 'auth.json'), 'utf8')).auths[registry.host].auth).toBeTypeOf('string');
    expect(await pull(options({ XDG_RUNTIME_DIR: runtime }))).toBeGreaterThan(3);

    await requireProgram('podman', 'podman');
    const podmanRuntime = await tempDir();
    await execa('podman', ['login', '--cert-dir', certDir, '--username', creds.username, '--password-stdin', registry.host], {
      input: creds.password,
      env: { XDG_RUNTIME_DIR: podmanRuntime },
    });
    expect(await pull(options({ XDG_RUNTIME_DIR: podmanRuntime }))).toBeGreaterThan(3);
  });

  it('REGISTRY_AUTH_FILE comes before the docker config; a refused login names its file, never the secret', async () => {
    const dir = await tempDir();
    const b64 = (s: string) => Buffer.from(s).toString('base64');
    await writeFile(path.join(dir, 'good.json'), JSON.stringify({ auths: { [registry.host]: { auth: b64(`${creds.username}:${creds.password}`) } } }));
    await mkdir(path.join(dir, 'docker'));
    await writeFile(path.join(dir, 'docker', 'config.json'), JSON.stringify({ auths: { [registry.host]: { auth: b64('robot:wrong-password-xyz') } } }));
    expect(await pull(options({ REGISTRY_AUTH_FILE: path.join(dir, 'good.json'), DOCKER_CONFIG: path.join(dir, 'docker') }))).toBeGreaterThan(3);
    const err = await sourceFailure(pull(options({ DOCKER_CONFIG: path.join(dir, 'docker') })));
    expect(err.message).toMatch(new RegExp(`denied as user 'robot' \\(credentials from ${path.join(dir, 'docker', 'config.json')}\\)`));
    expect(`${err.message} ${err.hint}`).not.toContain('wrong-password-xyz');
    // ~/.docker/config.json when DOCKER_CONFIG is unset.
    await mkdir(path.join(dir, 'home', '.docker'), { recursive: true });
    await writeFile(
      path.join(dir, 'home', '.docker', 'config.json'),
      JSON.stringify({ auths: { [`https://${registry.host}`]: { auth: b64(`${creds.username}:${creds.password}`) } } }),
    );
    expect(await pull(options({ HOME: path.join(dir, 'home') }))).toBeGreaterThan(3);
  });

  describe('docker credential helpers', () => {
    let bin: string;
    let docker: string;
    beforeAll(async () => {
      bin = await lastingDir();
      docker = await lastingDir();
      const helper = async (name: string, script: string): Promise<void> => {
        await writeFile(path.join(bin, `docker-credential-${name}`), `#!/bin/sh\n${script}\n`);
        await chmod(path.join(bin, `docker-credential-${name}`), 0o755);
      };
      // The protocol: `get`, the server URL on stdin, JSON on stdout. stderr is noise we never show.
      await helper(
        'zpstore',
        `[ "$1" = get ] || exit 3\nread url\necho "stderr may hold ${creds.password}" >&2\n[ "$url" = "${registry.host}" ] || { echo "credentials not found in native keychain"; exit 1; }\nprintf '{"ServerURL":"%s","Username":"${creds.username}","Secret":"${creds.password}"}' "$url"`,
      );
      await helper('zpnone', 'echo "credentials not found in native keychain"; exit 1');
      await helper('zpfail', 'echo "boom LEAKED-SECRET-123"; echo "LEAKED-SECRET-456" >&2; exit 2');
      await helper('zpslow', 'exec sleep 5');
    });
    const withConfig = async (config: object): Promise<SourceOptions> => {
      await writeFile(path.join(docker, 'config.json'), JSON.stringify(config));
      return options({ PATH: `${bin}:${process.env.PATH}`, DOCKER_CONFIG: docker, HOME: docker }, { helperTimeoutMs: 1000 });
    };

    it('asks credsStore for every registry and credHelpers per registry', async () => {
      expect(await pull(await withConfig({ auths: { [registry.host]: {} }, credsStore: 'zpstore' }))).toBeGreaterThan(3);
      expect(await pull(await withConfig({ credHelpers: { [registry.host]: 'zpstore', 'other.example': 'zpfail' }, credsStore: 'zpfail' }))).toBeGreaterThan(3);
    });

    it('a helper without credentials means none: the registry then asks, and the hint names flags and files', async () => {
      const err = await sourceFailure(pull(await withConfig({ credsStore: 'zpnone' })));
      expect(err.message).toMatch(/requires credentials, and no login for 127\.0\.0\.1:\d+ was found/);
      expect(err.hint).toMatch(/--registry-auth-file FILE.*REGISTRY_AUTH_FILE.*containers\/auth\.json.*~\/\.docker\/config\.json/);
    });

    it('a failing, missing or hanging helper is exit 4 naming it, its output never shown', async () => {
      const failed = await sourceFailure(pull(await withConfig({ credHelpers: { [registry.host]: 'zpfail' } })));
      expect(failed.message).toMatch(/credential helper docker-credential-zpfail \(named in .*config\.json\) failed for 127\.0\.0\.1:\d+ \(exit 2\)/);
      expect(`${failed.message} ${failed.hint}`).not.toMatch(/LEAKED|boom/);
      const missing = await sourceFailure(pull(await withConfig({ credsStore: 'zpmissing' })));
      expect(missing.message).toMatch(/credential helper docker-credential-zpmissing .* is not installed/);
      expect(missing.hint).toMatch(/install docker-credential-zpmissing on PATH/);
      const slow = await sourceFailure(pull(await withConfig({ credsStore: 'zpslow' })));
      expect(slow.message).toMatch(/docker-credential-zpslow .* did not answer within 1000 ms/);
      const bad = await sourceFailure(pull(await withConfig({ credsStore: '../../bin/sh' })));
      expect(bad.message).toMatch(/credential helper name '\.\.\/\.\.\/bin\/sh' .* is not valid/);
    });
  });

  it('TLS hints: no CA versus a CA that does not match, naming the issuer; TLS named insecure', async () => {
    const none = await sourceFailure(resolveSource(parseSourceReference(ref), { registry: { credentials: creds, transport: { attempts: 1 } } }));
    expect(none.hint).toBe(
      "no CA given for the registry's certificate (issuer CN=Login Test Registry CA): pass it with --registry-ca FILE (PROVISIONING_CONTAINER_REGISTRY_CA_FILE)",
    );
    const other = await tempDir();
    await makeTestCa(other, 'Some Other CA');
    const wrong = await sourceFailure(
      resolveSource(parseSourceReference(ref), { registry: { credentials: creds, transport: { attempts: 1, caFile: path.join(other, 'ca.pem') } } }),
    );
    expect(wrong.hint).toBe(
      `the CA in --registry-ca ${path.join(other, 'ca.pem')} does not match the registry's certificate (issuer CN=Login Test Registry CA): pass the CA that issued it`,
    );
    const insecure = await sourceFailure(
      resolveSource(parseSourceReference(ref), { registry: { credentials: creds, insecureHosts: [registry.host], transport: { attempts: 1 } } }),
    );
    expect(insecure.message).toMatch(/speaks TLS, but it is named in --insecure-registry/);
    // An unreadable --registry-ca is the operator's configuration (exit 2), not an unavailable source.
    const missingCa = await resolveSource(parseSourceReference(ref), { registry: { transport: { caFile: path.join(other, 'nope.pem') } } }).catch(
      (e: unknown) => e,
    );
    expect(missingCa).toBeInstanceOf(ConfigError);
    expect((missingCa as ConfigError).exitCode).toBe(2);
  });
});

describe('plain HTTP, User-Agent and IPv6 literals', () => {
  let registry: TestRegistry;
  let proxy: Server;
  const agents: string[] = [];
  let v6Host = '';
  beforeAll(async () => {
    registry = await startRegistry();
    await pushLayout(LAYOUT, 'latest', `${registry.host}/zeta/provisioning:v1`);
    const [host, port] = registry.host.split(':');
    // A forwarding proxy on [::1] (loopback): the registry as seen at an IPv6 literal address.
    proxy = createServer((req, res) => {
      agents.push(String(req.headers['user-agent']));
      const up = request({ host, port: Number(port), path: req.url, method: req.method, headers: { ...req.headers, host: registry.host } }, (r) => {
        res.writeHead(r.statusCode ?? 502, r.headers);
        r.pipe(res);
      });
      up.on('error', () => res.destroy());
      req.pipe(up);
    });
    await new Promise<void>((r) => proxy.listen(0, '::1', r));
    v6Host = `[::1]:${(proxy.address() as { port: number }).port}`;
  });
  afterAll(async () => {
    proxy?.closeAllConnections();
    await new Promise((r) => proxy?.close(r));
    await registry?.stop();
  });

  it('a plain-HTTP registry reached over https gets the --insecure-registry hint', async () => {
    const err = await sourceFailure(resolveSource(parseSourceReference(`${registry.host}/zeta/provisioning:v1`), { registry: { transport: { attempts: 1 } } }));
    expect(err.hint).toBe(
      `the registry answers plain HTTP, not TLS: if that is intended, pass --insecure-registry ${registry.host} (ZETA_PROVISION_INSECURE_REGISTRY)`,
    );
  });

  it('pulls from an IPv6 literal host, saying zeta-provision/<version> on every request', async () => {
    const version = JSON.parse(await readFile(path.join(REPO_ROOT, 'package.json'), 'utf8')).version;
    agents.length = 0;
    const opts = { registry: { insecureHosts: [v6Host] } };
    const resolved = await resolveSource(parseSourceReference(`${v6Host}/zeta/provisioning:v1`), opts);
    const r = await unpackSource(resolved, path.join(await tempDir(), 'staging'), {}, opts);
    expect(r.files).toBeGreaterThan(3);
    expect(agents.length).toBeGreaterThan(3);
    expect(new Set(agents)).toEqual(new Set([`zeta-provision/${version}`]));
  });
});
