/**
 * Registry logins the way the container tools keep them, so `skopeo login`, `podman login` and
 * `docker login` work without a flag. Looked at in this order (after explicit credentials and
 * --registry-auth-file): REGISTRY_AUTH_FILE, ${XDG_RUNTIME_DIR}/containers/auth.json,
 * $DOCKER_CONFIG/config.json (else ~/.docker/config.json); the first file that knows the registry wins.
 * In a file, `credHelpers[host]` and `credsStore` name a docker credential helper, run by the protocol
 * docker uses: `docker-credential-<name> get`, the server URL on stdin, JSON on stdout.
 */
import { stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { SourceError, errorMessage } from '../../errors.js';
import type { Credentials } from './auth.js';
import { credentialsFor, loadAuthFile, normalizeHost } from './credentials.js';

export interface LoginSettings {
  authFile?: string;
  env?: NodeJS.ProcessEnv;
  /** Time a credential helper may take (default 10 s). */
  helperTimeoutMs?: number;
}

/** Credentials plus where they came from (a file, a helper): named in messages, never the secret. */
export interface FoundCredentials extends Credentials {
  origin: string;
}

/** The login files to consult, in order, existing or not (pure). */
export function loginFiles(env: NodeJS.ProcessEnv, explicit?: string): string[] {
  const files: string[] = [];
  if (explicit) files.push(explicit);
  if (env.REGISTRY_AUTH_FILE) files.push(env.REGISTRY_AUTH_FILE);
  if (env.XDG_RUNTIME_DIR) files.push(path.join(env.XDG_RUNTIME_DIR, 'containers', 'auth.json'));
  const home = env.HOME ?? os.homedir();
  files.push(env.DOCKER_CONFIG ? path.join(env.DOCKER_CONFIG, 'config.json') : path.join(home, '.docker', 'config.json'));
  return [...new Set(files)];
}

/** What a login document says for `registry` (pure): inline credentials, a helper to ask, or nothing. */
export function loginEntry(registry: string, doc: unknown): { credentials: Credentials } | { helper: string } | undefined {
  if (typeof doc !== 'object' || doc === null) return undefined;
  const d = doc as Record<string, unknown>;
  const wanted = normalizeHost(registry);
  if (typeof d.credHelpers === 'object' && d.credHelpers !== null) {
    for (const [key, name] of Object.entries(d.credHelpers as Record<string, unknown>)) {
      if (normalizeHost(key) === wanted && typeof name === 'string' && name !== '') return { helper: name };
    }
  }
  const credentials = credentialsFor(registry, doc);
  if (credentials) return { credentials };
  if (typeof d.credsStore === 'string' && d.credsStore !== '') return { helper: d.credsStore };
  return undefined;
}

export async function findCredentials(registry: string, settings: LoginSettings): Promise<FoundCredentials | undefined> {
  const env = settings.env ?? process.env;
  for (const file of loginFiles(env, settings.authFile)) {
    // An explicitly named file must exist (loadAuthFile says so); discovered ones may well not.
    if (
      file !== settings.authFile &&
      !(await stat(file).then(
        () => true,
        () => false,
      ))
    )
      continue;
    const entry = loginEntry(registry, await loadAuthFile(file));
    if (entry === undefined) continue;
    if ('credentials' in entry) return { ...entry.credentials, origin: file };
    const found = await runCredentialHelper(entry.helper, registry, file, env, settings.helperTimeoutMs ?? 10_000);
    if (found) return found;
  }
  return undefined;
}

/** docker passes Docker Hub's legacy index URL to helpers; every other registry by host[:port]. */
function serverUrl(registry: string): string {
  return normalizeHost(registry) === 'docker.io' ? 'https://index.docker.io/v1/' : registry;
}

/**
 * Runs `docker-credential-<name> get`. Its stderr is never shown (helpers have printed secrets there),
 * nor its stdout beyond the one "not found" answer of the protocol. "Not found" means no credentials
 * (anonymous pull, as docker does); a missing, failing or hanging helper is an error naming it.
 */
export async function runCredentialHelper(
  name: string,
  registry: string,
  file: string,
  env: NodeJS.ProcessEnv,
  timeoutMs: number,
): Promise<FoundCredentials | undefined> {
  // The name comes from a file: it selects a program on PATH, never a path of its own.
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(name)) throw new SourceError(`credential helper name '${name.slice(0, 50)}' in ${file} is not valid`);
  const program = `docker-credential-${name}`;
  const { execa } = await import('execa');
  const r = await execa(program, ['get'], {
    input: serverUrl(registry),
    env,
    extendEnv: false,
    timeout: timeoutMs,
    reject: false,
    stripFinalNewline: true,
    maxBuffer: 1024 * 1024,
  });
  const where = `${program} (named in ${file})`;
  const hint = `install ${program} on PATH, log in again, or remove the helper from ${file}; --registry-auth-file FILE names another login file`;
  if ((r as { code?: string }).code === 'ENOENT' || /ENOENT/.test(String((r as { cause?: unknown }).cause ?? ''))) {
    throw new SourceError(`credential helper ${where} is not installed`, hint);
  }
  if (r.timedOut) throw new SourceError(`credential helper ${where} did not answer within ${timeoutMs} ms`, hint);
  if (r.exitCode !== 0) {
    if (/credentials not found/i.test(String(r.stdout))) return undefined;
    throw new SourceError(
      `credential helper ${where} failed for ${registry} (exit ${r.exitCode ?? r.signal ?? 'unknown'}); its output is not shown, it may hold secrets`,
      hint,
    );
  }
  let body: { Username?: unknown; Secret?: unknown };
  try {
    body = JSON.parse(String(r.stdout)) as typeof body;
  } catch (err) {
    throw new SourceError(`credential helper ${where} did not answer JSON (${errorMessage(err).split('\n')[0]?.slice(0, 60)})`, hint);
  }
  if (typeof body.Username !== 'string' || typeof body.Secret !== 'string' || body.Secret === '') {
    throw new SourceError(`credential helper ${where} answered without Username and Secret`, hint);
  }
  if (body.Username === '<token>') {
    throw new SourceError(
      `credential helper ${where} holds an identity token for ${registry}; identity tokens are not supported`,
      'log in with a username and password or access token, or pass PROVISIONING_CONTAINER_REGISTRY_USERNAME and PROVISIONING_CONTAINER_REGISTRY_TOKEN',
    );
  }
  return { username: body.Username, password: body.Secret, origin: program };
}
