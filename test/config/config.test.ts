import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfigFile, parseConfigText, resolveSettings } from '../../src/config/index.js';
import { ConfigError, UsageError } from '../../src/errors.js';

const parse = (text: string) => parseConfigText(text, 'test.yaml', '/cfg');

describe('config file', () => {
  it('the built-in default reproduces the classic layout', async () => {
    const c = await loadConfigFile(undefined);
    expect(c.verify).toEqual([
      {
        files: ['TrustedTpm.cab'],
        kind: 'authenticode',
        signature: 'detached',
        trust: ['microsoft'],
        required: true,
        eku: [{ oid: '1.3.6.1.5.5.7.3.3', name: 'codeSigning' }],
      },
    ]);
    expect(c.volume.files).toEqual(['keycloak-data/**']);
    expect(c.configMaps).toEqual([
      { name: 'nginx-config', files: [{ path: 'nginx/nginx.conf', key: 'nginx.conf' }], secret: false, consumers: [] },
      { name: 'opa-policy', files: [{ path: 'opa/policy.rego', key: 'policy.rego' }], secret: false, consumers: [] },
    ]);
  });

  it('resolves trust files and the volume dir against the config directory', () => {
    const c = parse('trust:\n  ca: [certs/root.pem]\nvolume:\n  dir: vol\n  files: ["a/**"]\n');
    expect(c.trust.ca).toEqual([path.resolve('/cfg/certs/root.pem')]);
    expect(c.volume.dir).toBe(path.resolve('/cfg/vol'));
  });

  it.each([
    ['unknown top-level key', 'sauce: x\n', /test\.yaml:1: sauce: unknown key/],
    ['payload path with ..', 'volume:\n  files:\n    - "../x"\n', /test\.yaml:3: volume\.files\.0: "\.\.\/x": must not contain "\.\."/],
    ['absolute payload path', 'configMaps:\n  - name: a\n    files: [/etc/passwd]\n', /configMaps\.0\.files\.0\.path: "\/etc\/passwd": must be relative/],
    ['backslash', 'volume:\n  files: ["a\\\\b"]\n', /contains a backslash/],
    ['reserved .. prefix', 'volume:\n  files: ["..data/x"]\n', /reserved for the volume layout/],
    [
      'bad kind',
      'verify:\n  - files: a\n    kind: pgp\n    trust: [microsoft]\n',
      /test\.yaml:3: verify\.0\.kind: expected "cms" or "authenticode", got "pgp"/,
    ],
    ['unknown trust set', 'verify:\n  - files: a\n    trust: [nope]\n', /verify\.0\.trust\.0: unknown trust set "nope"/],
    [
      'invalid ConfigMap name',
      'configMaps:\n  - name: Nginx_Config\n    files: [a]\n',
      /test\.yaml:2: configMaps\.0\.name: "Nginx_Config" is not a valid ConfigMap name/,
    ],
    ['invalid ConfigMap key', 'configMaps:\n  - name: a\n    files: [{path: x, key: "a b"}]\n', /"a b" is not a valid ConfigMap key/],
    ['duplicate key', 'configMaps:\n  - name: a\n    files: [x/n.conf, y/n.conf]\n', /key "n\.conf" appears twice/],
    ['glob in ConfigMap', 'configMaps:\n  - name: a\n    files: ["x/*.conf"]\n', /exact paths, not globs/],
    ['invalid YAML', 'verify: [\n', /test\.yaml:\d+: invalid YAML/],
    ['not a mapping', '- a\n', /\(top level\): expected a mapping/],
    ['bad namespace', 'namespace: Zeta\n', /namespace: "Zeta" is not a valid namespace name/],
  ])('%s is refused with the key (and line)', (_name, text, message) => {
    expect(() => parse(text)).toThrowError(message);
    expect(() => parse(text)).toThrowError(ConfigError);
  });

  it('a missing config file is one clear line', async () => {
    await expect(loadConfigFile('/nonexistent/zeta.yaml')).rejects.toThrowError(/^cannot read config \/nonexistent\/zeta\.yaml: no such file$/);
  });

  it('caps YAML aliases (billion laughs)', () => {
    const laughs = ['a: &a ["x","x","x","x","x","x","x","x","x","x"]'];
    for (let i = 1; i < 12; i++)
      laughs.push(
        `${'b'.repeat(i)}: &${'b'.repeat(i)} [${Array(10)
          .fill(i === 1 ? '*a' : '*' + 'b'.repeat(i - 1))
          .join(',')}]`,
      );
    expect(() => parse(laughs.join('\n') + '\n')).toThrowError(ConfigError);
  });
});

