/** `zeta-provision watch` actions other than nginx and OPA, retries, usage errors, and a clean SIGTERM. */
import { spawn } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
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

describe('watch actions', () => {
  it('--exec runs the command after each change, and SIGTERM lets a running command finish, then exits 0', async () => {
    const dir = await tempDir();
    const volume = path.join(dir, 'volume');
    const marker = path.join(dir, 'marker');
    const started = path.join(dir, 'started');
    await publish(volume, { 'app.conf': 'one\n' });
    // The command notes its start, pauses, then reads the file through the volume as a consumer would.
    const watch = startWatch(['--dir', volume, '--exec', `echo x >> ${started}; sleep 0.5; cat ${volume}/app.conf >> ${marker}`, '--debounce-ms', '100']);
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

  it('--signal to --pid reaches the process; a failed action is retried at the next poll', async () => {
    const dir = await tempDir();
    const volume = path.join(dir, 'volume');
    const got = path.join(dir, 'got');
    const pidFile = path.join(dir, 'app.pid');
    await publish(volume, { 'app.conf': 'one\n' });
    const app = spawn('sh', ['-c', `trap 'echo USR1 >> ${got}' USR1; while :; do sleep 0.05; done`], { stdio: 'ignore' });
    cleanups.push(async () => {
      app.kill('SIGTERM');
    });
    // The PID file does not exist yet: the first attempt fails and must not count as applied.
    const watch = startWatch(['--dir', volume, '--signal', 'USR1', '--pid-file', pidFile, '--debounce-ms', '100', '--poll-seconds', '0.3']);
    cleanups.push(watch.terminate);
    await watch.line('watching');
    await publish(volume, { 'app.conf': 'two\n' });
    const failed = await watch.line('reload failed; will retry on the next change or poll');
    expect(failed.error).toBe(`cannot read PID file ${pidFile}: ENOENT`);
    await writeFile(pidFile, `${app.pid}\n`);
    const reloaded = await watch.line('reloaded');
    expect(reloaded).toMatchObject({ trigger: 'poll', result: `SIGUSR1 sent to pid ${app.pid}`, hash: await new DirectoryHasher(volume).hash() });
    await waitFor('the trap to run', async () => ((await readOr(got)) === 'USR1\n' ? true : undefined));
    expect(await watch.terminate()).toBe(0);
  });

  it('refuses a PID file that does not hold one process ID', async () => {
    const dir = await tempDir();
    const volume = path.join(dir, 'volume');
    const pidFile = path.join(dir, 'app.pid');
    await writeFile(pidFile, '1 2\n');
    await publish(volume, { 'a': '1' });
    const watch = startWatch(['--dir', volume, '--signal', 'HUP', '--pid-file', pidFile, '--on-start']);
    cleanups.push(watch.terminate);
    const failed = await watch.line('reload failed; will retry on the next change or poll');
    expect(failed.error).toBe(`PID file ${pidFile} does not hold a process ID`);
    expect(await watch.terminate()).toBe(0);
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
