/**
 * The initdata processor against real peers: `base64 -d | gzip -d` give back the rendered bytes,
 * a second TOML parser (Python's tomllib) reads the same parts, and PCR 8 equals the OSC guides'
 * `sha256sum` + `xxd -r -p` + `sha256sum` one-liner over the same file.
 */
import { createHash } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { execa } from 'execa';
import { parse as parseToml } from 'smol-toml';
import { beforeAll, describe, expect, it } from 'vitest';
import { parseConfigText } from '../../src/config/index.js';
import type { InitdataConfig } from '../../src/config/initdata.js';
import { VerifyError } from '../../src/errors.js';
import { buildInitdata, decodeInitdata, deriveInitdata, parseInitdata, platformValue } from '../../src/process/initdata/index.js';
import { walkTree } from '../../src/util/fs.js';
import { requireProgram } from '../support/programs.js';
import { useTempDirs } from '../support/tmp.js';

const tempDir = useTempDirs();
const PEM = '-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIUQ0FGRQ==\n-----END CERTIFICATE-----\n';
const AA =
  '[token_configs]\n[token_configs.coco_as]\nurl = \'https://kbs.example.org\'\n\n[token_configs.kbs]\nurl = \'https://kbs.example.org\'\ncert = """\n{{file:kbs/tls.crt}}\n"""\n';
const CDH =
  'socket = \'unix:///run/confidential-containers/cdh.sock\'\ncredentials = []\n\n[kbc]\nname = \'cc_kbc\'\nurl = \'https://kbs.example.org\'\nkbs_cert = """\n{{ file:kbs/tls.crt }}\n"""\n';
const POLICY = 'package agent_policy\n\ndefault CreateContainerRequest := true\ndefault ExecProcessRequest := false\n';

function config(extra = ''): InitdataConfig {
  const c = parseConfigText(
    `initdata:\n  peerPodsConfigMap: true\n  parts:\n    aa.toml: { template: coco/aa.toml.tpl }\n    cdh.toml: { template: coco/cdh.toml.tpl }\n    policy.rego: { file: coco/policy.rego }\n${extra}`,
    'test.yaml',
    '/cfg',
  );
  return c.initdata!;
}

async function payload(files: Record<string, string>): Promise<string> {
  const root = path.join(await tempDir(), 'payload');
  for (const [rel, text] of Object.entries(files)) {
    await mkdir(path.dirname(path.join(root, rel)), { recursive: true });
    await writeFile(path.join(root, rel), text);
  }
  return root;
}

const standard = { 'coco/aa.toml.tpl': AA, 'coco/cdh.toml.tpl': CDH, 'coco/policy.rego': POLICY, 'kbs/tls.crt': PEM };

async function derive(files: Record<string, string>, cfg = config()) {
  const root = await payload(files);
  return deriveInitdata(root, await walkTree(root), cfg);
}

async function refusal(files: Record<string, string>, cfg = config()): Promise<string> {
  try {
    await derive(files, cfg);
  } catch (err) {
    expect(err).toBeInstanceOf(VerifyError);
    return (err as Error).message;
  }
  throw new Error('expected the initdata to be refused');
}

