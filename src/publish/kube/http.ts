/**
 * The one place that talks HTTP to the API server: credentials per request (rotated tokens are
 * picked up), one keep-alive agent, a per-attempt timeout, and the retry policy of retry.ts within
 * the run's deadline. Answers come back parsed; failures as ApiRequestError with the Status reason.
 */
import http from 'node:http';
import https from 'node:https';
import type { Connection } from './connection.js';
import { DEFAULT_RETRY, parseRetryAfter, retryDelay, type Failure, type RetryPolicy } from './retry.js';

/** Upper bound for one answer: 64 targets at the 1 MiB limit, with JSON overhead. */
const MAX_RESPONSE_BYTES = 96 * 1024 * 1024;

export interface ApiStatus {
  reason?: string;
  message?: string;
  code?: number;
  details?: { causes?: { reason?: string; message?: string; field?: string }[]; retryAfterSeconds?: number };
}

/** A request that did not succeed: an HTTP status with the server's Status, or no answer at all. */
export class ApiRequestError extends Error {
  constructor(
    readonly method: string,
    readonly path: string,
    /** 0 when there was no answer (reset, refused, timeout, deadline). */
    readonly status: number,
    readonly apiStatus: ApiStatus | undefined,
    message: string,
  ) {
    super(message);
  }
  get reason(): string | undefined {
    return this.apiStatus?.reason;
  }
}

export interface RequestSpec {
  method: 'GET' | 'POST' | 'PATCH' | 'DELETE';
  path: string;
  query?: Record<string, string | undefined>;
  body?: string;
  contentType?: string;
}

export interface ClientOptions {
  /** Epoch ms after which no new attempt starts. */
  deadline: number;
  policy?: RetryPolicy;
  random?: () => number;
  /** Called with every bearer token, so the logger can redact it. */
  onSecret?: (secret: string) => void;
  onRetry?: (info: { method: string; path: string; attempt: number; delayMs: number; why: string }) => void;
}

export class KubeHttp {
  private agent: http.Agent | undefined;
  requests = 0;

  constructor(
    readonly connection: Connection,
    readonly options: ClientOptions,
  ) {}

  async request<T = unknown>(spec: RequestSpec): Promise<T> {
    const policy = this.options.policy ?? DEFAULT_RETRY;
    const random = this.options.random ?? Math.random;
    for (let attempt = 0; ; attempt++) {
      const remaining = this.options.deadline - Date.now();
      if (remaining <= 0)
        throw new ApiRequestError(spec.method, spec.path, 0, undefined, `${spec.method} ${spec.path}: deadline passed before the request could be sent`);
      let failure: Failure;
      let error: ApiRequestError;
      try {
        return (await this.once(spec, Math.min(remaining, 15_000))) as T;
      } catch (err) {
        if (!(err instanceof ApiRequestError)) throw err;
        error = err;
        failure =
          err.status === 0 ? { kind: 'transport' } : { kind: 'status', status: err.status, retryAfterSeconds: err.apiStatus?.details?.retryAfterSeconds };
      }
      const delay = retryDelay(failure, attempt, this.options.deadline - Date.now(), random(), policy);
      if (delay === undefined) throw error;
      this.options.onRetry?.({ method: spec.method, path: spec.path, attempt, delayMs: delay, why: error.message });
      await new Promise((r) => setTimeout(r, delay));
    }
  }

  private async once(spec: RequestSpec, timeoutMs: number): Promise<unknown> {
    const creds = await this.connection.credentials();
    const auth = creds.headers.Authorization ?? creds.headers.authorization;
    if (auth) this.options.onSecret?.(auth.replace(/^(Bearer|Basic) /, ''));
    const url = new URL(this.connection.server + spec.path);
    for (const [k, v] of Object.entries(spec.query ?? {})) if (v !== undefined) url.searchParams.set(k, v);
    const isHttps = url.protocol === 'https:';
    this.agent ??= isHttps
      ? new https.Agent({
          keepAlive: true,
          ca: creds.ca,
          cert: creds.cert,
          key: creds.key,
          rejectUnauthorized: creds.rejectUnauthorized,
          servername: creds.servername,
        })
      : new http.Agent({ keepAlive: true });
    const headers: Record<string, string> = { ...creds.headers, accept: 'application/json', 'user-agent': 'zeta-provision' };
    if (spec.body !== undefined) {
      headers['content-type'] = spec.contentType ?? 'application/json';
      headers['content-length'] = String(Buffer.byteLength(spec.body));
    }
    this.requests++;
    return new Promise((resolve, reject) => {
      const fail = (why: string) => reject(new ApiRequestError(spec.method, spec.path, 0, undefined, `${spec.method} ${url.pathname}: ${why}`));
      const req = (isHttps ? https : http).request(url, { method: spec.method, headers, agent: this.agent, timeout: timeoutMs }, (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          size += c.length;
          // A LIST of our objects is at most a few MiB per target; an endless answer is refused.
          if (size > MAX_RESPONSE_BYTES) req.destroy(new Error(`answer larger than ${MAX_RESPONSE_BYTES} bytes`));
          else chunks.push(c);
        });
        res.on('error', (e) => fail(e.message));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let body: unknown;
          try {
            body = text === '' ? undefined : JSON.parse(text);
          } catch {
            body = undefined;
          }
          const code = res.statusCode ?? 0;
          if (code >= 200 && code < 300) return resolve(body);
          const st = (body && typeof body === 'object' ? body : {}) as ApiStatus;
          const retryAfter = parseRetryAfter(res.headers['retry-after']);
          if (retryAfter !== undefined) st.details = { ...st.details, retryAfterSeconds: retryAfter };
          reject(
            new ApiRequestError(
              spec.method,
              spec.path,
              code,
              st,
              `${spec.method} ${url.pathname}: ${code} ${st.reason ?? ''}${st.message ? `: ${st.message}` : ''}`.trim(),
            ),
          );
        });
      });
      req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
      req.on('error', (e: NodeJS.ErrnoException) => fail(e.code ? `${e.code} ${e.message}` : e.message));
      if (spec.body !== undefined) req.write(spec.body);
      req.end();
    });
  }

  close(): void {
    this.agent?.destroy();
  }
}
