/**
 * Config stage: YAML file (or the built-in classic layout) + env + flags → validated `Settings`.
 * Precedence: flags > env (ZETA_PROVISION_* > gematik's names) > config file > defaults.
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { LineCounter, parseDocument, isNode } from 'yaml';
import type { DryRunMode, OutputFormat, RunFlags } from './flags.js';
import { ConfigError, UsageError, errorMessage } from '../errors.js';
import type { Config, GematikSettings } from './types.js';
import { INPUT_NAME_ENV } from './process.js';
import { BUILTIN_TRUST_SETS, payloadPathProblem, validateConfig } from './validate.js';

export type { Config, GematikSettings, VerifyRule, ConfigMapTarget } from './types.js';
export type { DryRunMode, OutputFormat, RunFlags } from './flags.js';
export { payloadPathProblem, BUILTIN_TRUST_SETS } from './validate.js';

export interface Settings {
  config: Config;
  source?: string;
  /** Directory a relative source path resolves against: cwd for flags/env, the config's dir for the file. */
  sourceBaseDir: string;
  volumeDir?: string;
  kubeOut?: string;
  namespace?: string;
  /** The API target: where, how long to retry, whether to prune and force. */
  kube: { kubeconfig?: string; context?: string; instance: string; prune: boolean; forceConflicts: boolean; deadlineSeconds: number };
  insecureRegistries: string[];
  registryCaFile?: string;
  registryAuthFile?: string;
  /** Cap on the unpacked payload (--max-payload-mib); the source stage's default when absent. */
  maxPayloadBytes?: number;
  /** `os/arch[/variant]` to take from an image index (checked by the source stage). */
  platform?: string;
  dryRun: DryRunMode | false;
  detailedExitcode: boolean;
  output: OutputFormat;
  force: boolean;
  /** Apply a payload that proves an older signing time than the last applied one (src/verify/downgrade.ts). */
  allowDowngrade: boolean;
  debug: boolean;
  gematik: GematikSettings;
  /** Image (cosign) signature policy, with flags and env applied. */
  image: { mode: 'required' | 'optional' | 'off'; trustChain?: string; identity?: string };
  /** Digest of everything in the config that shapes the outputs; part of the up-to-date check. */
  configHash: string;
  /** Run-time overrides for the processors (flags/env). */
  process: {
    tslGraceDays?: number;
    /** Extra TSL signer anchor files (added to the configured ones). */
    tslSignerAnchors?: string[];
    /** Trust-set names replacing process.tsl.trust. */
    tslTrust?: string[];
    tslSignature?: 'required' | 'off';
    truststorePasswordFile?: string;
  };
}

export { PACKAGE_ROOT } from './package-root.js';
import { PACKAGE_ROOT } from './package-root.js';
export const DEFAULT_CONFIG_FILE = path.join(PACKAGE_ROOT, 'config', 'default.yaml');
/** Certificates of a trust set that ships with the tool (`config/trust/<name>/` in the package). */
export function builtinTrustDir(name: string): string {
  return path.join(PACKAGE_ROOT, 'config', 'trust', name);
}

/** Files of a trust set: one defined under `trust:` wins over a built-in one of the same name. */
export function trustSetFiles(config: Config, name: string): string[] | undefined {
  return config.trust[name] ?? (BUILTIN_TRUST_SETS.includes(name) ? [builtinTrustDir(name)] : undefined);
}

/** `--profile NAME` selects the shipped config/NAME.yaml (currently: gematik). */
export const PROFILES = ['gematik'];

export function profileConfigFile(flags: Pick<RunFlags, 'profile' | 'config'>): string | undefined {
  if (flags.profile === undefined) return flags.config;
  if (flags.config !== undefined)
    throw new UsageError(
      '--profile and --config exclude each other',
      'a profile is a shipped config file; copy config/<profile>.yaml and pass it with --config to change it',
    );
  if (!PROFILES.includes(flags.profile)) throw new UsageError(`unknown profile "${flags.profile}" (known: ${PROFILES.join(', ')})`);
  return path.join(PACKAGE_ROOT, 'config', `${flags.profile}.yaml`);
}

