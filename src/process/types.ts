/** What the run wants to exist after publishing, derived from the verified staging tree. */
import type { OutputId } from '../config/process.js';
import type { InitdataOutput } from './initdata/index.js';

export interface VolumeFile {
  /** Payload-relative POSIX path (or a derived output's file name); also its path inside a volume generation. */
  path: string;
  /** Absolute path of the bytes to publish (in the staging tree). */
  source: string;
  size: number;
  sha256: string;
}

export interface ConfigMapObject {
  /** A target with a `sensitive: true` file is published as a Secret; reports label it so. */
  kind: 'ConfigMap' | 'Secret';
  name: string;
  namespace?: string;
  /** UTF-8 files. */
  data: Record<string, string>;
  /** Other files, base64. */
  binaryData: Record<string, string>;
  /** `sha256:` over the sorted keys and their bytes; decides whether a write is needed. */
  contentHash: string;
  /** Payload files it was built from, for the report. */
  files: string[];
  /** Decoded bytes of all values: what the API server counts against its 1 MiB limit. */
  bytes: number;
}

/** One processor's run, for the report. */
export interface ProcessorSummary {
  processor: 'tsl' | 'tpm' | 'policySigner' | 'roots';
  /** Payload path read. */
  input: string;
  /** File names written. */
  outputs: string[];
  detail: string;
  /** TSL only: whether the XML signature was verified against a configured anchor. */
  signatureChecked?: boolean;
  /** TSL only: its NextUpdate (ISO 8601), for freshness in the report and status. */
  nextUpdate?: string;
  /** Policy signer only: the signer certificate's notAfter (ISO 8601), for the earliest expiry. */
  notAfter?: string;
}

export interface DesiredOutputs {
  volumeFiles: VolumeFile[];
  configMaps: ConfigMapObject[];
  warnings: string[];
  /** What the processors derived (empty when none are configured). */
  processed?: ProcessorSummary[];
  /** Confidential Containers initdata (config `initdata:`), for the CoCo target. */
  initdata?: InitdataOutput;
}

export interface DerivedFile {
  id: OutputId;
  /** Published file name (volume path, default ConfigMap key). */
  name: string;
  /** Where it was written (outside the payload tree). */
  file: string;
  bytes: Buffer;
}

export interface ProcessOptions {
  /** Directory the derived files are written to; must not be inside the payload tree. */
  derivedDir: string;
  now?: Date;
  /** TRUSTSTORE_PASS (secret). */
  truststorePassword?: string;
  /** Overrides process.truststorePasswordFile. */
  truststorePasswordFile?: string;
  /** `*_RESULT_FILENAME` variables by name. */
  resultFilenames?: Record<string, string>;
  /** TSL_FILENAME, TPM_CAB_FILENAME (payload paths), POLICY_SIGNER_CERT_FILENAME (a file in signers/). */
  inputFilenames?: Record<string, string>;
  /** Overrides process.tsl.graceDays. */
  tslGraceDays?: number;
  /** Added to process.tsl.signerAnchors (certificate files). */
  tslSignerAnchors?: string[];
  /** Replaces process.tsl.trust (trust-set names). */
  tslTrust?: string[];
  /** Overrides process.tsl.signature. */
  tslSignature?: 'required' | 'off';
  /** Files of a trust set by name (built in or under `trust:`), from the config stage. */
  trustSetFiles?: (name: string) => string[] | undefined;
  /**
   * Payload files whose Authenticode signature the verify stage checked. The TPM processor reads only
   * such a cabinet: trust derived from an unsigned cabinet would be trust in whoever built the payload.
   */
  authenticodeVerified?: Set<string>;
  /** Called with every secret before it is used, so logs can redact it. */
  onSecret?: (secret: string) => void;
}
