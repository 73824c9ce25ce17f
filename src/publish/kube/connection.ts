/**
 * Where the API server is and how to authenticate: an explicit kubeconfig (--kubeconfig), the
 * KUBECONFIG list, ~/.kube/config, or the pod's ServiceAccount — in kubectl's order. Unlike
 * `loadFromDefault()` of client-node this never falls back to http://localhost:8080: with nothing
 * configured the run fails and says what it tried.
 */
import { readFileSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import path from 'node:path';
import type { KubeConfig } from '@kubernetes/client-node/dist/config.js';
import { ConfigError, errorMessage } from '../../errors.js';

export const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

export interface ConnectionOptions {
  kubeconfig?: string;
  context?: string;
  env: NodeJS.ProcessEnv;
  /** Where the ServiceAccount token, CA and namespace are mounted (tests use a temp dir). */
  serviceAccountDir?: string;
}

export interface Credentials {
  headers: Record<string, string>;
  ca?: Buffer;
  cert?: Buffer;
  key?: Buffer;
  rejectUnauthorized: boolean;
  servername?: string;
}

export interface Connection {
  server: string;
  /** What the settings were loaded from, for messages: `in-cluster` or `kubeconfig FILE (context C)`. */
  origin: string;
  /** The namespace the config names (ServiceAccount namespace or context namespace), if any. */
  namespace?: string;
  /** Credentials for the next request; token files are re-read when they change. */
  credentials(): Promise<Credentials>;
}

export async function loadConnection(opts: ConnectionOptions): Promise<Connection> {
  const tried: string[] = [];
  const files = kubeconfigFiles(opts, tried);
  if (files) {
    // Loaded only here, and only its kubeconfig module (not the generated API clients, 4.7 of its
    // 5.7 MB bundled): client-node costs about a second of start-up, which neither --kube-out nor
    // an in-cluster run (the CronJob) should pay.
    const { KubeConfig } = await import('@kubernetes/client-node/dist/config.js');
    return fromKubeconfig(KubeConfig, files, opts.context);
  }
  const saDir = opts.serviceAccountDir ?? SERVICE_ACCOUNT_DIR;
  const host = opts.env.KUBERNETES_SERVICE_HOST;
  const port = opts.env.KUBERNETES_SERVICE_PORT;
  const tokenFile = path.join(saDir, 'token');
  if (host && port && exists(tokenFile)) {
    if (opts.context) throw new ConfigError(`--context ${opts.context} given, but no kubeconfig was found (running in-cluster)`);
    return inCluster(host, port, saDir);
  }
  tried.push(host && port ? `in-cluster (no ServiceAccount token at ${tokenFile})` : 'in-cluster (KUBERNETES_SERVICE_HOST/PORT not set)');
  throw new ConfigError(
    `no Kubernetes API configuration found; tried ${tried.join(', ')}`,
    'pass --kubeconfig FILE, set KUBECONFIG, run in a pod with a ServiceAccount, or write manifests with --kube-out DIR',
  );
}

function kubeconfigFiles(opts: ConnectionOptions, tried: string[]): string[] | undefined {
  if (opts.kubeconfig) {
    if (!exists(opts.kubeconfig)) throw new ConfigError(`--kubeconfig ${opts.kubeconfig}: no such file`);
    return [opts.kubeconfig];
  }
  const list = (opts.env.KUBECONFIG ?? '').split(path.delimiter).filter((f) => f !== '');
  if (list.length > 0) {
    const present = list.filter(exists);
    if (present.length > 0) return present;
    tried.push(`KUBECONFIG=${list.join(path.delimiter)} (no such file)`);
  } else tried.push('KUBECONFIG (not set)');
  const home = opts.env.HOME || homedir();
  const fallback = path.join(home, '.kube', 'config');
  if (exists(fallback)) return [fallback];
  tried.push(`${fallback} (absent)`);
  return undefined;
}

function fromKubeconfig(KubeConfigClass: typeof KubeConfig, files: string[], context: string | undefined): Connection {
  const kc = new KubeConfigClass();
  try {
    // kubectl's merge rule for a KUBECONFIG list: the first file to define a name (or a
    // current-context) wins; later duplicates are ignored, not errors.
    const loaded = files.map((f) => {
      const one = new KubeConfigClass();
      one.loadFromFile(f);
      return one;
    });
    const firstByName = <T extends { name: string }>(lists: T[][]): T[] => {
      const seen = new Map<string, T>();
      for (const item of lists.flat()) if (!seen.has(item.name)) seen.set(item.name, item);
      return [...seen.values()];
    };
    kc.loadFromOptions({
      clusters: firstByName(loaded.map((k) => k.clusters)),
      users: firstByName(loaded.map((k) => k.users)),
      contexts: firstByName(loaded.map((k) => k.contexts)),
      currentContext: loaded.map((k) => k.currentContext).find((c) => !!c) ?? '',
    });
  } catch (err) {
    throw new ConfigError(`cannot read kubeconfig ${files.join(path.delimiter)}: ${errorMessage(err).split('\n')[0]}`);
  }
  if (context) {
    if (!kc.getContextObject(context)) {
      throw new ConfigError(
        `kubeconfig ${files.join(path.delimiter)} has no context "${context}"`,
        `contexts: ${
          kc
            .getContexts()
            .map((c) => c.name)
            .join(', ') || '(none)'
        }`,
      );
    }
    kc.setCurrentContext(context);
  }
  const ctx = kc.getContextObject(kc.getCurrentContext());
  const cluster = kc.getCurrentCluster();
  const origin = `kubeconfig ${files.join(path.delimiter)}${ctx ? ` (context ${ctx.name})` : ''}`;
  if (!ctx || !cluster) throw new ConfigError(`${origin}: no current context with a cluster`, 'pass --context NAME');
  if (!/^https?:\/\//.test(cluster.server)) throw new ConfigError(`${origin}: cluster server "${cluster.server}" is not an http(s) URL`);
  // client-node refuses plain HTTP unless TLS verification is explicitly off; so do we.
  if (cluster.server.startsWith('http:') && !cluster.skipTLSVerify) {
    throw new ConfigError(`${origin}: cluster server ${cluster.server} is plain HTTP`, 'use https, or set insecure-skip-tls-verify: true for a test cluster');
  }
  return {
    server: cluster.server.replace(/\/+$/, ''),
    origin,
    namespace: ctx.namespace,
    credentials: async () => {
      const opts: { headers: Record<string, string>; [k: string]: unknown } = { headers: {} };
      try {
        await kc.applyToHTTPSOptions(opts as never);
      } catch (err) {
        throw new ConfigError(`${origin}: cannot load credentials: ${errorMessage(err).split('\n')[0]}`);
      }
      const headers = { ...opts.headers };
      if (typeof opts.auth === 'string') headers.Authorization = 'Basic ' + Buffer.from(opts.auth).toString('base64');
      return {
        headers,
        ca: opts.ca as Buffer | undefined,
        cert: opts.cert as Buffer | undefined,
        key: opts.key as Buffer | undefined,
        rejectUnauthorized: opts.rejectUnauthorized !== false,
        servername: opts.servername as string | undefined,
      };
    },
  };
}

function inCluster(host: string, port: string, saDir: string): Connection {
  const caFile = path.join(saDir, 'ca.crt');
  const tokenFile = path.join(saDir, 'token');
  let namespace: string | undefined;
  try {
    namespace = readFileSync(path.join(saDir, 'namespace'), 'utf8').trim() || undefined;
  } catch {
    namespace = undefined;
  }
  // kubelet rotates projected tokens by swapping the file (a symlink into a new ..data generation):
  // re-read whenever its identity or mtime changes, not on a timer, so a rotated token is used at once.
  let cached: { stamp: string; token: string } | undefined;
  const token = (): string => {
    const st = statSync(tokenFile);
    const stamp = `${st.ino}:${st.mtimeMs}:${st.size}`;
    if (cached?.stamp !== stamp) cached = { stamp, token: readFileSync(tokenFile, 'utf8').trim() };
    return cached.token;
  };
  const hostPart = host.includes(':') ? `[${host}]` : host;
  let ca: Buffer | undefined;
  return {
    server: `https://${hostPart}:${port}`,
    origin: `in-cluster (ServiceAccount ${saDir})`,
    namespace,
    credentials: async () => {
      try {
        // The CA goes into the HTTPS agent once; only the token rotates (kubelet swaps it), so only it is re-checked per request.
        ca ??= readFileSync(caFile);
        return { headers: { Authorization: `Bearer ${token()}` }, ca, rejectUnauthorized: true };
      } catch (err) {
        throw new ConfigError(
          `in-cluster: cannot read the ServiceAccount token or CA in ${saDir}: ${(err as NodeJS.ErrnoException).code ?? errorMessage(err)}`,
        );
      }
    },
  };
}

function exists(file: string): boolean {
  try {
    return statSync(file).isFile();
  } catch {
    return false;
  }
}