const MAX_CONFIG_BYTES = 1024 * 1024;

export async function loadConfigFile(file: string | undefined): Promise<Config> {
  const target = file ?? DEFAULT_CONFIG_FILE;
  const origin = file ?? 'built-in default config';
  let text: string;
  try {
    const buf = await readFile(target);
    if (buf.length > MAX_CONFIG_BYTES) throw new ConfigError(`${origin}: larger than 1 MiB; this is not a config file`);
    text = buf.toString('utf8');
  } catch (err) {
    if (err instanceof ConfigError) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : code === 'EISDIR' ? 'is a directory' : errorMessage(err);
    throw new ConfigError(`cannot read config ${origin}: ${why}`);
  }
  return parseConfigText(text, origin, path.dirname(path.resolve(target)));
}

export function parseConfigText(text: string, origin: string, baseDir: string): Config {
  const lineCounter = new LineCounter();
  // Aliases are capped so a "billion laughs" config cannot exhaust memory.
  const doc = parseDocument(text, { lineCounter, prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length > 0) {
    const e = doc.errors[0]!;
    const line = e.linePos?.[0]?.line;
    throw new ConfigError(`${origin}${line ? `:${line}` : ''}: invalid YAML: ${e.message.split('\n')[0]}`);
  }
  const locate = (keyPath: (string | number)[]): number | undefined => {
    for (let n = keyPath.length; n >= 0; n--) {
      const node = doc.getIn(keyPath.slice(0, n), true);
      if (isNode(node) && node.range) return lineCounter.linePos(node.range[0]).line;
    }
    return undefined;
  };
  let raw: unknown;
  try {
    raw = doc.toJS({ maxAliasCount: 100 });
  } catch (err) {
    // The yaml library refuses alias bombs ("billion laughs") here; that is bad input, not a bug.
    throw new ConfigError(`${origin}: invalid YAML: ${errorMessage(err)}`);
  }
  return validateConfig(raw, origin, baseDir, locate);
}

export function resolveSettings(flags: RunFlags, config: Config, env: NodeJS.ProcessEnv, cwd = process.cwd()): Settings {
  const abs = (p: string | undefined): string | undefined => (p === undefined ? undefined : path.resolve(cwd, p));
  const settings: Settings = {
    config,
    source: flags.source ?? config.source,
    sourceBaseDir: flags.source !== undefined ? cwd : config.baseDir,
    volumeDir: abs(flags.volume) ?? config.volume.dir,
    kubeOut: abs(flags.kubeOut),
    namespace: flags.namespace ?? config.namespace,
    kube: {
      kubeconfig: abs(flags.kubeconfig),
      context: flags.context,
      instance: config.instance ?? 'zeta-provision',
      prune: flags.prune ?? false,
      forceConflicts: flags.forceConflicts ?? false,
      deadlineSeconds: flags.kubeDeadline ?? 60,
    },
    insecureRegistries: flags.insecureRegistry ?? [],
    registryCaFile: abs(flags.registryCa),
    registryAuthFile: abs(flags.registryAuthFile),
    platform: flags.platform,
    maxPayloadBytes: flags.maxPayloadMib === undefined ? undefined : flags.maxPayloadMib * 1024 * 1024,
    dryRun: flags.dryRun ?? false,
    detailedExitcode: flags.detailedExitcode ?? false,
    output: flags.output ?? 'text',
    force: flags.force ?? false,
    allowDowngrade: flags.allowDowngrade ?? false,
    debug: flags.debug ?? false,
    gematik: gematikFromEnv(env),
    image: imagePolicy(flags, config, cwd),
    configHash: '',
    process: {
      tslGraceDays: flags.tslGraceDays,
      tslSignerAnchors: flags.tslSignerAnchor?.map((f) => path.resolve(cwd, f)),
      tslTrust: flags.tslTrust,
      tslSignature: flags.tslSignature,
      truststorePasswordFile: abs(flags.truststorePassFile),
    },
  };
  for (const t of flags.tslTrust ?? []) {
    if (!(t in config.trust) && !BUILTIN_TRUST_SETS.includes(t))
      throw new UsageError(`--tsl-trust: unknown trust set "${t}"`, `built in: ${BUILTIN_TRUST_SETS.join(', ')}; or define it under trust: in the config`);
  }
  if (flags.registryAuthFile !== undefined && !existsSync(settings.registryAuthFile!)) {
    // Said now, by name: later it would be an ENOENT from deep inside the registry client.
    throw new UsageError(
      `--registry-auth-file ${flags.registryAuthFile}: no such file or directory`,
      'pass an existing docker config.json or a mounted pull Secret directory (--registry-auth-file, ZETA_PROVISION_REGISTRY_AUTH_FILE, REGISTRY_AUTH_FILE)',
    );
  }
  if (settings.detailedExitcode && !settings.dryRun) {
    throw new UsageError('--detailed-exitcode only has a meaning together with --dry-run');
  }
  settings.configHash = hashConfig(settings);
  return settings;
}

/** gematik signs its provisioning image with this identity (leaf SAN e-mail). */
export const GEMATIK_IMAGE_IDENTITY = 'software-development@gematik.de';

/**
 * A pinned chain makes the signature required unless said otherwise; without one nothing can be
 * verified, which is allowed only as an explicit or default "off" (and the report warns).
 */
function imagePolicy(flags: RunFlags, config: Config, cwd: string): Settings['image'] {
  const trustChain = flags.imageTrustChain !== undefined ? path.resolve(cwd, flags.imageTrustChain) : config.image.trustChain;
  const mode = flags.imageSignature ?? config.image.signature ?? (trustChain ? 'required' : 'off');
  if (mode !== 'off' && !trustChain) {
    throw new ConfigError(
      `image signature is "${mode}" but no trust chain is set`,
      'pass --image-trust-chain FILE or set TRUST_CERTCHAIN_FILE (or image.trustChain in the config)',
    );
  }
  const identity = flags.imageIdentity ?? config.image.identity ?? GEMATIK_IMAGE_IDENTITY;
  return { mode, trustChain, identity: identity === 'any' ? undefined : identity };
}

/** gematik's processor variables that have no `run` flag (yet); secrets are kept but never printed. */
export function gematikFromEnv(env: NodeJS.ProcessEnv): GematikSettings {
  const user = nonEmpty(env.PROVISIONING_CONTAINER_REGISTRY_USERNAME);
  const token = nonEmpty(env.PROVISIONING_CONTAINER_REGISTRY_TOKEN);
  if ((user === undefined) !== (token === undefined)) {
    throw new UsageError('PROVISIONING_CONTAINER_REGISTRY_USERNAME and PROVISIONING_CONTAINER_REGISTRY_TOKEN must be set together');
  }
  const resultFilenames: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) if (k.endsWith('_RESULT_FILENAME') && v) resultFilenames[k] = v;
  const inputFilenames: Record<string, string> = {};
  for (const k of INPUT_NAME_ENV) {
    const v = nonEmpty(env[k]);
    if (v === undefined) continue;
    // These name payload files: the same rules as payload paths in a config.
    const problem = payloadPathProblem(v);
    if (problem) throw new UsageError(`${k}=${JSON.stringify(v)}: ${problem}`);
    inputFilenames[k] = v;
  }
  return {
    registryUsername: user,
    registryToken: token,
    truststorePassword: nonEmpty(env.TRUSTSTORE_PASS),
    resultFilenames,
    inputFilenames,
  };
}

function nonEmpty(v: string | undefined): string | undefined {
  return v === undefined || v === '' ? undefined : v;
}

function hashConfig(s: Settings): string {
  const { origin: _origin, baseDir: _baseDir, ...shape } = s.config;
  // The truststore password is left out on purpose: this hash is stored in the volume record, and a
  // hash of a low-entropy password is a guessing oracle. A password change needs `run --force`.
  const material = JSON.stringify({
    shape,
    namespace: s.namespace,
    image: s.image,
    resultFilenames: s.gematik.resultFilenames,
    inputFilenames: s.gematik.inputFilenames,
    process: s.process,
    platform: s.platform,
  });
  return 'sha256:' + createHash('sha256').update(material).digest('hex');
}
