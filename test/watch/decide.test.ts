import { describe, expect, it } from 'vitest';
import { afterAttempt, decideReload, dueIn, noteChange } from '../../src/watch/decide.js';
import { combineDigests, isBookkeeping } from '../../src/watch/hash.js';
import { parseProcStat, selectTargets, type ProcInfo } from '../../src/watch/procs.js';

describe('debounce', () => {
  it('is due quietMs after the last change of a burst', () => {
    let s = noteChange({}, 1000);
    expect(dueIn(s, 1000, 500, 10_000)).toBe(500);
    s = noteChange(s, 1400);
    expect(s.firstChangeAt).toBe(1000);
    expect(dueIn(s, 1400, 500, 10_000)).toBe(500);
    expect(dueIn(s, 1900, 500, 10_000)).toBe(0);
    expect(dueIn(s, 5000, 500, 10_000)).toBe(0);
  });

  it('never waits longer than maxDelayMs after the first change, however often it changes', () => {
    let s = noteChange({}, 0);
    for (let t = 100; t <= 9_900; t += 100) s = noteChange(s, t);
    expect(dueIn(s, 9_900, 500, 10_000)).toBe(100);
  });

  it('has nothing pending without a change', () => {
    expect(dueIn({}, 123, 500, 10_000)).toBeUndefined();
  });
});

describe('reload decision', () => {
  it('reloads new content, skips applied content and content whose validation failed', () => {
    expect(decideReload({}, 'sha256:a')).toBe('reload');
    expect(decideReload({ applied: 'sha256:a' }, 'sha256:a')).toBe('unchanged');
    expect(decideReload({ applied: 'sha256:a', rejected: 'sha256:b' }, 'sha256:b')).toBe('rejected-before');
    expect(decideReload({ applied: 'sha256:a', rejected: 'sha256:b' }, 'sha256:c')).toBe('reload');
  });

  it('remembers a rejected hash, retries a failed action, and forgets the rejection after a reload', () => {
    const s1 = afterAttempt({ applied: 'a' }, 'b', 'validation-failed');
    expect(s1).toEqual({ applied: 'a', rejected: 'b' });
    expect(afterAttempt(s1, 'c', 'action-failed')).toEqual(s1);
    expect(decideReload(afterAttempt(s1, 'c', 'action-failed'), 'c')).toBe('reload');
    const s2 = afterAttempt(s1, 'c', 'reloaded');
    expect(s2).toEqual({ applied: 'c' });
    // Going back to the once-broken content after a fix is a change like any other.
    expect(decideReload(s2, 'b')).toBe('reload');
  });
});

describe('content hash', () => {
  it('depends on paths and digests, not on listing order', () => {
    const a = { path: 'nginx/nginx.conf', sha256: '11' };
    const b = { path: 'opa/policy.rego', sha256: '22' };
    expect(combineDigests([a, b])).toBe(combineDigests([b, a]));
    expect(combineDigests([a, b])).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(combineDigests([a, b])).not.toBe(combineDigests([a, { ...b, sha256: '23' }]));
    expect(combineDigests([a, b])).not.toBe(combineDigests([a, { ...b, path: 'opa/policy2.rego' }]));
    // The separator keeps "a" + "b/c" and "a/b" + "c" apart.
    expect(combineDigests([{ path: 'x', sha256: '1\n' }])).not.toBe(combineDigests([{ path: 'x\x001', sha256: '' }]));
  });

  it('skips kubelet and publisher bookkeeping', () => {
    expect(['..data', '..2026_01_01_00_00_00.1234abcd', '..zeta-provision.json', 'nginx', '.hidden'].filter(isBookkeeping)).toEqual([
      '..data',
      '..2026_01_01_00_00_00.1234abcd',
      '..zeta-provision.json',
    ]);
  });
});

describe('process selection', () => {
  const procs: ProcInfo[] = [
    { pid: 1, ppid: 0, comm: 'pause', argv0: 'pause' },
    { pid: 7, ppid: 0, comm: 'nginx', argv0: 'nginx:' },
    { pid: 12, ppid: 7, comm: 'nginx', argv0: 'nginx:' },
    { pid: 13, ppid: 7, comm: 'nginx', argv0: 'nginx:' },
    { pid: 20, ppid: 0, comm: 'node', argv0: 'node' },
    { pid: 30, ppid: 0, comm: 'opa', argv0: 'opa' },
  ];

  it('signals the nginx master, not its workers nor itself', () => {
    expect(selectTargets(procs, 'nginx', 20)).toEqual([7]);
    expect(selectTargets(procs, 'node', 20)).toEqual([]);
    expect(selectTargets(procs, 'opa', 20)).toEqual([30]);
    expect(selectTargets(procs, 'nginx-not', 20)).toEqual([]);
  });

  it('matches names longer than comm by argv[0] or the 15-byte prefix', () => {
    const long = [{ pid: 5, ppid: 1, comm: 'keycloak-reload', argv0: 'keycloak-reloader' }];
    expect(selectTargets(long, 'keycloak-reloader', 99)).toEqual([5]);
  });

  it('parses /proc/PID/stat with spaces and parentheses in comm', () => {
    expect(parseProcStat('4242 (nginx) S 7 4242 4242 0 -1')).toEqual({ comm: 'nginx', ppid: 7 });
    expect(parseProcStat('99 (a) b) (c) R 1 99 99 0')).toEqual({ comm: 'a) b) (c', ppid: 1 });
    expect(parseProcStat('garbage')).toBeUndefined();
  });
});
