import { describe, expect, it } from 'vitest';
import { parseCommandLine } from '../../src/cli/index.js';
import { flagsFromEnv } from '../../src/cli/options.js';
import { UsageError } from '../../src/errors.js';

const run = (argv: string[], env: NodeJS.ProcessEnv = {}) => {
  const cmd = parseCommandLine(['run', ...argv], env, '0.0.0');
  if (cmd.name !== 'run') throw new Error('expected run');
  return cmd.flags;
};

describe('command line and env twins', () => {
  it('reads every documented option', () => {
    const f = run(['--config', 'c.yaml', '--source', 'dir:/p', '--volume', 'v', '--kube-out', 'k', '--dry-run', '--detailed-exitcode', '--output', 'json', '--log-format', 'text', '--force', '--namespace', 'ns']);
    expect(f).toEqual({ config: 'c.yaml', source: 'dir:/p', volume: 'v', kubeOut: 'k', dryRun: 'client', detailedExitcode: true, output: 'json', logFormat: 'text', force: true, namespace: 'ns' });
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
    expect(() => run([], { ZETA_PROVISION_FORCE: 'maybe' })).toThrowError(/ZETA_PROVISION_FORCE: expected true or false/);
  });

  it('refuses a misspelt ZETA_PROVISION_ variable instead of ignoring it', () => {
    expect(() => flagsFromEnv({ ZETA_PROVISION_VOLUMES: '/x' })).toThrowError(/unknown environment variable ZETA_PROVISION_VOLUMES/);
  });

  it('bad values and unknown options are usage errors', () => {
    expect(() => run(['--output', 'yaml'])).toThrowError(/--output: expected "text" or "json", got "yaml"/);
    expect(() => run(['--dry-run=sideways'])).toThrowError(UsageError);
    expect(() => run(['--sauce'])).toThrowError(UsageError);
    expect(() => parseCommandLine(['frobnicate'], {}, '0')).toThrowError(UsageError);
  });

  it('help teaches the options, env twins, examples and exit codes', () => {
    const help = parseCommandLine(['run', '--help'], {}, '0');
    expect(help.name).toBe('help');
    const text = (help as { text: string }).text;
    for (const needle of ['--source <ref>', 'ZETA_PROVISION_KUBE_OUT', 'PROVISIONING_CONTAINER_NAME', 'Examples:', '3 verification failed', '10 changes pending']) {
      expect(text).toContain(needle);
    }
  });
});
