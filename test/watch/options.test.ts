import { describe, expect, it } from 'vitest';
import { UsageError } from '../../src/errors.js';
import { parseCommandLine } from '../../src/cli/index.js';
import { describeAction, parseSignal, parseWatchOptions } from '../../src/watch/options.js';

const dir = { dir: '/provisioning' };

describe('watch options', () => {
  it('parses a signal to the process named nginx, with defaults', () => {
    const o = parseWatchOptions({ ...dir, validate: 'nginx -t', signal: 'hup', processName: 'nginx' });
    expect(o.action).toEqual({ kind: 'signal', signal: 'SIGHUP', target: { kind: 'process-name', name: 'nginx' } });
    expect(o).toMatchObject({ validate: 'nginx -t', debounceMs: 1000, maxDelayMs: 10_000, pollMs: 30_000, onStart: 'auto' });
    // The cap: ten times the debounce, at least 10 s.
    expect(parseWatchOptions({ ...dir, exec: 'true', debounceMs: '2500' }).maxDelayMs).toBe(25_000);
    expect(parseWatchOptions({ ...dir, exec: 'true', debounceMs: '100' }).maxDelayMs).toBe(10_000);
    expect(describeAction(o.action)).toBe('SIGHUP to process "nginx"');
  });

  it('parses the OPA PUT and keeps credentials out of URLs', () => {
    const o = parseWatchOptions({
      ...dir,
      http: ['put', 'http://127.0.0.1:8181/v1/policies/zeta'],
      bodyFile: '/p/policy.rego',
      onStart: true,
      pollSeconds: '2.5',
    });
    expect(o.action).toMatchObject({ kind: 'http', method: 'PUT', bodyFile: '/p/policy.rego' });
    expect(o.pollMs).toBe(2500);
    expect(o.onStart).toBe('always');
    expect(() => parseWatchOptions({ ...dir, http: ['PUT', 'http://u:secret@127.0.0.1/x'] })).toThrow(/must not contain credentials/);
    expect(() => parseWatchOptions({ ...dir, http: ['PUT'] })).toThrow(/METHOD URL, got 1/);
    expect(() => parseWatchOptions({ ...dir, http: ['FETCH', 'http://x/'] })).toThrow(/method "FETCH"/);
    expect(() => parseWatchOptions({ ...dir, http: ['PUT', 'file:///etc/passwd'] })).toThrow(/http: or https:/);
  });

  it('requires exactly one action and one signal target', () => {
    expect(() => parseWatchOptions({ ...dir })).toThrow(/needs one action/);
    expect(() => parseWatchOptions({ ...dir, signal: 'HUP', exec: 'true' })).toThrow(/exactly one action, got --signal and --exec/);
    expect(() => parseWatchOptions({ ...dir, signal: 'HUP' })).toThrow(/needs a target/);
    expect(() => parseWatchOptions({ ...dir, signal: 'HUP', pid: '7', processName: 'nginx' })).toThrow(/one target, got --pid and --process-name/);
    expect(() => parseWatchOptions({ ...dir, exec: 'true', pid: '7' })).toThrow(/only go with --signal/);
    expect(() => parseWatchOptions({ ...dir, exec: 'true', bodyFile: 'x' })).toThrow(/only goes with --http/);
    expect(() => parseWatchOptions({ signal: 'HUP', pid: '7' })).toThrow(/needs --dir/);
  });

  it('refuses bad PIDs, names, signals and numbers as usage errors', () => {
    for (const pid of ['0', '-1', '12a', '']) expect(() => parseWatchOptions({ ...dir, signal: 'HUP', pid })).toThrow(UsageError);
    expect(() => parseWatchOptions({ ...dir, signal: 'HUP', processName: '/usr/sbin/nginx' })).toThrow(/not a program name/);
    expect(() => parseSignal('KILL')).toThrow(/not a reload signal/);
    expect(() => parseSignal('NOPE')).toThrow(/not a reload signal/);
    expect(parseSignal('SIGUSR2')).toBe('SIGUSR2');
    expect(() => parseWatchOptions({ ...dir, exec: 'true', debounceMs: 'soon' })).toThrow(/--debounce-ms "soon"/);
    expect(() => parseWatchOptions({ ...dir, exec: 'true', pollSeconds: '0' })).toThrow(/--poll-seconds/);
  });

  it('takes --on-start as auto (unset), always (bare or always), never, and boolean words from the env', () => {
    const onStart = (argv: string[], env: Record<string, string> = {}) => {
      const cmd = parseCommandLine(['watch', '--dir', '/d', '--exec', 'true', ...argv], env, '0');
      return cmd.name === 'watch' ? cmd.options.onStart : undefined;
    };
    expect(onStart([])).toBe('auto');
    expect(onStart(['--on-start'])).toBe('always');
    expect(onStart(['--on-start', '--debug'])).toBe('always');
    expect(onStart(['--on-start=never'])).toBe('never');
    expect(onStart(['--on-start', 'auto'])).toBe('auto');
    expect(onStart([], { ZETA_PROVISION_ON_START: 'never' })).toBe('never');
    expect(onStart([], { ZETA_PROVISION_ON_START: 'false' })).toBe('never');
    expect(onStart([], { ZETA_PROVISION_ON_START: 'true' })).toBe('always');
    expect(onStart(['--on-start=always'], { ZETA_PROVISION_ON_START: 'never' })).toBe('always');
    expect(() => onStart(['--on-start=sometimes'])).toThrow('--on-start: expected auto, always or never, got "sometimes"');
    expect(() => onStart([], { ZETA_PROVISION_ON_START: 'later' })).toThrow(
      'environment variable ZETA_PROVISION_ON_START: expected auto, always or never, got "later"',
    );
  });

  it('is reachable through the command line with --http METHOD URL', () => {
    const cmd = parseCommandLine(
      ['watch', '--dir', '/d', '--http', 'PUT', 'http://127.0.0.1:8181/v1/policies/zeta', '--body-file', '/d/p.rego', '--log-format', 'json'],
      {},
      '0',
    );
    expect(cmd).toMatchObject({ name: 'watch', logFormat: 'json', options: { dir: '/d', action: { kind: 'http', method: 'PUT', bodyFile: '/d/p.rego' } } });
    expect(() => parseCommandLine(['watch', '--dir', '/d', '--signal', 'HUP'], {}, '0')).toThrow(/needs a target/);
    const help = parseCommandLine(['watch', '--help'], {}, '0');
    expect(help.name === 'help' && help.text).toContain('--process-name');
  });
});
