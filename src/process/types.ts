/** What the run wants to exist after publishing, derived from the verified staging tree. */

export interface VolumeFile {
  /** Payload-relative POSIX path; also its path inside a volume generation. */
  path: string;
  /** Absolute path of the bytes to publish (in the staging tree). */
  source: string;
  size: number;
  sha256: string;
}

export interface ConfigMapObject {
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
  bytes: number;
}

export interface DesiredOutputs {
  volumeFiles: VolumeFile[];
  configMaps: ConfigMapObject[];
  warnings: string[];
}