describe('initdata processor', () => {
  beforeAll(async () => {
    for (const [cmd, pkg] of [
      ['gzip', 'gzip'],
      ['base64', 'coreutils'],
      ['sha256sum', 'coreutils'],
      ['xxd', 'xxd'],
      ['python3', 'python3'],
    ] as const)
      await requireProgram(cmd, pkg);
  });

  it('renders a canonical document: sorted quoted keys, literal strings, certificate substituted', async () => {
    const out = await derive(standard);
    const text = out.toml.toString('utf8');
    expect(text.startsWith('algorithm = "sha256"\nversion = "0.1.0"\n\n[data]\n"aa.toml" = \'\'\'\n[token_configs]\n')).toBe(true);
    expect(text.indexOf('"aa.toml"')).toBeLessThan(text.indexOf('"cdh.toml"'));
    expect(text.indexOf('"cdh.toml"')).toBeLessThan(text.indexOf('"policy.rego"'));
    expect(text).toContain('kbs_cert = """\n-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIUQ0FGRQ==\n-----END CERTIFICATE-----\n"""\n');
    expect(out.parts).toEqual([
      { key: 'aa.toml', sources: ['coco/aa.toml.tpl', 'kbs/tls.crt'] },
      { key: 'cdh.toml', sources: ['coco/cdh.toml.tpl', 'kbs/tls.crt'] },
      { key: 'policy.rego', sources: ['coco/policy.rego'] },
    ]);
    // The parts as a guest sees them: TOML inside TOML, parsed twice.
    const doc = parseToml(text) as { data: Record<string, string> };
    expect((parseToml(doc.data['cdh.toml']!) as { kbc: { kbs_cert: string } }).kbc.kbs_cert).toBe(PEM);
    expect(doc.data['policy.rego']).toBe(POLICY);
  });

  it('identical inputs give identical bytes and encoding, whatever the order of the parts in the config', async () => {
    const a = await derive(standard);
    const reordered = config().parts.slice().reverse();
    const b = await derive(standard, { ...config(), parts: reordered });
    expect(b.toml.equals(a.toml)).toBe(true);
    expect(b.encoded).toBe(a.encoded);
    expect(b.id).toBe(a.id);
    const changed = await derive({ ...standard, 'coco/policy.rego': POLICY + 'default ReadStreamRequest := false\n' });
    expect(changed.id).not.toBe(a.id);
    expect(changed.values['azure-vtpm']).not.toBe(a.values['azure-vtpm']);
  });

  it('round-trips through the real base64 -d and gzip -d, and through a second TOML parser (python3 tomllib)', async () => {
    const out = await derive(standard);
    const decoded = await execa('sh', ['-c', 'base64 -d | gzip -d'], { input: out.encoded, encoding: 'buffer', stripFinalNewline: false });
    expect(Buffer.from(decoded.stdout).equals(out.toml)).toBe(true);
    const py = await execa('python3', ['-c', 'import sys, tomllib, json; d = tomllib.loads(sys.stdin.read()); print(json.dumps(d, sort_keys=True))'], {
      input: out.toml.toString('utf8'),
    });
    const viaPython = JSON.parse(py.stdout) as { algorithm: string; version: string; data: Record<string, string> };
    expect(viaPython.algorithm).toBe('sha256');
    expect(viaPython.version).toBe('0.1.0');
    expect(viaPython.data).toEqual(parseInitdata(out.toml, 't').data);
    // What `gzip | base64 -w0` of the same file gives decodes to the same document too.
    const theirs = await execa('sh', ['-c', 'gzip -9n | base64 -w0'], { input: out.toml });
    expect(decodeInitdata(theirs.stdout)?.equals(out.toml)).toBe(true);
  });

  it('PCR 8 equals the OSC one-liner: sha256sum, 32 zero bytes in front, xxd -r -p, sha256sum', async () => {
    const out = await derive(standard);
    const dir = await tempDir();
    await writeFile(path.join(dir, 'initdata.toml'), out.toml);
    const oneLiner =
      'hash=$(sha256sum initdata.toml | cut -d" " -f1); initial_pcr=0000000000000000000000000000000000000000000000000000000000000000; echo -n "$initial_pcr$hash" | xxd -r -p | sha256sum | cut -d" " -f1';
    const { stdout } = await execa('bash', ['-c', oneLiner], { cwd: dir });
    expect(out.values['azure-vtpm']).toBe(stdout.trim());
    expect(out.values['azure-vtpm']).toMatch(/^[0-9a-f]{64}$/);
  });

  it('TDX and SNP take the algorithm digest fitted to 48 and 32 bytes (kata-types adjust_digest)', () => {
    const toml = Buffer.from('algorithm = "sha384"\nversion = "0.1.0"\n\n[data]\n');
    const sha384 = createHash('sha384').update(toml).digest('hex');
    expect(platformValue('tdx', 'sha384', toml)).toBe(sha384);
    expect(platformValue('snp', 'sha384', toml)).toBe(sha384.slice(0, 64));
    const sha256 = createHash('sha256').update(toml).digest('hex');
    expect(platformValue('tdx', 'sha256', toml)).toBe(sha256 + '00'.repeat(16));
    expect(platformValue('snp', 'sha512', toml)).toBe(createHash('sha512').update(toml).digest('hex').slice(0, 64));
    const both = buildInitdata({ algorithm: 'sha384', platforms: ['tdx', 'snp'] }, { 'x.toml': 'a = 1\n' });
    expect(Object.keys(both.values)).toEqual(['tdx', 'snp']);
  });

  it('a part that cannot be a literal string is written as an escaped basic string and still round-trips', () => {
    const tricky = { 'a.toml': "k = '''x'''\n", 'b.txt': "ends with a quote'", 'c.txt': 'tab\tcr\r\nnul-free \u0001 ctl', 'd.txt': 'naïve 💡' };
    const out = buildInitdata({ algorithm: 'sha256', platforms: ['azure-vtpm'] }, tricky);
    expect(parseInitdata(out.toml, 't').data).toEqual(tricky);
    expect(out.toml.toString()).toContain('"b.txt" = "ends with a quote\'"');
  });

  it.each([
    ['a missing payload file', { ...standard, 'coco/policy.rego': undefined }, /initdata part policy\.rego: the payload has no file coco\/policy\.rego/],
    ['a missing substituted file', { ...standard, 'kbs/tls.crt': undefined }, /the payload has no file kbs\/tls\.crt/],
    ['a TOML part that is not TOML', { ...standard, 'coco/cdh.toml.tpl': 'socket = \n' }, /initdata part cdh\.toml \(coco\/cdh\.toml\.tpl\) is not valid TOML/],
    ['a policy without package clause', { ...standard, 'coco/policy.rego': 'default X := true\n' }, /does not start with a Rego package clause/],
    [
      'a policy of another package',
      { ...standard, 'coco/policy.rego': 'package other\ndefault X := true\n' },
      /package other; the Kata agent reads package agent_policy/,
    ],
    ['a policy with unbalanced braces', { ...standard, 'coco/policy.rego': 'package agent_policy\nallow { true\n' }, /unbalanced braces/],
    ['an unknown placeholder', { ...standard, 'coco/aa.toml.tpl': 'x = "{{env:HOME}}"\n' }, /unknown placeholder \{\{env:HOME\}\}/],
    [
      'a substitution that would end the string',
      { ...standard, 'kbs/tls.crt': 'x"""\nextra = 1\n' },
      /kbs\/tls\.crt cannot be substituted into coco\/aa\.toml\.tpl: it contains three quotes/,
    ],
    ['binary in a part', { ...standard, 'coco/policy.rego': 'package agent_policy\n\u0000\n' }, /NUL byte/],
  ])('refuses %s', async (_name, files, message) => {
    const clean = Object.fromEntries(Object.entries(files).filter(([, v]) => v !== undefined)) as Record<string, string>;
    expect(await refusal(clean)).toMatch(message);
  });

  it('refuses a part over the size limit and an encoded document over the annotation budget', async () => {
    expect(await refusal({ ...standard, 'coco/policy.rego': 'package agent_policy\n' + '#'.repeat(300 * 1024) })).toMatch(/over the 262144-byte limit/);
    // Incompressible text: the encoded form, not the TOML, hits the bound.
    const noise = Array.from({ length: 2500 }, (_, i) => `# ${createHash('sha512').update(String(i)).digest('base64')}`).join('\n');
    expect(() => buildInitdata({ algorithm: 'sha256', platforms: ['azure-vtpm'] }, { 'a.txt': noise, 'b.txt': noise.split('').reverse().join('') })).toThrow(
      /encoded initdata is \d+ bytes, over the 98304-byte limit/,
    );
  });

  it('decodes live values defensively: not base64, not gzip, or a gzip bomb give undefined', async () => {
    expect(decodeInitdata('not base64!')).toBeUndefined();
    expect(decodeInitdata(Buffer.from('plain').toString('base64'))).toBeUndefined();
    const { gzipSync } = await import('node:zlib');
    const bomb = gzipSync(Buffer.alloc(8 * 1024 * 1024)).toString('base64');
    expect(decodeInitdata(bomb)).toBeUndefined();
  });
});

