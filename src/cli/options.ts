/**
 * The options of `zeta-provision run` in one table: commander flags, the env twin
 * `ZETA_PROVISION_<FLAG>`, and gematik's processor variable names where one exists. The help text,
 * the env reader and the precedence merge are all generated from this table, so they cannot drift.
 */
import { UsageError } from '../errors.js';

export type DryRunMode = 'client' | 'server';
export type OutputFormat = 'text' | 'json';
export type ImageSignatureMode = 'required' | 'optional' | 'off';

/** Values the user set explicitly (by flag or env); absent keys fall through to file and defaults. */
export interface RunFlags {
  config?: string;
  source?: string;
  volume?: string;
  kubeOut?: string;
  namespace?: string;
  kubeconfig?: string;
  context?: string;
  prune?: boolean;
  forceConflicts?: boolean;
  kubeDeadline?: number;
  insecureRegistry?: string[];
  registryCa?: string;
  registryAuthFile?: string;
  platform?: string;
  maxPayloadMib?: number;
  imageTrustChain?: string;
  imageIdentity?: string;
  imageSignature?: ImageSignatureMode;
  dryRun?: DryRunMode | false;
  detailedExitcode?: boolean;
  output?: OutputFormat;
  logFormat?: OutputFormat;
  force?: boolean;
  allowDowngrade?: boolean;
  debug?: boolean;
  profile?: string;
  tslGraceDays?: number;
  tslSignerAnchor?: string;
  truststorePassFile?: string;
}

type Kind = 'string' | 'list' | 'boolean' | 'output' | 'dryRun' | 'signatureMode' | 'seconds' | 'days' | 'mebibytes';

export interface OptionSpec {
  key: keyof RunFlags;
  flags: string;
  kind: Kind;
  description: string;
  /** gematik's provisioning-processor variable names accepted as lower-priority twins. */
  gematikEnv?: string[];
}

