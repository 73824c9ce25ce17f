/**
 * Registry credentials from a docker `config.json`, or a mounted image pull Secret (a directory holding
 * `.dockerconfigjson` or the legacy `.dockercfg`). Entries are matched to the registry by host[:port]
 * only, so credentials for one registry are never offered to another.
 */
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { ConfigError, errorMessage } from '../../errors.js';
import type { Credentials } from './auth.js';

const MAX_AUTH_FILE = 1024 * 1024;

/** Reads a config.json / .dockerconfigjson / .dockercfg file, or a Secret directory holding one. */
export async function loadAuthFile(file: string): Promise<unknown> {
  let target = file;
  try {
    if ((await stat(file)).isDirectory()) {
      const candidates = ['.dockerconfigjson', '.dockercfg', 'config.json'].map((n) => path.join(file, n));
      const found = [];
      for (const c of candidates)
        if (
          await stat(c).then(
            (s) => s.isFile(),
            () => false,
          )
        )
          found.push(c);
      if (found.length === 0) throw new ConfigError(`registry auth directory ${file} holds no .dockerconfigjson, .dockercfg or config.json`);
      target = found[0]!;
    }
    const buf = await readFile(target);
    if (buf.length > MAX_AUTH_FILE) throw new ConfigError(`registry auth file ${target} is larger than 1 MiB`);
    return JSON.parse(buf.toString('utf8'));
  } catch (err) {
    if (err instanceof ConfigError) throw err;
    // The file content is secret: the message names the file and the kind of failure only.
    const why = err instanceof SyntaxError ? 'not valid JSON' : errorMessage(err);
    throw new ConfigError(`cannot read registry auth file ${target}: ${why}`);
  }
}

/** Pure: the credentials a docker auth document holds for `registry` (host[:port]), if any. */
export function credentialsFor(registry: string, doc: unknown): Credentials | undefined {
  if (typeof doc !== 'object' || doc === null) return undefined;
  const record = doc as Record<string, unknown>;
  // config.json / .dockerconfigjson nest under "auths"; legacy .dockercfg is the map itself.
  const auths = (typeof record.auths === 'object' && record.auths !== null ? record.auths : record) as Record<string, unknown>;
  const wanted = normalizeHost(registry);
  for (const [key, entry] of Object.entries(auths)) {
    if (normalizeHost(key) !== wanted || typeof entry !== 'object' || entry === null) continue;
    const e = entry as Record<string, unknown>;
    if (typeof e.username === 'string' && typeof e.password === 'string' && e.username !== '') return { username: e.username, password: e.password };
    if (typeof e.auth === 'string') {
      const decoded = Buffer.from(e.auth, 'base64').toString('utf8');
      const colon = decoded.indexOf(':');
      if (colon > 0) return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
    }
  }
  return undefined;
}

/** `https://index.docker.io/v1/` → `docker.io`; `https://r.example:5000/x` → `r.example:5000`. */
export function normalizeHost(key: string): string {
  let host = key
    .trim()
    .replace(/^[a-z]+:\/\//i, '')
    .split('/')[0]!
    .toLowerCase();
  if (host === 'index.docker.io' || host === 'registry-1.docker.io') host = 'docker.io';
  return host;
}
