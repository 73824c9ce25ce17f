import { describe, expect, it } from 'vitest';
import { ancestorsOf, checkSymlinkTarget, classifyWhiteout, normalizeEntryName, resolveLexically, UnsafeNameError } from '../../src/source/paths.js';

describe('normalizeEntryName', () => {
  it('normalizes ./ prefixes, duplicate and trailing slashes', () => {
    expect(normalizeEntryName('./', 100)).toBe('');
    expect(normalizeEntryName('./etc/a.txt', 100)).toBe('etc/a.txt');
    expect(normalizeEntryName('etc//x/./y/', 100)).toBe('etc/x/y');
  });

  it.each([
    ['/etc/passwd', /absolute/],
    ['../x', /'\.\.'/],
    ['a/../../x', /'\.\.'/],
    ['a\\..\\x', /backslash/],
    ['a\0b', /NUL/],
    ['x'.repeat(101), /longer than 100/],
  ])('refuses %j', (name, reason) => {
    expect(() => normalizeEntryName(name, 100)).toThrow(UnsafeNameError);
    expect(() => normalizeEntryName(name, 100)).toThrow(reason);
  });
});

describe('classifyWhiteout', () => {
  it('recognizes whiteouts, opaque markers and aufs meta files', () => {
    expect(classifyWhiteout('etc/.wh.a.txt')).toEqual({ kind: 'whiteout', target: 'etc/a.txt' });
    expect(classifyWhiteout('.wh.top')).toEqual({ kind: 'whiteout', target: 'top' });
    expect(classifyWhiteout('data/.wh..wh..opq')).toEqual({ kind: 'opaque', dir: 'data' });
    expect(classifyWhiteout('.wh..wh..opq')).toEqual({ kind: 'opaque', dir: '' });
    expect(classifyWhiteout('.wh..wh.plnk')).toEqual({ kind: 'meta' });
    expect(classifyWhiteout('etc/a.wh.txt')).toBeNull();
  });

  it('refuses whiteouts that would name the directory or its parent', () => {
    expect(() => classifyWhiteout('etc/.wh.')).toThrow(UnsafeNameError);
    expect(() => classifyWhiteout('etc/.wh..')).toThrow(UnsafeNameError);
    expect(() => classifyWhiteout('etc/.wh...')).toThrow(UnsafeNameError);
  });
});

describe('link targets', () => {
  it('resolves lexically and reports escapes', () => {
    expect(resolveLexically('a/b', '../c')).toBe('a/c');
    expect(resolveLexically('a', '..')).toBe('');
    expect(resolveLexically('a', '../..')).toBeNull();
    expect(resolveLexically('', '/etc')).toBeNull();
  });

  it('refuses absolute, empty and NUL symlink targets', () => {
    expect(() => checkSymlinkTarget('/etc/passwd', 100)).toThrow(/absolute/);
    expect(() => checkSymlinkTarget('', 100)).toThrow(/empty/);
    expect(() => checkSymlinkTarget('a\0', 100)).toThrow(/NUL/);
    expect(() => checkSymlinkTarget('../x', 100)).not.toThrow();
  });

  it('lists ancestors', () => {
    expect(ancestorsOf('a/b/c')).toEqual(['a', 'a/b']);
    expect(ancestorsOf('a')).toEqual([]);
  });
});