describe('initdata config', () => {
  const parse = (yaml: string) => parseConfigText(yaml, 'test.yaml', '/cfg');
  it("defaults: azure-vtpm, sha256, both annotation keys, the operators' namespaces and names", () => {
    const c = config();
    expect(c.algorithm).toBe('sha256');
    expect(c.platforms).toEqual(['azure-vtpm']);
    expect(c.annotations).toEqual(['io.katacontainers.config.hypervisor.cc_init_data', 'io.katacontainers.config.runtime.cc_init_data']);
    expect(c.peerPodsConfigMap).toEqual({ namespace: 'openshift-sandboxed-containers-operator', name: 'peer-pods-cm', key: 'INITDATA' });
    expect(c.referenceValues).toMatchObject({
      namespace: 'trustee-operator-system',
      name: 'rvps-reference-values',
      key: 'reference-values.json',
      format: 'hash-value',
      validDays: 365,
      refreshDays: 30,
    });
    expect(c.referenceValues.names['azure-vtpm']).toBe('pcr08');
    expect(config('  platforms: [tdx]\n').algorithm).toBe('sha384');
  });
  it.each([
    ['azure-vtpm with sha384', '  algorithm: sha384\n', /initdata\.algorithm: azure-vtpm needs algorithm sha256/],
    ['an unknown platform', '  platforms: [sgx]\n', /initdata\.platforms\.0: unknown platform "sgx"/],
    ['a bad deployment reference', '  deployments: [pep]\n', /initdata\.deployments\.0: "pep" is not NAMESPACE\/DEPLOYMENT/],
    ['refreshDays not below validDays', '  referenceValues: { validDays: 10, refreshDays: 10 }\n', /refreshDays: must be less than validDays/],
  ])('refuses %s with the key', (_n, extra, message) => {
    expect(() => config(extra)).toThrow(message);
  });
  it('refuses a part path outside the payload and a config without any target', () => {
    expect(() => parse('initdata:\n  peerPodsConfigMap: true\n  parts:\n    aa.toml: { file: ../x }\n')).toThrow(
      /initdata\.parts\.aa\.toml\.file: "\.\.\/x": must not contain "\.\."/,
    );
    expect(() => parse('initdata:\n  parts:\n    aa.toml: { file: x }\n')).toThrow(/initdata: name a target: peerPodsConfigMap and\/or deployments/);
  });
});
