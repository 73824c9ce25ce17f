/**
 * The initdata processor: parts from the verified payload → canonical TOML → gzip + base64, with the
 * reference value of every configured platform. Pure apart from reading the staging tree.
 */
import { createHash } from 'node:crypto';
import type { InitdataConfig, InitdataPlatform } from '../../config/initdata.js';
import type { TreeEntry } from '../../util/fs.js';
import { platformValues } from './digest.js';
import { resolveParts } from './parts.js';
import { encodeInitdata, renderInitdata } from './render.js';

export { decodeInitdata, encodeInitdata, parseInitdata, renderInitdata } from './render.js';
export { platformValue, platformValues } from './digest.js';

export interface InitdataOutput {
  algorithm: InitdataConfig['algorithm'];
  /** The document the guest measures. */
  toml: Buffer;
  /** `sha256:` of the TOML bytes: names this initdata in records, reports and annotations. */
  id: string;
  /** gzip + base64: the INITDATA value and the annotation value. */
  encoded: string;
  /** Platform → reference value (hex). */
  values: Partial<Record<InitdataPlatform, string>>;
  /** Data key → payload files it came from. */
  parts: { key: string; sources: string[] }[];
}

export async function deriveInitdata(stagingRoot: string, tree: TreeEntry[], config: InitdataConfig): Promise<InitdataOutput> {
  const parts = await resolveParts(stagingRoot, tree, config.parts);
  return buildInitdata(
    config,
    Object.fromEntries(parts.map((p) => [p.key, p.text])),
    parts.map((p) => ({ key: p.key, sources: p.sources })),
  );
}

export function buildInitdata(
  config: Pick<InitdataConfig, 'algorithm' | 'platforms'>,
  data: Record<string, string>,
  parts: InitdataOutput['parts'] = [],
): InitdataOutput {
  const toml = renderInitdata(config.algorithm, data);
  return {
    algorithm: config.algorithm,
    toml,
    id: tomlId(toml),
    encoded: encodeInitdata(toml),
    values: platformValues(config.platforms, config.algorithm, toml),
    parts,
  };
}

export function tomlId(toml: Buffer): string {
  return 'sha256:' + createHash('sha256').update(toml).digest('hex');
}
