/** The validated configuration every later stage reads. Paths in it are absolute. */
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
}

export interface ConfigMapTarget {
  name: string;
  /** Payload-relative file, or a derived output (see `process:`), → ConfigMap key. */
  files: ({ path: string; key: string } | { output: OutputId; key: string })[];
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
  /** `files`: payload globs; `outputs`: derived files (see `process:`) by output id. */
  volume: { dir?: string; files: string[]; outputs: OutputId[] };
  configMaps: ConfigMapTarget[];
  image: ImagePolicy;
  /** Processors deriving truststores, keys and validated files from the payload. */
  process?: ProcessConfig;
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
