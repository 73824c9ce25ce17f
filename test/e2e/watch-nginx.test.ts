/**
 * The reload sidecar against a real nginx and a fake OPA: configs published into a volume by the volume
 * publisher, `zeta-provision watch` validating with `nginx -t` and reloading with SIGHUP or an HTTP PUT.
 */
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { DirectoryHasher } from '../../src/watch/hash.js';
import { listProcesses, selectTargets } from '../../src/watch/procs.js';
import { useTempDirs } from '../support/tmp.js';
import { freePort, httpGet, nginxConfig, publish, servesEventually, startNginx, startWatch, type Nginx, type WatchProcess } from '../watch/helpers.js';

const tempDir = useTempDirs();
const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

describe('watch with a real nginx', () => {
  it('validates with nginx -t and reloads with SIGHUP; a broken config is not loaded and is logged', async () => {
    const dir = await tempDir();
    const volume = path.join(dir, 'volume');
    const prefix = path.join(dir, 'nginx');
    const port = await freePort();
    await publish(volume, { 'nginx/nginx.conf': nginxConfig(prefix, port, 'v1\n') });
    const nginx: Nginx = await startNginx(prefix, path.join(volume, 'nginx', 'nginx.conf'));
    cleanups.push(nginx.stop);
    await servesEventually(port, 'v1\n');
    const masterPid = await nginx.pid();

    // --process-name finds this master in /proc and none of its workers.
    const procs = await listProcesses();
    const workers = procs.filter((p) => p.ppid === masterPid).map((p) => p.pid);
    expect(workers.length).toBeGreaterThan(0);
    const targets = selectTargets(procs, 'nginx', process.pid);
    expect(targets).toContain(masterPid);
    for (const w of workers) expect(targets).not.toContain(w);

    // never: nginx started just after the publish, within the margin where auto would HUP it once at
    // start; this test is about changes (watch-consumer.test.ts is about the start).
    const watch: WatchProcess = startWatch([
      '--dir',
      volume,
      '--on-start',
      'never',
      '--validate',
      nginx.testCommand,
      '--signal',
      'HUP',
      '--pid-file',
      nginx.pidFile,
      '--debounce-ms',
      '200',
    ]);
    cleanups.push(watch.terminate);
    const started = await watch.line('watching');
    expect(started.hash).toBe(await new DirectoryHasher(volume).hash());

    await publish(volume, { 'nginx/nginx.conf': nginxConfig(prefix, port, 'v2\n') });
    const v2Hash = await new DirectoryHasher(volume).hash();
    const reloaded = await watch.line('reloaded');
    expect(reloaded).toMatchObject({
      level: 'info',
      hash: v2Hash,
      previous: started.hash,
      trigger: 'fs-event',
      validated: true,
      result: `SIGHUP sent to pid ${masterPid}`,
    });
    await servesEventually(port, 'v2\n');

    const mark = watch.lines.length;
    await publish(volume, { 'nginx/nginx.conf': nginxConfig(prefix, port, 'v3\n', 'bogus_directive on;') });
    const brokenHash = await new DirectoryHasher(volume).hash();
    const failed = await watch.line('validation failed; consumer not reloaded, it keeps its current config', () => true, mark);
    expect(failed).toMatchObject({ level: 'error', hash: brokenHash, status: 'exit 1' });
    expect(failed.output).toContain('unknown directive "bogus_directive"');
    // Still the old config, the same master, and no reload was logged for the broken content.
    expect(await httpGet(port)).toBe('v2\n');
    expect(await nginx.pid()).toBe(masterPid);
    expect(watch.lines.filter((l) => l.msg === 'reloaded').map((l) => l.hash)).toEqual([v2Hash]);

    // Fixed again: reloads.
    await publish(volume, { 'nginx/nginx.conf': nginxConfig(prefix, port, 'v4\n') });
    await watch.line('reloaded', (l) => l.previous === v2Hash);
    await servesEventually(port, 'v4\n');

    expect(await watch.terminate()).toBe(0);
    expect(watch.lines.at(-1)).toMatchObject({ msg: 'stopped', hash: await new DirectoryHasher(volume).hash() });
  });
});

