/**
 * The options of `zeta-provision run` and `verify` in one table: commander flags, the env twin
 * `ZETA_PROVISION_<FLAG>`, and gematik's processor variable names where one exists. The help text,
 * the env reader and the precedence merge are all generated from this table, so they cannot drift.
 */
import { envNameOfFlag, parseBoolean, parseBooleanOrUndefined, refuseUnknownEnv } from '../config/env.js';
import type { RunFlags } from '../config/flags.js';
import { UsageError } from '../errors.js';

type Kind = 'string' | 'list' | 'boolean' | 'output' | 'logFormat' | 'dryRun' | 'signatureMode' | 'tslSignature' | 'seconds' | 'days' | 'mebibytes';

export interface OptionSpec {
  key: keyof RunFlags;
  flags: string;
  kind: Kind;
  description: string;
  /** gematik's provisioning-processor variable names accepted as lower-priority twins. */
  gematikEnv?: string[];
  /**
   * Options about the targets (where to write, how to reach the cluster) and about writing: `run` has
   * them, `verify` does not. Everything else — source, trust, processors — is the same for both, so
   * verify judges a payload exactly as a run would.
   */
  runOnly?: true;
}

/** Every source form the source stage accepts (src/source/reference.ts), in one line for the help. */
export const SOURCE_FORMS = 'REGISTRY/REPO[:TAG|@sha256:DIGEST] | oci-layout:PATH[:TAG|@sha256:DIGEST] | oci-archive:PATH | docker-archive:PATH | dir:PATH';