export const RUN_OPTIONS: OptionSpec[] = [
  { key: 'config', flags: '--config <file>', kind: 'string', description: 'YAML configuration file (default: the built-in classic layout)' },
  { key: 'source', flags: '--source <ref>', kind: 'string', description: 'payload to provision: dir:PATH | oci-layout:PATH[:TAG|@sha256:DIGEST]', gematikEnv: ['PROVISIONING_CONTAINER_NAME'] },
  { key: 'volume', flags: '--volume <dir>', kind: 'string', description: 'volume directory that receives large files (atomic ..data swap)', gematikEnv: ['RESULT_DIR'] },
  { key: 'kubeOut', flags: '--kube-out <dir>', kind: 'string', description: 'write ConfigMap manifests as YAML files into DIR instead of calling the API' },
  { key: 'namespace', flags: '--namespace <ns>', kind: 'string', description: 'namespace of the ConfigMaps/Secrets (default: from the config, else the kubeconfig context or ServiceAccount namespace)' },
  { key: 'kubeconfig', flags: '--kubeconfig <file>', kind: 'string', description: 'kubeconfig for the API target (default: KUBECONFIG, ~/.kube/config, else the in-cluster ServiceAccount)' },
  { key: 'context', flags: '--context <name>', kind: 'string', description: 'kubeconfig context to use (default: its current-context)' },
  { key: 'prune', flags: '--prune', kind: 'boolean', description: 'delete ConfigMaps/Secrets this instance made that the config no longer produces' },
  { key: 'forceConflicts', flags: '--force-conflicts', kind: 'boolean', description: 'server-side apply with force: take over fields another field manager owns' },
  { key: 'kubeDeadline', flags: '--kube-deadline <seconds>', kind: 'seconds', description: 'give up retrying API requests after this many seconds per phase (default 60)' },
  { key: 'insecureRegistry', flags: '--insecure-registry <hosts>', kind: 'list', description: 'comma-separated registry hosts (host[:port]) that may be reached over plain HTTP' },
  { key: 'registryCa', flags: '--registry-ca <file>', kind: 'string', description: 'PEM CA(s) trusted for registry TLS, in addition to the system roots', gematikEnv: ['PROVISIONING_CONTAINER_REGISTRY_CA_FILE'] },
  { key: 'registryAuthFile', flags: '--registry-auth-file <path>', kind: 'string', description: 'docker config.json, or a mounted image pull Secret directory (.dockerconfigjson/.dockercfg)', gematikEnv: ['REGISTRY_AUTH_FILE'] },
  { key: 'maxPayloadMib', flags: '--max-payload-mib <MiB>', kind: 'mebibytes', description: 'cap on the unpacked payload size (default 64; the staging /tmp must hold it: raise the emptyDir sizeLimit with it)' },
  { key: 'platform', flags: '--platform <os/arch[/variant]>', kind: 'string', description: 'image to take from a multi-platform index (default linux/amd64, or the only image)' },
  { key: 'imageTrustChain', flags: '--image-trust-chain <file>', kind: 'string', description: 'pinned certificate chain the image signature (cosign) must chain to', gematikEnv: ['TRUST_CERTCHAIN_FILE'] },
  { key: 'imageIdentity', flags: '--image-identity <email>', kind: 'string', description: 'required signer e-mail (SAN) of the image signature; "any" accepts every leaf of the chain (default software-development@gematik.de)' },
  { key: 'imageSignature', flags: '--image-signature <mode>', kind: 'signatureMode', description: 'required | optional | off (default: required when a trust chain is set, else off with a warning)' },
  { key: 'dryRun', flags: '--dry-run [mode]', kind: 'dryRun', description: 'verify and plan, write nothing (mode: client, the default)' },
  { key: 'detailedExitcode', flags: '--detailed-exitcode', kind: 'boolean', description: 'with --dry-run: exit 10 when changes are pending, 0 when none' },
  { key: 'output', flags: '--output <format>', kind: 'output', description: 'report format on stdout: text | json (default text)' },
  { key: 'logFormat', flags: '--log-format <format>', kind: 'output', description: 'log format on stderr: text | json (default: text on a terminal, else json)' },
  { key: 'force', flags: '--force', kind: 'boolean', description: 'process the payload even when its digest was already applied' },
  { key: 'allowDowngrade', flags: '--allow-downgrade', kind: 'boolean', description: 'apply a payload whose signatures prove an older time than the last applied one (an intended rollback)' },
  { key: 'debug', flags: '--debug', kind: 'boolean', description: 'debug logs and stack traces on errors' },
  { key: 'profile', flags: '--profile <name>', kind: 'string', description: 'built-in configuration instead of --config: "gematik" (gematik\'s payload → truststores, roots.json, policy-signer.pub)' },
  { key: 'tslGraceDays', flags: '--tsl-grace-days <days>', kind: 'days', description: 'days a TSL may be used past its NextUpdate before the run fails (overrides process.tsl.graceDays)' },
  { key: 'tslSignerAnchor', flags: '--tsl-signer-anchor <file>', kind: 'string', description: 'PEM/DER certificate(s) the TSL\'s XML signature must chain to; without one the signature is not checked (and the report says so)' },
  { key: 'truststorePassFile', flags: '--truststore-pass-file <file>', kind: 'string', description: 'file holding the PKCS#12 truststore password (TRUSTSTORE_PASS wins; default no_secret_for_trust_only)' },
];

export function envName(spec: OptionSpec): string {
  return envNameOfFlag(spec.flags.split(' ')[0]!);
}

/** `--kube-out` → `ZETA_PROVISION_KUBE_OUT`: the env twin of any command's flag. */
export function envNameOfFlag(flag: string): string {
  return 'ZETA_PROVISION_' + flag.replace(/^--/, '').toUpperCase().replace(/-/g, '_');
}

/**
 * Unknown `ZETA_PROVISION_*` variables are refused, because a typo there silently ignored is exactly
 * the kind of surprise an unattended job must not have.
 */
export function refuseUnknownEnv(env: NodeJS.ProcessEnv, accepted: ReadonlySet<string>, command: string): void {
  const unknown = Object.keys(env).filter((k) => k.startsWith('ZETA_PROVISION_') && !accepted.has(k));
  if (unknown.length > 0) {
    throw new UsageError(`unknown environment variable ${unknown.sort().join(', ')}`, `see zeta-provision ${command} --help for the accepted names`);
  }
}

