/** The validated configuration every later stage reads. Paths in it are absolute. */

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
}

export interface ConfigMapTarget {
  name: string;
  /** Payload-relative file → ConfigMap key. */
  files: { path: string; key: string }[];
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
  /** Trust set name → certificate files or directories. */
  trust: Record<string, string[]>;
  verify: VerifyRule[];
  volume: {
    dir?: string;
    files: string[];
    /** Permission bits of published files and directories (defaults 0644/0755). */
    fileMode?: number;
    dirMode?: number;
    /** Numeric group for published files and directories (an fsGroup); default: inherited. */
    group?: number;
    /** Generations kept, current included (default 2). */
    keep?: number;
    /** Seconds after which an unrefreshed lock of another host counts as stale (default 600). */
    lockStale?: number;
  };
  configMaps: ConfigMapTarget[];
  image: ImagePolicy;
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
}
