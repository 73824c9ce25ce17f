/** Layer progress: events from a real unpack, the log line per layer and the in-place terminal line. */
import fs from 'node:fs/promises';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/log.js';
import { layerReporter, parseSourceReference, resolveSource, unpackSource, type LayerEvent } from '../../src/source/index.js';
import { formatProgressLine } from '../../src/source/progress.js';
import { packTar, singleImageLayout, tempDir } from './helpers.js';

let tmp: string;
beforeEach(async () => {
  tmp = await tempDir();
});
afterEach(async () => {
  await fs.rm(tmp, { recursive: true, force: true });
});

describe('layer progress', () => {
  it('reports every layer while it streams and once when applied, with its real size', async () => {
    const layers = [
      { tar: await packTar([{ name: 'big', content: randomBytes(3 * 1024 * 1024) }]) },
      { tar: await packTar([{ name: 'small', content: 'x' }]) },
    ];
    await singleImageLayout(path.join(tmp, 'l'), { layers });
    const resolved = await resolveSource(parseSourceReference(`oci-layout:${tmp}/l`));
    const events: LayerEvent[] = [];
    await unpackSource(resolved, path.join(tmp, 's'), {}, { onLayer: (e) => events.push(e) });
    const done = events.filter((e) => e.done);
    expect(done.map((e) => [e.index, e.count, e.digest, e.bytes])).toEqual(resolved.layers.map((l, i) => [i + 1, 2, l.digest, l.size]));
    const streaming = events.filter((e) => !e.done && e.index === 1).map((e) => e.bytes);
    expect(streaming.length).toBeGreaterThan(1);
    expect(streaming).toEqual([...streaming].sort((a, b) => a - b));
    expect(streaming.at(-1)).toBe(resolved.layers[0]!.size);
  });

  it('logs one line per layer and draws, then clears, a terminal line', () => {
    const lines: string[] = [];
    const log = createLogger({ format: 'json', level: 'info', write: (l) => lines.push(l) });
    const drawn: string[] = [];
    const report = layerReporter(log, { write: (t: string) => drawn.push(t) });
    const digest = `sha256:${'ab'.repeat(32)}`;
    report({ index: 1, count: 3, digest, size: 40 * 1024 * 1024, bytes: 10 * 1024 * 1024, ms: 500, done: false });
    report({ index: 1, count: 3, digest, size: 40 * 1024 * 1024, bytes: 40 * 1024 * 1024, ms: 2000, done: true });
    expect(drawn).toEqual([`\r\x1b[Klayer 1/3 sha256:abababababab  10.0/40.0 MiB  25%`, '\r\x1b[K']);
    expect(lines).toHaveLength(1);
    expect(JSON.parse(lines[0]!)).toMatchObject({ level: 'info', msg: 'layer applied', layer: '1/3', digest, bytes: 41943040, ms: 2000, mibPerSecond: 20 });
  });

  it('without a terminal only the log lines are written', () => {
    const lines: string[] = [];
    const report = layerReporter(createLogger({ format: 'text', level: 'info', write: (l) => lines.push(l) }));
    report({ index: 2, count: 2, digest: 'sha256:' + '0'.repeat(64), size: 0, bytes: 0, ms: 0, done: false });
    expect(lines).toEqual([]);
    expect(formatProgressLine({ index: 2, count: 2, digest: 'sha256:' + '0'.repeat(64), size: 0, bytes: 0, ms: 0, done: false })).toMatch(/ 100%$/);
  });
});