/** Parse one raw value (from a flag or an env variable) into its typed form, or say which is wrong. */
export function parseOptionValue(spec: OptionSpec, raw: unknown, origin: string): RunFlags[keyof RunFlags] {
  switch (spec.kind) {
    case 'string': {
      if (typeof raw !== 'string' || raw.trim() === '') throw new UsageError(`${origin}: a value is required`);
      return raw;
    }
    case 'list': {
      const items = String(raw).split(',').map((x) => x.trim()).filter((x) => x !== '');
      if (items.length === 0) throw new UsageError(`${origin}: a value is required`);
      return items;
    }
    case 'signatureMode': {
      if (raw === 'required' || raw === 'optional' || raw === 'off') return raw;
      throw new UsageError(`${origin}: expected "required", "optional" or "off", got "${String(raw)}"`);
    }
    case 'boolean':
      return parseBoolean(raw, origin);
    case 'seconds': {
      const v = String(raw).trim();
      if (!/^\d+(\.\d+)?$/.test(v) || Number(v) <= 0 || Number(v) > 3600) throw new UsageError(`${origin}: expected seconds between 0 and 3600, got "${String(raw)}"`);
      return Number(v);
    }
    case 'days': {
      const v = String(raw).trim();
      if (!/^\d{1,4}$/.test(v) || Number(v) > 3650) throw new UsageError(`${origin}: expected a whole number of days (0–3650), got "${String(raw)}"`);
      return Number(v);
    }
    case 'mebibytes': {
      const v = String(raw).trim();
      if (!/^\d{1,7}$/.test(v) || Number(v) < 1) throw new UsageError(`${origin}: expected a whole number of MiB (at least 1), got "${String(raw)}"`);
      return Number(v);
    }
    case 'output': {
      if (raw === 'text' || raw === 'json') return raw;
      throw new UsageError(`${origin}: expected "text" or "json", got "${String(raw)}"`);
    }
    case 'dryRun': {
      if (raw === true || raw === 'client') return 'client';
      if (raw === 'server') return 'server';
      if (raw === false) return false;
      if (typeof raw === 'string') {
        const b = parseBoolean(raw, origin, true);
        if (b !== undefined) return b ? 'client' : false;
      }
      throw new UsageError(`${origin}: expected "client" or "server", got "${String(raw)}"`);
    }
  }
}

export function parseBoolean(raw: unknown, origin: string, lenient = false): boolean {
  if (typeof raw === 'boolean') return raw;
  const v = String(raw).trim().toLowerCase();
  if (['1', 'true', 'yes', 'on'].includes(v)) return true;
  if (['0', 'false', 'no', 'off', ''].includes(v)) return false;
  if (lenient) return undefined as unknown as boolean;
  throw new UsageError(`${origin}: expected true or false, got "${String(raw)}"`);
}

/**
 * Read the env twins. `ZETA_PROVISION_*` wins over gematik's names; both lose to flags (merged by
 * the caller). Unknown `ZETA_PROVISION_*` variables are refused (refuseUnknownEnv).
 */
export function flagsFromEnv(env: NodeJS.ProcessEnv, known: readonly string[] = []): RunFlags {
  const out: Record<string, unknown> = {};
  const accepted = new Set<string>(known);
  for (const spec of RUN_OPTIONS) {
    const names = [envName(spec), ...(spec.gematikEnv ?? [])];
    names.forEach((n) => accepted.add(n));
    for (const name of names) {
      const raw = env[name];
      if (raw === undefined || raw === '') continue;
      out[spec.key] = parseOptionValue(spec, raw, `environment variable ${name}`);
      break;
    }
  }
  refuseUnknownEnv(env, accepted, 'run');
  return out as RunFlags;
}

/** Flags beat env; both only for keys that were actually set. */
export function mergeFlags(fromEnv: RunFlags, fromCli: RunFlags): RunFlags {
  const merged: Record<string, unknown> = { ...fromEnv };
  for (const [k, v] of Object.entries(fromCli)) if (v !== undefined) merged[k] = v;
  return merged as RunFlags;
}
