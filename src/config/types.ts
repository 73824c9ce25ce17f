/** The validated configuration every later stage reads. Paths in it are absolute. */
import type { InitdataConfig } from './initdata.js';
import type { OutputId, ProcessConfig } from './process.js';

export type VerifyKind = 'cms' | 'authenticode';
export type SignatureForm = 'detached' | 'attached';

export interface VerifyRule {
  /** Payload-relative globs (picomatch, `dot: true`). */
  files: string[];
  kind: VerifyKind;
  /** For `cms`: `detached` = `FILE.p7s` beside FILE; `attached` = FILE is the SignedData envelope. */
  signature: SignatureForm;
  /** Names of trust sets (from `trust:` or built in). */
  trust: string[];
  /** A rule whose globs match no file fails verification unless this is false. */
  required: boolean;
  /**
   * extendedKeyUsage purposes every signer certificate must allow (a certificate without the
   * extension allows all, RFC 5280 §4.2.1.12). Authenticode rules always include codeSigning.
   */
  eku: { oid: string; name: string }[];
}

/** The payload's `.manifest` sha256 list. */
export interface ManifestPolicy {
  /** required: a missing `.manifest` fails; optional: checked when present; off: ignored. */
  check: 'required' | 'optional' | 'off';
  /** What a payload file the manifest does not list is. */
  unlisted: 'error' | 'warn';
}

export interface ConfigMapTarget {
  name: string;
  /** Payload-relative file, or a derived output (see `process:`), → ConfigMap key. */
  files: ({ path: string; key: string } | { output: OutputId; key: string })[];
  /** A file marked `sensitive: true` makes the target a Secret (never a ConfigMap). */
  secret: boolean;
  /** Workloads (`deployment/opa`) rolled out when this target's content changes. */
  consumers: string[];
}

export interface ImagePolicy {
  signature?: 'required' | 'optional' | 'off';
  /** Pinned chain file (absolute). */
  trustChain?: string;
  /** Required SAN e-mail; "any" disables the identity check. */
  identity?: string;
}

export interface Config {
  /** Where the file came from, for messages (`built-in default` or a path). */
  origin: string;
  /** Directory relative paths in the file resolve against. */
  baseDir: string;
  source?: string;
  namespace?: string;
  /** Value of the app.kubernetes.io/instance label; names the status ConfigMap `<instance>-status`. */
  instance?: string;
  /** Trust set name → certificate files or directories. */
  trust: Record<string, string[]>;
  verify: VerifyRule[];
  volume: {
    dir?: string;
    /** Payload globs. */
    files: string[];
    /** Derived files (see `process:`) by output id. */
    outputs: OutputId[];
    /** Permission bits of published files and directories (defaults 0644/0755). */
    fileMode?: number;
    dirMode?: number;
    /** Numeric group for published files and directories (an fsGroup); default: inherited. */
    group?: number;
    /** Generations kept, current included (default 2). */
    keep?: number;
    /** Seconds after which an unrefreshed lock of another host counts as stale (default 600). */
    lockStale?: number;
    /** Seconds a run waits for another run's lock before giving up (default 30). */
    lockTimeout?: number;
  };
  configMaps: ConfigMapTarget[];
  image: ImagePolicy;
  manifest: ManifestPolicy;
  /** Warn when a verified chain (leaf … anchor) expires within this many days. */
  expiryWarningDays: number;
  /** Processors deriving truststores, keys and validated files from the payload. */
  process?: ProcessConfig;
  /** Confidential Containers initdata and its Trustee reference value (src/config/initdata.ts). */
  initdata?: InitdataConfig;
}

/** Settings that come only from the environment of gematik's processor; carried for later stages. */
export interface GematikSettings {
  registryUsername?: string;
  /** Secret: never log, never report. */
  registryToken?: string;
  /** Secret: never log, never report. */
  truststorePassword?: string;
  /** `*_RESULT_FILENAME` variables, by variable name. */
  resultFilenames: Record<string, string>;
  /** TSL_FILENAME, TPM_CAB_FILENAME, POLICY_SIGNER_CERT_FILENAME when set: the processors' input files. */
  inputFilenames: Record<string, string>;
}