interface Received {
  method: string;
  url: string;
  body: string;
  contentType?: string;
}

/** A fake OPA: records policy PUTs, rejects a policy containing "syntax error" with 400 as OPA does. */
async function startFakeOpa(): Promise<{ url: string; received: Received[]; server: Server }> {
  const received: Received[] = [];
  const server = createServer((req: IncomingMessage, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      received.push({ method: req.method!, url: req.url!, body, contentType: req.headers['content-type'] });
      if (body.includes('syntax error')) {
        res.writeHead(400, { 'content-type': 'application/json' }).end('{"code":"invalid_parameter","message":"error(s) occurred while compiling module(s)"}');
      } else res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, received, server };
}

describe('watch with an OPA endpoint', () => {
  it("PUTs the policy at start and after each change; a rejected PUT is logged with OPA's reason", async () => {
    const volume = path.join(await tempDir(), 'volume');
    const opa = await startFakeOpa();
    cleanups.push(() => new Promise((r) => opa.server.close(r)));
    await publish(volume, { 'opa/policy.rego': 'package zeta.authz\ndefault allow := false\n' });
    const policy = path.join(volume, 'opa', 'policy.rego');
    const watch = startWatch(['--dir', volume, '--on-start', '--http', 'PUT', `${opa.url}/v1/policies/zeta`, '--body-file', policy, '--debounce-ms', '100']);
    cleanups.push(watch.terminate);

    await watch.line('reloaded', (l) => l.trigger === 'start');
    expect(opa.received).toEqual([
      { method: 'PUT', url: '/v1/policies/zeta', body: 'package zeta.authz\ndefault allow := false\n', contentType: 'text/plain' },
    ]);

    await publish(volume, { 'opa/policy.rego': 'package zeta.authz\ndefault allow := true\n' });
    await watch.line('reloaded', (l) => l.trigger === 'fs-event');
    expect(opa.received.map((r) => r.body)).toEqual(['package zeta.authz\ndefault allow := false\n', 'package zeta.authz\ndefault allow := true\n']);

    await publish(volume, { 'opa/policy.rego': 'package zeta.authz\nsyntax error\n' });
    const failed = await watch.line('reload failed; will retry on the next change or poll');
    expect(failed.error).toMatch(/^PUT http:\/\/127\.0\.0\.1:\d+\/v1\/policies\/zeta: HTTP 400: .*error\(s\) occurred while compiling/);
    expect(await watch.terminate()).toBe(0);
  });

  it('picks up a change by polling the content hash when no file event arrives', async () => {
    const volume = path.join(await tempDir(), 'volume');
    const opa = await startFakeOpa();
    cleanups.push(() => new Promise((r) => opa.server.close(r)));
    await publish(volume, { 'opa/policy.rego': 'package a\n' });
    // Watching a subdirectory pins the file events to one generation (the previous one is kept, so
    // not even its removal is an event): only the poll can see the swap, as on NFS.
    const dir = path.join(volume, 'opa');
    const watch = startWatch([
      '--dir',
      dir,
      '--on-start',
      'never',
      '--http',
      'PUT',
      `${opa.url}/v1/policies/zeta`,
      '--body-file',
      path.join(dir, 'policy.rego'),
      '--debounce-ms',
      '100',
      '--poll-seconds',
      '0.2',
    ]);
    cleanups.push(watch.terminate);
    await watch.line('watching');
    expect(opa.received).toEqual([]);
    await publish(volume, { 'opa/policy.rego': 'package b\n' });
    const reloaded = await watch.line('reloaded');
    expect(reloaded).toMatchObject({ trigger: 'poll', hash: await new DirectoryHasher(dir).hash() });
    expect(opa.received.map((r) => r.body)).toEqual(['package b\n']);
    expect(await watch.terminate()).toBe(0);
  });
});