describe('settings precedence', () => {
  const config = parseConfigText('source: dir:from-file\nnamespace: filens\nvolume:\n  dir: /file/vol\n', 'c.yaml', '/cfg');

  it('flags beat the file; the file beats defaults', () => {
    const s = resolveSettings({ source: 'dir:/flag' }, config, {}, '/cwd');
    expect(s.source).toBe('dir:/flag');
    expect(s.sourceBaseDir).toBe('/cwd');
    expect(s.volumeDir).toBe('/file/vol');
    expect(s.namespace).toBe('filens');
    expect(s.output).toBe('text');
    expect(s.dryRun).toBe(false);
  });

  it('a relative source from the file resolves against the file', () => {
    expect(resolveSettings({}, config, {}, '/cwd').sourceBaseDir).toBe('/cfg');
  });

  it('gematik registry credentials come in pairs', () => {
    expect(() => resolveSettings({}, config, { PROVISIONING_CONTAINER_REGISTRY_USERNAME: 'u' })).toThrowError(UsageError);
    const s = resolveSettings({}, config, {
      PROVISIONING_CONTAINER_REGISTRY_USERNAME: 'u',
      PROVISIONING_CONTAINER_REGISTRY_TOKEN: 'sekrit',
      SMCB_RESULT_FILENAME: 'x.p12',
    });
    expect(s.gematik.registryToken).toBe('sekrit');
    expect(s.gematik.resultFilenames).toEqual({ SMCB_RESULT_FILENAME: 'x.p12' });
  });

  it('--detailed-exitcode without --dry-run is a usage error', () => {
    expect(() => resolveSettings({ detailedExitcode: true }, config, {})).toThrowError(/only has a meaning together with --dry-run/);
  });

  it('the config hash changes with the outputs, not with the file location', () => {
    const a = resolveSettings({}, parseConfigText('volume:\n  files: [a]\n', 'x.yaml', '/one'), {});
    const b = resolveSettings({}, parseConfigText('volume:\n  files: [a]\n', 'y.yaml', '/two'), {});
    const c = resolveSettings({}, parseConfigText('volume:\n  files: [b]\n', 'x.yaml', '/one'), {});
    expect(a.configHash).toBe(b.configHash);
    expect(a.configHash).not.toBe(c.configHash);
  });
});

describe('TSL trust settings', () => {
  it('process.tsl.trust names built-in or defined trust sets; signature is required or off', () => {
    const ok = parse('trust:\n  mine: [a.pem]\nprocess:\n  tsl:\n    files: [t.xml]\n    trust: [gematik-rca, mine]\n    signature: off\n');
    expect(ok.process?.tsl).toMatchObject({ trust: ['gematik-rca', 'mine'], signature: 'off', signerAnchors: [] });
    expect(() => parse('process:\n  tsl:\n    files: [t.xml]\n    trust: [acme]\n')).toThrowError(
      /process\.tsl\.trust\.0: unknown trust set "acme" \(built in: microsoft, gematik-rca, gematik-rca-test/,
    );
    expect(() => parse('process:\n  tsl:\n    files: [t.xml]\n    signature: maybe\n')).toThrowError(
      /process\.tsl\.signature: expected "required" or "off", got "maybe"/,
    );
  });

  it('the gematik profile anchors the TSL to the shipped production roots', async () => {
    const { profileConfigFile } = await import('../../src/config/index.js');
    const profile = await loadConfigFile(profileConfigFile({ profile: 'gematik' }));
    expect(profile.process?.tsl).toMatchObject({ trust: ['gematik-rca'], signature: 'required' });
  });

  it('--tsl-trust must name a known set; --tsl-signer-anchor files resolve against the cwd', () => {
    const config = parse('process:\n  tsl:\n    files: [t.xml]\n');
    expect(
      resolveSettings({ tslTrust: ['gematik-rca-test'], tslSignerAnchor: ['a.pem', '/abs/b.pem'], tslSignature: 'required' }, config, {}, '/cwd').process,
    ).toMatchObject({
      tslTrust: ['gematik-rca-test'],
      tslSignerAnchors: ['/cwd/a.pem', '/abs/b.pem'],
      tslSignature: 'required',
    });
    expect(() => resolveSettings({ tslTrust: ['acme'] }, config, {}, '/cwd')).toThrowError(UsageError);
  });

  it('a registry auth file that does not exist is a usage error naming the flag', () => {
    expect(() => resolveSettings({ registryAuthFile: 'nope.json' }, parse(''), {}, '/nonexistent')).toThrowError(
      /^--registry-auth-file nope\.json: no such file or directory$/,
    );
  });
});
