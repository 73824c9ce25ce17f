import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { PIPELINE, parseCommandLine } from '../../src/cli/index.js';
import { RUN_OPTIONS, envNames, longFlag } from '../../src/cli/options.js';
import { flagsFromEnv } from '../../src/cli/options.js';
import { UsageError } from '../../src/errors.js';

const run = (argv: string[], env: NodeJS.ProcessEnv = {}) => {
  const cmd = parseCommandLine(['run', ...argv], env, '0.0.0');
  if (cmd.name !== 'run') throw new Error('expected run');
  return cmd.flags;
};

describe('command line and env twins', () => {
  it('reads every documented option', () => {
    const f = run([
      '--config',
      'c.yaml',
      '--source',
      'dir:/p',
      '--volume',
      'v',
      '--kube-out',
      'k',
      '--dry-run',
      '--detailed-exitcode',
      '--output',
      'json',
      '--log-format',
      'text',
      '--force',
      '--namespace',
      'ns',
    ]);
    expect(f).toEqual({
      config: 'c.yaml',
      source: 'dir:/p',
      volume: 'v',
      kubeOut: 'k',
      dryRun: 'client',
      detailedExitcode: true,
      output: 'json',
      logFormat: 'text',
      force: true,
      namespace: 'ns',
    });
  });

  it('flags beat ZETA_PROVISION_* which beat gematik names', () => {
    const env = { ZETA_PROVISION_SOURCE: 'dir:/env', PROVISIONING_CONTAINER_NAME: 'dir:/gematik', RESULT_DIR: '/gematik-vol' };
    expect(run([], env).source).toBe('dir:/env');
    expect(run([], env).volume).toBe('/gematik-vol');
    expect(run(['--source', 'dir:/flag'], env).source).toBe('dir:/flag');
    expect(run([], { PROVISIONING_CONTAINER_NAME: 'dir:/gematik' }).source).toBe('dir:/gematik');
  });

  it('parses boolean env values strictly (false means false)', () => {
    expect(run([], { ZETA_PROVISION_FORCE: 'false' }).force).toBe(false);
    expect(run([], { ZETA_PROVISION_FORCE: '1' }).force).toBe(true);
    expect(run([], { ZETA_PROVISION_DRY_RUN: 'true' }).dryRun).toBe('client');
    expect(run([], { ZETA_PROVISION_DRY_RUN: 'server' }).dryRun).toBe('server');
    for (const [raw, value] of [
      ['yes', true],
      ['YES', true],
      ['on', true],
      ['no', false],
      ['0', false],
      ['off', false],
      ['False', false],
    ] as const) {
      expect(run([], { ZETA_PROVISION_FORCE: raw }).force, raw).toBe(value);
    }
    expect(run([], { ZETA_PROVISION_DRY_RUN: 'no' }).dryRun).toBe(false);
    expect(() => run([], { ZETA_PROVISION_FORCE: 'maybe' })).toThrowError(/ZETA_PROVISION_FORCE: expected true\/false, yes\/no, 1\/0 or on\/off, got "maybe"/);
  });

  it('refuses a misspelt ZETA_PROVISION_ variable instead of ignoring it', () => {
    expect(() => flagsFromEnv({ ZETA_PROVISION_VOLUMES: '/x' })).toThrowError(/unknown environment variable ZETA_PROVISION_VOLUMES/);
  });

  it('bad values and unknown options are usage errors', () => {
    expect(() => run(['--output', 'xml'])).toThrowError(/--output: expected "text", "json" or "yaml", got "xml"/);
    expect(() => run(['--dry-run=sideways'])).toThrowError(UsageError);
    expect(() => run(['--sauce'])).toThrowError(UsageError);
    expect(() => parseCommandLine(['frobnicate'], {}, '0')).toThrowError(UsageError);
  });

  it('help teaches the options, env twins, examples and exit codes', () => {
    const help = parseCommandLine(['run', '--help'], {}, '0');
    expect(help.name).toBe('help');
    const text = (help as { text: string }).text;
    for (const needle of [
      '--source <ref>',
      'ZETA_PROVISION_KUBE_OUT',
      'PROVISIONING_CONTAINER_NAME',
      'Examples:',
      '3 verification failed',
      '10 changes pending',
    ]) {
      expect(text).toContain(needle);
    }
  });

  it('speaks kubectl: -o, -n, --kubeconfig, --context, --version and -v', () => {
    expect(run(['-o', 'yaml', '-n', 'zeta', '--kubeconfig', 'k.yaml', '--context', 'prod'])).toEqual({
      output: 'yaml',
      namespace: 'zeta',
      kubeconfig: 'k.yaml',
      context: 'prod',
    });
    for (const flag of ['--version', '-v']) {
      const v = parseCommandLine([flag], {}, '1.2.3');
      expect(v).toEqual({ name: 'help', text: '1.2.3\n' });
    }
    expect(parseCommandLine(['version', '-o', 'json'], {}, '1')).toEqual({ name: 'version', output: 'json' });
    expect(parseCommandLine(['status', '-o', 'yaml', '--volume', '/v'], {}, '1')).toEqual({ name: 'status', volume: '/v', output: 'yaml' });
  });

  it('a usage error hints at the help of the command being parsed', () => {
    for (const cmd of ['run', 'verify', 'status', 'rollback']) {
      const err = (() => {
        try {
          parseCommandLine([cmd, '--bogus'], {}, '0');
        } catch (e) {
          return e as UsageError;
        }
        throw new Error('no error');
      })();
      expect(err).toBeInstanceOf(UsageError);
      expect(err.hint).toBe(`see zeta-provision ${cmd} --help`);
    }
  });

  it('verify takes the same source, trust and processor options and env twins as run, none of its targets', () => {
    const args = [
      '--profile',
      'gematik',
      '--source',
      'dir:/p',
      '--tsl-signer-anchor',
      'a.pem,b.pem',
      '--tsl-trust',
      'gematik-rca-test',
      '--tsl-signature',
      'required',
      '--tsl-grace-days',
      '3',
      '--volume',
      '/v',
      '--allow-downgrade',
    ];
    const v = parseCommandLine(['verify', ...args], {}, '0');
    expect(v).toEqual({ name: 'verify', flags: run(args) });
    const env = {
      ZETA_PROVISION_PROFILE: 'gematik',
      ZETA_PROVISION_TSL_SIGNER_ANCHOR: 'x.pem',
      ZETA_PROVISION_TSL_SIGNATURE: 'off',
      ZETA_PROVISION_DRY_RUN: 'true',
      ZETA_PROVISION_KUBE_OUT: '/k',
    };
    const fromEnv = parseCommandLine(['verify'], env, '0');
    // The targets' twins are accepted (a CI job's environment is shared) but mean nothing to verify.
    expect(fromEnv).toEqual({ name: 'verify', flags: { profile: 'gematik', tslSignerAnchor: ['x.pem'], tslSignature: 'off' } });
    expect(() => parseCommandLine(['verify', '--kube-out', 'k'], {}, '0')).toThrowError(UsageError);
  });

  it('rollback --to has its env twin; flags win', () => {
    expect(parseCommandLine(['rollback', '--volume', '/v'], { ZETA_PROVISION_TO: '..g1' }, '0')).toMatchObject({
      name: 'rollback',
      volume: '/v',
      output: 'text',
      to: '..g1',
      flags: { volume: '/v' },
    });
    expect(parseCommandLine(['rollback', '--volume', '/v', '--to', '..g2'], { ZETA_PROVISION_TO: '..g1' }, '0')).toMatchObject({ to: '..g2' });
    expect(parseCommandLine(['status'], { RESULT_DIR: '/r' }, '0')).toEqual({ name: 'status', volume: '/r', output: 'text' });
  });

  it('every help lists every option with its env twins in one format, and all source forms', () => {
    const helpOf = (cmd: string) => (parseCommandLine([cmd, '--help'], {}, '0') as { text: string }).text;
    for (const cmd of ['run', 'verify', 'status', 'rollback', 'watch']) {
      // One entry per option: its first line starts with "  -", continuation lines are indented deeper.
      const entries = helpOf(cmd)
        .split(/\n(?= {2}-)/)
        .filter((e) => /^ {2}-/.test(e))
        .map((e) => e.split(/\n\n/)[0]!.replace(/\s+/g, ' '));
      const options = entries.map((e) => /--[a-z-]+/.exec(e)![0]).filter((f) => f !== '--help');
      expect(options.length, cmd).toBeGreaterThan(1);
      for (const [i, flag] of options.entries()) {
        const twin = 'ZETA_PROVISION_' + flag.slice(2).toUpperCase().replace(/-/g, '_');
        expect(entries[i], `${cmd} ${flag}`).toMatch(new RegExp(`\\[env: ${twin}(, [A-Z_]+)*\\]$`));
      }
    }
    for (const cmd of ['run', 'verify']) {
      for (const form of ['REGISTRY/REPO[:TAG|@sha256:DIGEST]', 'oci-layout:PATH', 'oci-archive:PATH', 'docker-archive:PATH', 'dir:PATH'])
        expect(helpOf(cmd).replace(/\s+/g, ' '), `${cmd} ${form}`).toContain(form);
    }
    // The order the help gives is the order of src/pipeline.ts: the image signature before unpacking.
    expect(helpOf('run').replace(/\s+/g, ' ')).toContain('resolve → [up to date? stop] → verify image signature → unpack → verify files');
  });

  it('the README documents every option with its env twins, and the pipeline in the order of the code', () => {
    const readme = readFileSync(path.resolve(__dirname, '../../README.md'), 'utf8');
    const section = readme.slice(readme.indexOf('## Command line'), readme.indexOf('### Exit codes'));
    for (const spec of RUN_OPTIONS) {
      const row = section.split('\n').find((l) => new RegExp(`^\\| \`(-\\w, )?${longFlag(spec)}[ \`]`).test(l));
      expect(row, longFlag(spec)).toBeDefined();
      for (const name of envNames(spec)) expect(row, `${longFlag(spec)} ${name}`).toContain(`\`${name}\``);
    }
    expect(section.replace(/`/g, '').replace(/\s+/g, ' ')).toContain(PIPELINE.replace(/\s+/g, ' '));
  });
});
