/**
 * The sidecar and the state of its consumer, against a real nginx: a sidecar restarted across a change
 * reloads at start, a freshly started pod is spared the HUP, a burst under a short poll costs one HUP
 * (counted in nginx's own error log), and a stopped nginx or a stale PID file is named as such.
 */
import { lstat, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { DirectoryHasher } from '../../src/watch/hash.js';
import { useTempDirs } from '../support/tmp.js';
import {
  freePort,
  hupsReceived,
  nginxConfig,
  publish,
  servesEventually,
  startNginx,
  startWatch,
  waitFor,
  type Nginx,
  type WatchProcess,
} from '../watch/helpers.js';

const tempDir = useTempDirs();
const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

interface Setup {
  volume: string;
  prefix: string;
  port: number;
  conf: (body: string, extra?: string) => Record<string, string>;
}

async function setup(): Promise<Setup> {
  const dir = await tempDir();
  const prefix = path.join(dir, 'nginx');
  const port = await freePort();
  return { volume: path.join(dir, 'volume'), prefix, port, conf: (body, extra) => ({ 'nginx/nginx.conf': nginxConfig(prefix, port, body, extra) }) };
}

async function nginxOn(s: Setup): Promise<Nginx> {
  const nginx = await startNginx(s.prefix, path.join(s.volume, 'nginx', 'nginx.conf'));
  cleanups.push(nginx.stop);
  return nginx;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A volume with `body` published and an nginx serving it. */
async function nginxServing(body: string): Promise<{ s: Setup; nginx: Nginx }> {
  const s = await setup();
  await publish(s.volume, s.conf(body));
  const nginx = await nginxOn(s);
  await servesEventually(s.port, body);
  return { s, nginx };
}

/** The sidecar as the README's nginx example runs it (validated, HUP through the PID file), plus `extra`. */
function sidecarFor(s: Setup, nginx: Nginx, extra: string[] = []): WatchProcess {
  const watch = startWatch(['--dir', s.volume, '--validate', nginx.testCommand, '--signal', 'HUP', '--pid-file', nginx.pidFile, ...extra]);
  cleanups.push(watch.terminate);
  return watch;
}

describe('watch at start', () => {
  it('reloads nginx when the ConfigMap changed while the sidecar was down, and says why', async () => {
    const { s, nginx } = await nginxServing('v1\n');
    const first = sidecarFor(s, nginx, ['--on-start', 'never', '--debounce-ms', '200']);
    await first.line('watching');
    expect(await first.terminate()).toBe(0);

    // The sidecar container is down (restarting) while the content changes.
    await publish(s.volume, s.conf('v2\n'));
    await sleep(300);
    expect(await servesEventually(s.port, 'v1\n')).toBe('v1\n');

    const second = sidecarFor(s, nginx, ['--debounce-ms', '200']);
    const reloaded = await second.line('reloaded');
    expect(reloaded).toMatchObject({
      trigger: 'start',
      reason: 'consumer started before the content',
      hash: await new DirectoryHasher(s.volume).hash(),
      validated: true,
      result: `SIGHUP sent to pid ${await nginx.pid()}`,
    });
    await servesEventually(s.port, 'v2\n');
    expect(await hupsReceived(nginx)).toBe(1);

    // With never, today's behaviour: what is on disk counts as applied, nothing is sent.
    await publish(s.volume, s.conf('v3\n'));
    expect(await second.terminate()).toBe(0);
    const third = sidecarFor(s, nginx, ['--on-start', 'never', '--debounce-ms', '200']);
    await third.line('watching');
    await sleep(500);
    expect(third.lines.filter((l) => l.msg === 'reloaded')).toEqual([]);
    expect(await hupsReceived(nginx)).toBe(1);
    expect(await servesEventually(s.port, 'v2\n')).toBe('v2\n');
    expect(await third.terminate()).toBe(0);
  });

  it('spares a freshly started nginx the HUP: it started after the content was swapped in', async () => {
    const s = await setup();
    await publish(s.volume, s.conf('v1\n'));
    // The swap's ctime plus the margin and btime's truncation (≤ 1 s): a start later than that is provably after.
    const swapped = (await lstat(path.join(s.volume, '..data'))).ctimeMs;
    await waitFor('2.1 s after the swap', () => (Date.now() > swapped + 2100 ? true : undefined));
    const nginx = await nginxOn(s);
    await servesEventually(s.port, 'v1\n');
    const own = sidecarFor(s, nginx, ['--debounce-ms', '200']);
    const spared = await own.line('not reloaded at start: the consumer runs the current content');
    expect(spared).toMatchObject({ trigger: 'start', reason: 'consumer started after the content', hash: await new DirectoryHasher(s.volume).hash() });
    // A later change is reloaded as always.
    await publish(s.volume, s.conf('v2\n'));
    await own.line('reloaded');
    await servesEventually(s.port, 'v2\n');
    expect(await hupsReceived(nginx)).toBe(1);
    expect(await own.terminate()).toBe(0);
  });
});

describe('watch during a burst', () => {
  it('HUPs nginx once for 20 swaps 50 ms apart, though a 0.1 s poll sees them mid-burst', async () => {
    const { s, nginx } = await nginxServing('v0\n');
    // A 2 s debounce (cap 20 s): on a loaded machine a publish can take long enough that a shorter
    // one would end the burst for real. The poll runs every 0.1 s in it and sees nearly every swap;
    // before, each of those findings reloaded at once (14 HUPs when measured).
    const watch = sidecarFor(s, nginx, ['--on-start', 'never', '--debounce-ms', '2000', '--poll-seconds', '0.1']);
    await watch.line('watching');
    for (let i = 1; i <= 20; i++) {
      await publish(s.volume, s.conf(`v${i}\n`));
      await sleep(50);
    }
    const last = await new DirectoryHasher(s.volume).hash();
    const reloaded = await watch.line('reloaded', (l) => l.hash === last);
    await servesEventually(s.port, 'v20\n');
    // Time for any late check to show itself: more than the debounce and many polls.
    await sleep(2500);
    expect(watch.lines.filter((l) => l.msg === 'reloaded')).toEqual([reloaded]);
    expect(await hupsReceived(nginx)).toBe(1);
    expect(await watch.terminate()).toBe(0);
  });
});

describe('watch names a consumer that is not there', () => {
  it('a stopped nginx, with "nginx -t" as validator: "is not running: the file is empty"', async () => {
    const { s, nginx } = await nginxServing('v1\n');
    await nginx.stop();
    // nginx removes its PID file on a clean exit; `nginx -t` then creates an empty one.
    await expect(readFile(nginx.pidFile)).rejects.toMatchObject({ code: 'ENOENT' });
    const watch = sidecarFor(s, nginx);
    const failed = await watch.line('reload failed; will retry on the next change or poll');
    expect(await readFile(nginx.pidFile, 'utf8')).toBe('');
    expect(failed).toMatchObject({
      trigger: 'start',
      error: `nginx (pid file ${nginx.pidFile}) is not running: the file is empty`,
      hint: expect.stringMatching(/start the consumer first; an empty file is what "nginx -t" leaves/),
    });
    expect(await watch.terminate()).toBe(0);
  });

  it('a PID file left behind by an nginx that is gone: "process N from pid file … is gone"', async () => {
    const { s, nginx } = await nginxServing('v1\n');
    const pid = await nginx.pid();
    await nginx.stop();
    // What a crash or SIGKILL leaves: the file with the dead master's PID.
    await writeFile(nginx.pidFile, `${pid}\n`);
    const watch = sidecarFor(s, nginx);
    const failed = await watch.line('reload failed; will retry on the next change or poll');
    expect(failed).toMatchObject({
      trigger: 'start',
      // The dead PID has no start time to compare: it cannot be told, so the reload is tried.
      reason: 'consumer start unknown',
      error: `process ${pid} from pid file ${nginx.pidFile} is gone`,
      hint: expect.stringMatching(/exited without removing its PID file/),
    });
    expect(await watch.terminate()).toBe(0);
  });
});