export const RUN_OPTIONS: OptionSpec[] = [
  { key: 'config', flags: '--config <file>', kind: 'string', description: 'YAML configuration file (default: the built-in classic layout)' },
  {
    key: 'profile',
    flags: '--profile <name>',
    kind: 'string',
    description: 'built-in configuration instead of --config: "gematik" (gematik\'s payload → truststores, roots.json, policy-signer.pub)',
  },
  { key: 'source', flags: '--source <ref>', kind: 'string', description: `payload to provision: ${SOURCE_FORMS}`, gematikEnv: ['PROVISIONING_CONTAINER_NAME'] },
  {
    key: 'volume',
    flags: '--volume <dir>',
    kind: 'string',
    description: 'volume directory that receives large files (atomic ..data swap); verify only reads its record (downgrade check)',
    gematikEnv: ['RESULT_DIR'],
  },
  {
    key: 'kubeOut',
    flags: '--kube-out <dir>',
    kind: 'string',
    description: 'write ConfigMap manifests as YAML files into DIR instead of calling the API',
    runOnly: true,
  },
  {
    key: 'namespace',
    flags: '-n, --namespace <ns>',
    kind: 'string',
    description: 'namespace of the ConfigMaps/Secrets (default: from the config, else the kubeconfig context or ServiceAccount namespace)',
    runOnly: true,
  },
  {
    key: 'kubeconfig',
    flags: '--kubeconfig <file>',
    kind: 'string',
    description: 'kubeconfig for the API target (default: KUBECONFIG, ~/.kube/config, else the in-cluster ServiceAccount)',
    runOnly: true,
  },
  { key: 'context', flags: '--context <name>', kind: 'string', description: 'kubeconfig context to use (default: its current-context)', runOnly: true },
  {
    key: 'prune',
    flags: '--prune',
    kind: 'boolean',
    description: 'delete ConfigMaps/Secrets this instance made that the config no longer produces',
    runOnly: true,
  },
  {
    key: 'forceConflicts',
    flags: '--force-conflicts',
    kind: 'boolean',
    description: 'server-side apply with force: take over fields another field manager owns',
    runOnly: true,
  },
  {
    key: 'kubeDeadline',
    flags: '--kube-deadline <seconds>',
    kind: 'seconds',
    description: 'give up retrying API requests after this many seconds per phase (default 60)',
    runOnly: true,
  },
  {
    key: 'insecureRegistry',
    flags: '--insecure-registry <hosts>',
    kind: 'list',
    description: 'comma-separated registry hosts (host[:port]) that may be reached over plain HTTP',
  },
  {
    key: 'registryCa',
    flags: '--registry-ca <file>',
    kind: 'string',
    description: 'PEM CA(s) trusted for registry TLS, in addition to the system roots',
    gematikEnv: ['PROVISIONING_CONTAINER_REGISTRY_CA_FILE'],
  },
  {
    key: 'registryAuthFile',
    flags: '--registry-auth-file <path>',
    kind: 'string',
    description: 'docker config.json, or a mounted image pull Secret directory (.dockerconfigjson/.dockercfg)',
    gematikEnv: ['REGISTRY_AUTH_FILE'],
  },
  {
    key: 'maxPayloadMib',
    flags: '--max-payload-mib <MiB>',
    kind: 'mebibytes',
    description: 'cap on the unpacked payload size (default 64; the staging /tmp must hold it: raise the emptyDir sizeLimit with it)',
  },
  {
    key: 'platform',
    flags: '--platform <os/arch[/variant]>',
    kind: 'string',
    description: 'image to take from a multi-platform index (default linux/amd64, or the only image)',
  },
  {
    key: 'imageTrustChain',
    flags: '--image-trust-chain <file>',
    kind: 'string',
    description: 'pinned certificate chain the image signature (cosign) must chain to',
    gematikEnv: ['TRUST_CERTCHAIN_FILE'],
  },
  {
    key: 'imageIdentity',
    flags: '--image-identity <email>',
    kind: 'string',
    description: 'required signer e-mail (SAN) of the image signature; "any" accepts every leaf of the chain (default software-development@gematik.de)',
  },
  {
    key: 'imageSignature',
    flags: '--image-signature <mode>',
    kind: 'signatureMode',
    description: 'required | optional | off (default: required when a trust chain is set, else off with a warning)',
  },
  {
    key: 'tslSignature',
    flags: '--tsl-signature <mode>',
    kind: 'tslSignature',
    description:
      "required | off: check the TSL's XML signature up to a trusted GEM root (default required when anchors are configured, as in the gematik profile); off is warned about on every run",
  },
  {
    key: 'tslTrust',
    flags: '--tsl-trust <sets>',
    kind: 'list',
    description:
      'comma-separated trust sets the TSL signer must chain to, replacing process.tsl.trust: built-in gematik-rca (production), gematik-rca-test (RU/TU), or sets defined under trust:',
  },
  {
    key: 'tslSignerAnchor',
    flags: '--tsl-signer-anchor <files>',
    kind: 'list',
    description:
      'comma-separated PEM/DER certificate files the TSL signature may chain to, in addition to the configured ones (the gematik profile ships the GEM.RCA roots)',
  },
  {
    key: 'tslGraceDays',
    flags: '--tsl-grace-days <days>',
    kind: 'days',
    description: 'days a TSL may be used past its NextUpdate before the run fails (overrides process.tsl.graceDays)',
  },
  {
    key: 'truststorePassFile',
    flags: '--truststore-pass-file <file>',
    kind: 'string',
    description: 'file holding the PKCS#12 truststore password (TRUSTSTORE_PASS wins; default no_secret_for_trust_only)',
  },
  {
    key: 'allowDowngrade',
    flags: '--allow-downgrade',
    kind: 'boolean',
    description: 'accept a payload whose signatures prove an older time than the last applied one (an intended rollback)',
  },
  {
    key: 'dryRun',
    flags: '--dry-run [mode]',
    kind: 'dryRun',
    description: 'verify and plan, write nothing (mode: client, the default, or server)',
    runOnly: true,
  },
  {
    key: 'detailedExitcode',
    flags: '--detailed-exitcode',
    kind: 'boolean',
    description: 'with --dry-run: exit 10 when changes are pending, 0 when none',
    runOnly: true,
  },
  { key: 'force', flags: '--force', kind: 'boolean', description: 'process the payload even when its digest was already applied', runOnly: true },
  { key: 'output', flags: '-o, --output <format>', kind: 'output', description: 'report format on stdout: text | json | yaml (default text)' },
  {
    key: 'logFormat',
    flags: '--log-format <format>',
    kind: 'logFormat',
    description: 'log format on stderr: text | json (default: text on a terminal, else json)',
  },
  { key: 'debug', flags: '--debug', kind: 'boolean', description: 'debug logs and stack traces on errors' },
];

/** verify: the same table minus the targets and the write-only switches. */
export const VERIFY_OPTIONS: OptionSpec[] = RUN_OPTIONS.filter((s) => !s.runOnly);

