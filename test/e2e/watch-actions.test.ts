/** `zeta-provision watch` actions other than nginx and OPA, retries, usage errors, and a clean SIGTERM. */
import { spawn } from 'node:child_process';
import { readFile, utimes, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { DirectoryHasher } from '../../src/watch/hash.js';
import { runCli } from '../support/cli.js';
import { useTempDirs } from '../support/tmp.js';
import { publish, startWatch, waitFor } from '../watch/helpers.js';

const tempDir = useTempDirs();
const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const readOr = (file: string) => readFile(file, 'utf8').catch(() => '');
const FAILED = 'reload failed; will retry on the next change or poll';

/** A published volume and where a PID file goes, for the tests of what a PID file may hold. */
async function pidFileCase(): Promise<{ volume: string; pidFile: string }> {
  const dir = await tempDir();
  const volume = path.join(dir, 'volume');
  await publish(volume, { a: '1' });
  return { volume, pidFile: path.join(dir, 'app.pid') };
}

describe('watch actions', () => {
  it('--exec runs the command after each change, and SIGTERM lets a running command finish, then exits 0', async () => {
    const dir = await tempDir();
    const volume = path.join(dir, 'volume');
    const marker = path.join(dir, 'marker');
    const started = path.join(dir, 'started');
    await publish(volume, { 'app.conf': 'one\n' });
    // The command notes its start, pauses, then reads the file through the volume as a consumer would.
    const watch = startWatch([
      '--dir',
      volume,
      '--on-start',
      'never',
      '--exec',
      `echo x >> ${started}; sleep 0.5; cat ${volume}/app.conf >> ${marker}`,
      '--debounce-ms',
      '100',
    ]);
    cleanups.push(watch.terminate);
    await watch.line('watching');
    await publish(volume, { 'app.conf': 'two\n' });
    await watch.line('reloaded');
    expect(await readOr(marker)).toBe('two\n');

    await publish(volume, { 'app.conf': 'three\n' });
    // Stop while the command sleeps: it completes, the reload is logged, then the process ends.
    await waitFor('the second command to start', async () => ((await readOr(started)) === 'x\nx\n' ? true : undefined));
    expect(await watch.terminate()).toBe(0);
    expect(await readOr(marker)).toBe('two\nthree\n');
    expect(watch.lines.map((l) => l.msg).slice(-2)).toEqual(['reloaded', 'stopped']);
  });

  it('--exec and --http act at start by default: with no process to look at, it cannot be told the consumer is current', async () => {
    const dir = await tempDir();
    const volume = path.join(dir, 'volume');
    const marker = path.join(dir, 'marker');
    await publish(volume, { 'app.conf': 'one\n' });
    const watch = startWatch(['--dir', volume, '--exec', `cat ${volume}/app.conf >> ${marker}`]);
    cleanups.push(watch.terminate);
    expect(await watch.line('reloaded')).toMatchObject({ trigger: 'start', reason: 'consumer start unknown', hash: await new DirectoryHasher(volume).hash() });
    expect(await readOr(marker)).toBe('one\n');
    expect(await watch.terminate()).toBe(0);
  });

  it('--signal to --pid-file: a consumer not running yet is said so at start, and retried by the poll once it is', async () => {
    const dir = await tempDir();
    const volume = path.join(dir, 'volume');
    const got = path.join(dir, 'got');
    const pidFile = path.join(dir, 'app.pid');
    await publish(volume, { 'app.conf': 'one\n' });
    const app = spawn('sh', ['-c', `trap 'echo USR1 >> ${got}' USR1; while :; do sleep 0.05; done`], { stdio: 'ignore' });
    cleanups.push(async () => {
      app.kill('SIGTERM');
    });
    // The PID file does not exist yet: the start cannot tell (reload), the attempt fails and must not count as applied.
    const watch = startWatch(['--dir', volume, '--signal', 'USR1', '--pid-file', pidFile, '--debounce-ms', '100', '--poll-seconds', '0.3']);
    cleanups.push(watch.terminate);
    const failed = await watch.line(FAILED);
    expect(failed).toMatchObject({
      trigger: 'start',
      error: `app (pid file ${pidFile}) is not running: the file does not exist`,
      hint: expect.stringMatching(/start the consumer first/),
    });
    await publish(volume, { 'app.conf': 'two\n' });
    const twoHash = await new DirectoryHasher(volume).hash();
    await watch.line(FAILED, (l) => l.hash === twoHash);
    await writeFile(pidFile, `${app.pid}\n`);
    // The shell started before "two" was swapped in, so the retry reloads it.
    const reloaded = await watch.line('reloaded');
    expect(reloaded).toMatchObject({ trigger: 'poll', reason: 'consumer started before the content', result: `SIGUSR1 sent to pid ${app.pid}`, hash: twoHash });
    await waitFor('the trap to run', async () => ((await readOr(got)) === 'USR1\n' ? true : undefined));
    expect(await watch.terminate()).toBe(0);
  });

  it('refuses a PID file that does not hold one process ID, without quoting it', async () => {
    const { volume, pidFile } = await pidFileCase();
    await writeFile(pidFile, '1 2\n');
    const watch = startWatch(['--dir', volume, '--signal', 'HUP', '--pid-file', pidFile, '--on-start']);
    cleanups.push(watch.terminate);
    const failed = await watch.line(FAILED);
    expect(failed.error).toBe(`app (pid file ${pidFile}) does not hold a process ID (4 bytes, not one number)`);
    expect(await watch.terminate()).toBe(0);
  });

  it('does not signal itself when the PID is from another PID namespace (or simply its own)', async () => {
    const { volume, pidFile } = await pidFileCase();
    // The sidecar's own PID, as the file of a consumer in another namespace could hold: `exec` keeps
    // the shell's PID for the sidecar, so the shell can write it first.
    const watch = startWatch(['--dir', volume, '--signal', 'HUP', '--pid-file', pidFile, '--on-start'], { viaShell: `echo $$ > ${pidFile}; exec` });
    cleanups.push(watch.terminate);
    const failed = await watch.line(FAILED);
    const own = Number((await readFile(pidFile, 'utf8')).trim());
    expect(failed.error).toBe(`process ${own} from pid file ${pidFile} is this sidecar, not the consumer`);
    expect(failed.hint).toMatch(/shareProcessNamespace: true/);
    // Still running: a SIGHUP would have ended it.
    expect(await watch.terminate()).toBe(0);
  });

  it('does not signal a process that took over the PID of a stale PID file', async () => {
    const { volume, pidFile } = await pidFileCase();
    // `sleep` dies of a SIGHUP: it staying alive shows no signal reached it.
    const other = spawn('sleep', ['60'], { stdio: 'ignore' });
    const exited = new Promise((resolve) => other.once('exit', (_code, signal) => resolve(signal)));
    cleanups.push(async () => {
      other.kill('SIGTERM');
    });
    // The file as a crashed consumer left it an hour ago; the PID now belongs to a younger process.
    await writeFile(pidFile, `${other.pid}\n`);
    const hourAgo = new Date(Date.now() - 3600_000);
    await utimes(pidFile, hourAgo, hourAgo);
    const watch = startWatch(['--dir', volume, '--signal', 'HUP', '--pid-file', pidFile, '--on-start']);
    cleanups.push(watch.terminate);
    const failed = await watch.line(FAILED);
    expect(failed.error).toBe(
      `process ${other.pid} from pid file ${pidFile} is gone: PID ${other.pid} now belongs to a process started after the file was written`,
    );
    expect(failed.hint).toMatch(/without removing its PID file/);
    expect(other.exitCode).toBeNull();
    expect(other.signalCode).toBeNull();
    expect(await watch.terminate()).toBe(0);
    other.kill('SIGTERM');
    expect(await exited).toBe('SIGTERM');
  });

  it('warns when --dir is a subdirectory of a swapped volume, whose events stop at the first swap', async () => {
    const volume = path.join(await tempDir(), 'volume');
    await publish(volume, { 'nginx/nginx.conf': 'a\n' });
    const watch = startWatch(['--dir', path.join(volume, 'nginx'), '--exec', 'true']);
    cleanups.push(watch.terminate);
    const warning = await watch.line('--dir is inside a directory that swaps ..data; watch the mount root instead, or changes are seen only by the poll');
    expect(warning).toMatchObject({ level: 'warn', root: volume });
    const quiet = startWatch(['--dir', volume, '--exec', 'true']);
    cleanups.push(quiet.terminate);
    await quiet.line('watching');
    expect(quiet.lines.filter((l) => l.level === 'warn')).toEqual([]);
  });

  it('exits 2 with the reason on bad usage or a missing directory', async () => {
    const dir = await tempDir();
    const missing = await runCli(['watch', '--dir', path.join(dir, 'nope'), '--exec', 'true']);
    expect(missing.exitCode).toBe(2);
    expect(missing.log).toContain(`--dir ${path.join(dir, 'nope')} does not exist`);
    await writeFile(path.join(dir, 'file'), '');
    const file = await runCli(['watch', '--dir', path.join(dir, 'file'), '--exec', 'true']);
    expect(file.exitCode).toBe(2);
    expect(file.log).toContain(`--dir ${path.join(dir, 'file')} is not a directory`);
    const twoActions = await runCli(['watch', '--dir', dir, '--exec', 'true', '--http', 'PUT', 'http://127.0.0.1:1/x']);
    expect(twoActions.exitCode).toBe(2);
    expect(twoActions.log).toContain('watch takes exactly one action, got --exec and --http');
  });
});
