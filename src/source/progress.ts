/**
 * Layer progress for people and for logs: one info line per applied layer (size, time, digest) and,
 * when stderr is a terminal, a single line redrawn in place while a layer streams.
 */
import type { Logger } from '../log.js';
import type { LayerEvent, LayerProgress } from './types.js';

const MiB = 1024 * 1024;
/** Redraw at most this often: a terminal does not need 10 000 updates per second. */
const REDRAW_MS = 100;

export interface Terminal {
  write(text: string): unknown;
}

function mib(bytes: number): string {
  return (bytes / MiB).toFixed(1);
}

/** `layer 2/3 sha256:0123456789ab  12.5/40.0 MiB  31%` */
export function formatProgressLine(e: LayerEvent): string {
  const pct = e.size > 0 ? Math.min(100, Math.floor((e.bytes / e.size) * 100)) : 100;
  return `layer ${e.index}/${e.count} ${e.digest.slice(0, 19)}  ${mib(e.bytes)}/${mib(e.size)} MiB  ${pct}%`;
}

/** Fields of the per-layer log line. */
export function layerLogFields(e: LayerEvent): Record<string, unknown> {
  const seconds = e.ms / 1000;
  return {
    layer: `${e.index}/${e.count}`,
    digest: e.digest,
    bytes: e.size,
    ms: e.ms,
    mibPerSecond: seconds > 0 ? Number((e.size / MiB / seconds).toFixed(1)) : undefined,
  };
}

export function layerReporter(log: Logger, terminal?: Terminal): LayerProgress {
  let lastDraw = 0;
  let drawn = false;
  return (e) => {
    if (e.done) {
      if (drawn) terminal?.write('\r\x1b[K');
      drawn = false;
      lastDraw = 0;
      log.info('layer applied', layerLogFields(e));
      return;
    }
    if (!terminal) return;
    const now = Date.now();
    if (now - lastDraw < REDRAW_MS) return;
    lastDraw = now;
    drawn = true;
    terminal.write(`\r\x1b[K${formatProgressLine(e)}`);
  };
}