/** The long flag of a spec (`-o, --output <format>` → `--output`). */
export function longFlag(spec: Pick<OptionSpec, 'flags'>): string {
  return spec.flags.split(/[ ,]+/).find((f) => f.startsWith('--'))!;
}

export function envName(spec: OptionSpec): string {
  return envNameOfFlag(longFlag(spec));
}

/** `[env: ZETA_PROVISION_X, GEMATIK_NAME]`: the one format every help uses for env twins. */
export function envHelp(names: readonly string[]): string {
  return `[env: ${names.join(', ')}]`;
}

export function envNames(spec: OptionSpec): string[] {
  return [envName(spec), ...(spec.gematikEnv ?? [])];
}

/** Parse one raw value (from a flag or an env variable) into its typed form, or say which is wrong. */
export function parseOptionValue(spec: OptionSpec, raw: unknown, origin: string): RunFlags[keyof RunFlags] {
  switch (spec.kind) {
    case 'string': {
      if (typeof raw !== 'string' || raw.trim() === '') throw new UsageError(`${origin}: a value is required`);
      return raw;
    }
    case 'list': {
      const items = String(raw)
        .split(',')
        .map((x) => x.trim())
        .filter((x) => x !== '');
      if (items.length === 0) throw new UsageError(`${origin}: a value is required`);
      return items;
    }
    case 'signatureMode': {
      if (raw === 'required' || raw === 'optional' || raw === 'off') return raw;
      throw new UsageError(`${origin}: expected "required", "optional" or "off", got "${String(raw)}"`);
    }
    case 'tslSignature': {
      if (raw === 'required' || raw === 'off') return raw;
      throw new UsageError(`${origin}: expected "required" or "off", got "${String(raw)}"`);
    }
    case 'boolean':
      return parseBoolean(raw, origin);
    case 'seconds': {
      const v = String(raw).trim();
      if (!/^\d+(\.\d+)?$/.test(v) || Number(v) <= 0 || Number(v) > 3600)
        throw new UsageError(`${origin}: expected seconds between 0 and 3600, got "${String(raw)}"`);
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
      if (raw === 'text' || raw === 'json' || raw === 'yaml') return raw;
      throw new UsageError(`${origin}: expected "text", "json" or "yaml", got "${String(raw)}"`);
    }
    case 'logFormat': {
      if (raw === 'text' || raw === 'json') return raw;
      throw new UsageError(`${origin}: expected "text" or "json", got "${String(raw)}"`);
    }
    case 'dryRun': {
      if (raw === true || raw === 'client') return 'client';
      if (raw === 'server') return 'server';
      if (raw === false) return false;
      const b = typeof raw === 'string' ? parseBooleanOrUndefined(raw) : undefined;
      if (b !== undefined) return b ? 'client' : false;
      throw new UsageError(`${origin}: expected "client", "server" or a boolean (true/false, yes/no, 1/0), got "${String(raw)}"`);
    }
  }
}

/**
 * Read the env twins of `specs`. `ZETA_PROVISION_*` wins over gematik's names; both lose to flags
 * (merged by the caller). Unknown `ZETA_PROVISION_*` variables are refused (refuseUnknownEnv); the
 * twins of options the command does not have are accepted and ignored — a CI job's environment is
 * shared by several commands.
 */
export function flagsFromEnv(env: NodeJS.ProcessEnv, known: readonly string[] = [], specs: readonly OptionSpec[] = RUN_OPTIONS, command = 'run'): RunFlags {
  const out: Record<string, unknown> = {};
  const accepted = new Set<string>([...known, ...RUN_OPTIONS.flatMap(envNames)]);
  for (const spec of specs) {
    for (const name of envNames(spec)) {
      const raw = env[name];
      if (raw === undefined || raw === '') continue;
      out[spec.key] = parseOptionValue(spec, raw, `environment variable ${name}`);
      break;
    }
  }
  refuseUnknownEnv(env, accepted, command);
  return out as RunFlags;
}

/** Flags beat env; both only for keys that were actually set. */
export function mergeFlags(fromEnv: RunFlags, fromCli: RunFlags): RunFlags {
  const merged: Record<string, unknown> = { ...fromEnv };
  for (const [k, v] of Object.entries(fromCli)) if (v !== undefined) merged[k] = v;
  return merged as RunFlags;
}
