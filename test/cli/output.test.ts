/**
 * Logs for machines, reports for people: without a terminal every stderr line is a JSON object
 * (each warning and the final error with code and hint included) and stdout carries only the report;
 * on a terminal warnings are log lines too. The text report fits 100 columns and names unverified
 * files. Through the built binary; the terminal is a real pty from util-linux `script`.
 */
import { cp, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { execa } from 'execa';
import { describe, expect, it } from 'vitest';
import { wrapLines } from '../../src/report/wrap.js';
import { BIN, REPO_ROOT, runCli } from '../support/cli.js';
import { requireProgram } from '../support/programs.js';
import { useTempDirs } from '../support/tmp.js';

const tempDir = useTempDirs();

async function tamperedExample() {
  const dir = await tempDir();
  await cp(path.join(REPO_ROOT, 'fixtures', 'example'), path.join(dir, 'example'), { recursive: true });
  const payload = path.join(dir, 'example', 'payload');
  const conf = path.join(payload, 'nginx', 'nginx.conf');
  await writeFile(conf, (await readFile(conf, 'utf8')) + '# altered\n');
  return { config: path.join(dir, 'example', 'zeta-provision.yaml'), payload };
}

const jsonLines = (text: string) =>
  text
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, unknown>);

describe('logs and report streams', () => {
  it('without a terminal: stderr is JSON lines (warnings, final error with code and hint), stdout only the report', async () => {
    const ex = await tamperedExample();
    for (const format of ['text', 'json', 'yaml']) {
      const r = await runCli(['run', '--config', ex.config, '--source', `dir:${ex.payload}`, '--image-signature', 'off', '--dry-run', '-o', format]);
      expect(r.exitCode, r.stderr).toBe(3);
      const logs = jsonLines(r.stderr);
      expect(logs.every((l) => typeof l.time === 'string' && typeof l.level === 'string' && typeof l.msg === 'string')).toBe(true);
      expect(logs).toContainEqual(expect.objectContaining({ level: 'warn', msg: 'image signature not verified: image signature check is off' }));
      const last = logs[logs.length - 1]!;
      expect(last).toMatchObject({
        level: 'error',
        code: 3,
        kind: 'verify',
        file: 'nginx/nginx.conf',
        msg: expect.stringMatching(/^nginx\/nginx\.conf: content digest does not match/),
      });
      expect(r.stdout).not.toContain('"level"');
      if (format === 'json') {
        // One line: a pod's log stays parseable line by line even with the report in it.
        expect(r.stdout.trim().split('\n')).toHaveLength(1);
        expect(JSON.parse(r.stdout)).toMatchObject({ kind: 'RunReport', outcome: 'failed', error: { kind: 'verify' } });
      }
    }
  }, 60_000);

  it('a usage error outside a run is a JSON error line too, with code 2 and the hint naming the help', async () => {
    const r = await runCli(['run', '--bogus']);
    expect(r.exitCode).toBe(2);
    expect(r.stdout).toBe('');
    expect(jsonLines(r.stderr)).toEqual([
      expect.objectContaining({ level: 'error', code: 2, kind: 'usage', msg: "unknown option '--bogus'", hint: 'see zeta-provision run --help' }),
    ]);
    const auth = await runCli(['verify', '--source', 'dir:/x', '--registry-auth-file', '/no/such/auth.json']);
    expect(auth.exitCode).toBe(2);
    expect(jsonLines(auth.stderr)[0]).toMatchObject({ code: 2, msg: '--registry-auth-file /no/such/auth.json: no such file or directory' });
  });

  it('on a terminal, warnings and the error are readable log lines', async () => {
    await requireProgram('script', 'bsdutils');
    const ex = await tamperedExample();
    const cmd = [process.execPath, BIN, 'verify', '--config', ex.config, '--source', `dir:${ex.payload}`, '--image-signature', 'off']
      .map((a) => `'${a}'`)
      .join(' ');
    const r = await execa('script', ['-qec', cmd, '/dev/null'], { reject: false, env: { PATH: process.env.PATH ?? '', COLUMNS: '10000' }, extendEnv: false });
    expect(r.exitCode).toBe(3);
    const out = String(r.stdout).replace(/\r/g, '');
    expect(out).toMatch(/^warn: image signature not verified: image signature check is off$/m);
    expect(out).toMatch(/^error: nginx\/nginx\.conf: content digest does not match/m);
    expect(out).not.toContain('"level"');
  });

  it('the text report fits 100 columns and names the files no rule covers', async () => {
    const dir = await tempDir();
    await cp(path.join(REPO_ROOT, 'fixtures', 'example'), path.join(dir, 'example'), { recursive: true });
    const payload = path.join(dir, 'example', 'payload');
    await writeFile(path.join(payload, `${'very-long-name-'.repeat(10)}.txt`), 'x');
    const r = await runCli(['verify', '--config', path.join(dir, 'example', 'zeta-provision.yaml'), '--source', `dir:${payload}`, '--image-signature', 'off'], {
      env: { COLUMNS: '' },
    });
    expect(r.exitCode, r.stdout + r.stderr).toBe(0);
    const lines = r.stdout.trimEnd().split('\n');
    expect(lines.filter((l) => l.length > 100)).toEqual([]);
    // Named, in full (a name longer than a line continues on the next ones).
    expect(r.stdout).toContain('  unverified 2 payload file(s) not covered by a verify rule: .revision, very-long-name-');
    expect(r.stdout.replace(/\n\s+/g, '')).toContain(`${'very-long-name-'.repeat(10)}.txt`);
  });
});

describe('wrapLines', () => {
  it('hangs continuation lines under the value and cuts tokens longer than a line', () => {
    const long = `  warning   ${'word '.repeat(30).trim()}`;
    const out = wrapLines(long + '\n', 40)
      .split('\n')
      .filter((l) => l !== '');
    expect(out.every((l) => l.length <= 40)).toBe(true);
    expect(out[0]!.startsWith('  warning   word')).toBe(true);
    expect(out.slice(1).every((l) => l.startsWith('            word'))).toBe(true);
    expect(out.join(' ').replace(/\s+/g, ' ').trim()).toBe(long.replace(/\s+/g, ' ').trim());
    const token = `  source    ${'x'.repeat(90)}`;
    const cut = wrapLines(token, 40).split('\n');
    expect(cut.every((l) => l.length <= 40)).toBe(true);
    expect(
      cut
        .map((l) => l.trim())
        .join('')
        .replace(/^source\s+/, ''),
    ).toBe('x'.repeat(90));
    expect(wrapLines('short\n', 40)).toBe('short\n');
  });
});
