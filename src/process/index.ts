/**
 * Process stage: from the verified staging tree to the outputs the config asks for: payload files as
 * they are (volume.files, ConfigMap paths) and files derived by the processors under `process:`
 * (truststores, the policy signer key, validated roots.json), referenced by output id.
 */
import { contentHash } from './content-hash.js';
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import picomatch from 'picomatch';
import type { Config } from '../config/index.js';
import { ConfigError, InternalError, PublishError, VerifyError } from '../errors.js';
import { sha256File, walkTree } from '../util/fs.js';
import type { Derived } from './derive.js';
import type { ConfigMapObject, DesiredOutputs, ProcessOptions, VolumeFile } from './types.js';

export type { ConfigMapObject, DesiredOutputs, ProcessOptions, ProcessorSummary, VolumeFile } from './types.js';

/**
 * The API server refuses a ConfigMap whose data + binaryData exceed this, counting the decoded bytes
 * of binaryData (not its base64 text), and a Secret whose decoded data exceeds it. The kube publisher
 * (src/publish/kube/objects.ts) applies the same rule; refusing here first stops the run before any
 * write instead of leaving a half-published set.
 */
export const CONFIGMAP_MAX_BYTES = 1024 * 1024;

export async function deriveOutputs(stagingRoot: string, config: Config, namespace: string | undefined, options?: ProcessOptions): Promise<DesiredOutputs> {
  const tree = await walkTree(stagingRoot);
  const warnings: string[] = [];
  let derived: Derived | undefined;
  if (config.process) {
    if (!options) throw new InternalError('processors are configured but no directory for derived files was given');
    // Loaded only here: the processors bring pkijs, the XML parser and the cabinet reader, which a run
    // without `process:` (and the hourly up-to-date check, which ends before this stage) never needs.
    const { runProcessors } = await import('./derive.js');
    derived = await runProcessors(stagingRoot, tree, config.process, options);
    warnings.push(...derived.warnings);
  }
  const volumeFiles: VolumeFile[] = [];
  if (config.volume.files.length > 0) {
    const isVolumeFile = picomatch(config.volume.files, { dot: true });
    for (const entry of tree) {
      if (!isVolumeFile(entry.path)) continue;
      if (entry.type === 'symlink' || entry.type === 'other') {
        // Links are never followed into the volume: their target could be anything on the node.
        warnings.push(`${entry.path}: not a regular file (${entry.type}); not published`);
        continue;
      }
      if (entry.type !== 'file') continue;
      const source = path.join(stagingRoot, entry.path);
      volumeFiles.push({ path: entry.path, source, size: entry.size, sha256: await sha256File(source) });
    }
    if (volumeFiles.length === 0) warnings.push(`volume: no payload file matches ${config.volume.files.join(', ')}`);
  }
  for (const id of config.volume.outputs) {
    const out = derived?.files.get(id);
    if (!out) throw new InternalError(`output ${id} was configured for the volume but not produced`);
    // A derived file and a payload file under one name would make the volume's content depend on order.
    if (volumeFiles.some((f) => f.path === out.name)) {
      throw new ConfigError(
        `volume: ${out.name} is both a payload file (volume.files) and the derived output ${id}`,
        'rename the output (process.names) or narrow volume.files',
      );
    }
    volumeFiles.push({ path: out.name, source: out.file, size: out.bytes.length, sha256: createHash('sha256').update(out.bytes).digest('hex') });
  }
  const regular = new Set(tree.filter((e) => e.type === 'file').map((e) => e.path));
  const configMaps: ConfigMapObject[] = [];
  for (const target of config.configMaps) {
    const contents: { key: string; path: string; bytes: Buffer }[] = [];
    for (const f of target.files) {
      if ('output' in f) {
        const out = derived?.files.get(f.output);
        if (!out) throw new InternalError(`output ${f.output} was configured for ConfigMap ${target.name} but not produced`);
        contents.push({ key: f.key || out.name, path: `${out.name} (derived)`, bytes: out.bytes });
        continue;
      }
      if (!regular.has(f.path)) {
        throw new VerifyError(`payload has no regular file ${f.path} (configured for ConfigMap ${target.name})`, f.path);
      }
      contents.push({ key: f.key, path: f.path, bytes: await readFile(path.join(stagingRoot, f.path)) });
    }
    const keys = contents.map((c) => c.key);
    const clash = keys.find((k, i) => keys.indexOf(k) !== i);
    if (clash)
      throw new ConfigError(`ConfigMap ${target.name}: key "${clash}" is used twice (a derived output and another file)`, 'give one of them an explicit key');
    configMaps.push(buildConfigMap(target.name, namespace, contents, target.secret ? 'Secret' : 'ConfigMap'));
  }
  // Loaded only when configured, like the processors: most runs have no initdata.
  const initdata = config.initdata ? await (await import('./initdata/index.js')).deriveInitdata(stagingRoot, tree, config.initdata) : undefined;
  return { volumeFiles, configMaps, warnings, processed: derived?.summaries ?? [], ...(initdata ? { initdata } : {}) };
}

export function buildConfigMap(
  name: string,
  namespace: string | undefined,
  contents: { key: string; path: string; bytes: Buffer }[],
  kind: ConfigMapObject['kind'] = 'ConfigMap',
): ConfigMapObject {
  const data: Record<string, string> = {};
  const binaryData: Record<string, string> = {};
  let bytes = 0;
  // Key order, so data and binaryData (and the manifests rendered from them) do not depend on input order.
  for (const c of [...contents].sort((a, b) => (a.key < b.key ? -1 : 1))) {
    const text = decodeUtf8(c.bytes);
    if (text === undefined) binaryData[c.key] = c.bytes.toString('base64');
    else data[c.key] = text;
    // Decoded bytes, as the API counts them: a ~800 KiB binary file fits although its base64 does not.
    bytes += c.bytes.length;
  }
  if (bytes > CONFIGMAP_MAX_BYTES) {
    const sizes = contents.map((c) => `${c.path} ${c.bytes.length} B`).join(', ');
    throw new PublishError(
      `${kind} ${name} would hold ${bytes} bytes, over the API limit of ${CONFIGMAP_MAX_BYTES} (${sizes})`,
      'publish large files through the volume (volume.files) instead',
    );
  }
  return { kind, name, namespace, data, binaryData, contentHash: contentHash(contents), files: contents.map((c) => c.path), bytes };
}

/** Valid UTF-8 without NUL goes to `data`; anything else to `binaryData`, as kubectl does. */
function decodeUtf8(buf: Buffer): string | undefined {
  if (buf.includes(0)) return undefined;
  try {
    return new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(buf);
  } catch {
    return undefined;
  }
}
