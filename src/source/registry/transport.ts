/**
 * How registry requests reach the network: the system roots plus an operator's private CA (added, never
 * replacing), HTTP(S)_PROXY/NO_PROXY from the environment, and bounded retries with backoff and jitter
 * on 429 (honouring Retry-After), 5xx, resets and timeouts, all inside one overall deadline.
 */
import { readFile } from 'node:fs/promises';
import { rootCertificates } from 'node:tls';
import { ConfigError, SourceError, errorMessage } from '../../errors.js';
import { backoffMs } from '../../util/backoff.js';
import { causeCode } from './diagnose.js';

export interface TransportOptions {
  /** PEM file with extra trusted CAs for registry TLS. */
  caFile?: string;
  /** Give up on the whole source stage after this long (default 10 minutes). */
  deadlineMs?: number;
  /** Attempts per request, including the first (default 5). */
  attempts?: number;
  /** First backoff step (default 500 ms); doubles per attempt, equal jitter, capped at 30 s. */
  baseDelayMs?: number;
  /** Per-request time to response headers (default 60 s). */
  requestTimeoutMs?: number;
  env?: NodeJS.ProcessEnv;
}

const RETRY_STATUS = new Set([429, 500, 502, 503, 504]);
const RETRY_CODES = /ECONNRESET|ECONNREFUSED|ETIMEDOUT|EPIPE|UND_ERR_(SOCKET|CONNECT_TIMEOUT|HEADERS_TIMEOUT|CLOSED)/;

export async function createRegistryFetch(opts: TransportOptions = {}): Promise<typeof fetch> {
  let ca: string[] | undefined;
  if (opts.caFile) {
    let pem: string;
    try {
      pem = await readFile(opts.caFile, 'utf8');
    } catch (err) {
      throw new ConfigError(`cannot read registry CA file ${opts.caFile}: ${errorMessage(err)}`);
    }
    if (!pem.includes('-----BEGIN CERTIFICATE-----')) throw new ConfigError(`registry CA file ${opts.caFile} holds no PEM certificate`);
    ca = [...rootCertificates, pem];
  }
  const env = opts.env ?? process.env;
  const headersTimeout = opts.requestTimeoutMs ?? 60_000;
  const proxied = [env.HTTP_PROXY, env.http_proxy, env.HTTPS_PROXY, env.https_proxy].some((v) => v !== undefined && v !== '');
  const deadline = Date.now() + (opts.deadlineMs ?? 600_000);
  const attempts = opts.attempts ?? 5;
  const base = opts.baseDelayMs ?? 500;

  let once: (input: Parameters<typeof fetch>[0], init?: RequestInit) => Promise<Response>;
  if (ca || proxied) {
    // The undici package only when a CA or a proxy asks for it: loading it costs more start-up time
    // than the whole up-to-date check, which the hourly CronJob does almost every time.
    const { EnvHttpProxyAgent, fetch: undiciFetch } = await import('undici');
    const tls = ca ? { ca } : {};
    const dispatcher = new EnvHttpProxyAgent({
      httpProxy: env.HTTP_PROXY ?? env.http_proxy,
      httpsProxy: env.HTTPS_PROXY ?? env.https_proxy,
      noProxy: env.NO_PROXY ?? env.no_proxy,
      connect: tls,
      requestTls: tls,
      headersTimeout,
    });
    once = (input, init) => undiciFetch(input as string, { ...(init as object), dispatcher } as never) as unknown as Promise<Response>;
  } else {
    once = (input, init) => fetchWithHeadersTimeout(input, init, headersTimeout);
  }

  return async (input, init) => {
    for (let attempt = 1; ; attempt++) {
      let res: Response | undefined;
      let failure: unknown;
      try {
        res = await once(input, init);
      } catch (err) {
        failure = err;
      }
      const retryable = res ? RETRY_STATUS.has(res.status) : RETRY_CODES.test(causeCode(failure));
      if (!retryable || attempt >= attempts) {
        if (res) return res;
        throw failure;
      }
      const wait = retryDelay(res?.headers.get('retry-after') ?? null, attempt, base);
      if (Date.now() + wait > deadline) {
        await res?.body?.cancel();
        throw new SourceError(
          `registry did not answer within the deadline (last: ${res ? `HTTP ${res.status}` : causeCode(failure) || errorMessage(failure)})`,
        );
      }
      await res?.body?.cancel();
      await new Promise((r) => setTimeout(r, wait));
    }
  };
}

/** Node's own fetch, given up (as a retryable timeout) when no response headers arrive in time. */
async function fetchWithHeadersTimeout(input: Parameters<typeof fetch>[0], init: RequestInit | undefined, timeoutMs: number): Promise<Response> {
  const timer = new AbortController();
  const timeout = setTimeout(() => {
    const err = new Error(`no response within ${timeoutMs} ms`, { cause: { code: 'UND_ERR_HEADERS_TIMEOUT' } });
    timer.abort(err);
  }, timeoutMs);
  const signal = init?.signal ? AbortSignal.any([init.signal, timer.signal]) : timer.signal;
  try {
    return await fetch(input, { ...init, signal });
  } finally {
    // Cleared once the headers are in: the body may take as long as the deadline allows.
    clearTimeout(timeout);
  }
}

/**
 * Retry-After (seconds or HTTP date) wins, capped at 60 s; else exponential backoff with equal jitter
 * (half fixed, half random), so many CronJobs retrying at once spread out but never hammer.
 */
export function retryDelay(retryAfter: string | null, attempt: number, baseMs: number, now = Date.now()): number {
  if (retryAfter) {
    const seconds = Number(retryAfter);
    const ms = Number.isFinite(seconds) ? seconds * 1000 : Date.parse(retryAfter) - now;
    if (Number.isFinite(ms) && ms >= 0) return Math.min(ms, 60_000);
  }
  return backoffMs(attempt - 1, baseMs, 30_000);
}
