/**
 * `--kube-out DIR` as a Target: ConfigMap manifests in a directory, with the applied record in
 * `.zeta-provision.json`. Observing reads the (small) manifest files and hashes them; a file edited or
 * deleted by hand is drift and rewritten by the same run.
 */
import { createHash } from 'node:crypto';
import { readFile, readdir } from 'node:fs/promises';
import path from 'node:path';
import { parse } from 'yaml';
import type { Settings } from '../config/index.js';
import { PublishError, UsageError, errorMessage } from '../errors.js';
import type { ConfigMapObject, DesiredOutputs } from '../process/types.js';
import { manifestFileName, renderManifests, writeFileAtomic, writeManifests } from './kube-out.js';
import { ANNOTATION, MANAGED_BY_LABEL, MANAGER } from './manifest.js';
import { RECORD_VERSION, parseRecord, parseStored, type AppliedRecord } from './record.js';
import type { DriftItem, Observed, RollbackSource, Target, TargetApplied, TargetFactory, TargetPlan } from './target.js';
import { appliedFromV1 } from './upgrade.js';

const ID = 'kube-out';
export const KUBE_OUT_RECORD = '.zeta-provision.json';
/** Manifests are ConfigMaps (≤ 1 MiB of data): a bigger file in the directory is not one of ours. */
const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;

export interface KubeOutFile {
  /** sha256 of the file's bytes. */
  fileHash: string;
  /** The file's bytes, for contentHashOf (parsed only when a plan needs it, not on the up-to-date check). */
  bytes: Buffer;
}

/** Our content-hash annotation of a manifest file; undefined when the file is not one of ours. */
export function contentHashOf(f: KubeOutFile): string | undefined {
  if (f.bytes.length > MAX_MANIFEST_BYTES) return undefined;
  try {
    const doc = parse(f.bytes.toString('utf8')) as { metadata?: { labels?: Record<string, string>; annotations?: Record<string, string> } };
    return doc?.metadata?.labels?.[MANAGED_BY_LABEL] === MANAGER ? doc.metadata?.annotations?.[ANNOTATION.contentHash] : undefined;
  } catch {
    return undefined;
  }
}

export interface KubeOutLive {
  files: Map<string, KubeOutFile>;
  /** The stored record as it was read (compared before rewriting). */
  stored?: AppliedRecord;
}

/** What record.targets['kube-out'] holds: manifest name → sha256 of the file written. */
export interface KubeOutDetail {
  files: Record<string, string>;
}

interface KubeOutPlanDetail {
  write: ConfigMapObject[];
  keep: Record<string, string>;
}

const sha256 = (s: string | Buffer): string => 'sha256:' + createHash('sha256').update(s).digest('hex');

export async function readKubeOutFiles(dir: string): Promise<Map<string, KubeOutFile>> {
  const out = new Map<string, KubeOutFile>();
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return out;
    throw new PublishError(`cannot read --kube-out directory ${dir}: ${errorMessage(err)}`);
  }
  for (const file of names) {
    const m = /^configmap-(.+)\.yaml$/.exec(file);
    if (!m) continue;
    const buf = await readFile(path.join(dir, file)).catch(() => undefined);
    if (!buf) continue;
    out.set(m[1]!, { fileHash: sha256(buf), bytes: buf });
  }
  return out;
}

/** ConfigMaps present in DIR: name → content hash (undefined when the file is not one of ours). */
export async function readKubeOutState(dir: string): Promise<Map<string, string | undefined>> {
  return new Map([...(await readKubeOutFiles(dir))].map(([name, f]) => [name, contentHashOf(f)]));
}

export async function readKubeOutRecord(dir: string): Promise<(AppliedRecord & { fromVersion?: number }) | undefined> {
  const file = path.join(dir, KUBE_OUT_RECORD);
  const text = await readFile(file, 'utf8').catch(() => undefined);
  if (text === undefined) return undefined;
  const stored = parseStored(text, file);
  if (!stored) return undefined;
  const { doc, version } = stored;
  // Release 0.1.0 kept no per-file hashes: the record converts without them, which check() reports as drift once.
  if (version === 1) {
    const a = appliedFromV1(doc);
    return a ? { ...a, fromVersion: 1 } : undefined;
  }
  return version === RECORD_VERSION ? parseRecord((doc as { applied?: unknown }).applied) : undefined;
}

export class KubeOutTarget implements Target<KubeOutLive, KubeOutPlanDetail, { written: string[] }> {
  readonly id = ID;
  constructor(readonly dir: string) {}

  get where(): string {
    return this.dir;
  }

  async observe(): Promise<Observed<KubeOutLive>> {
    const read = await readKubeOutRecord(this.dir);
    const { fromVersion, ...record } = read ?? {};
    const applied = read ? (record as AppliedRecord) : undefined;
    return { record: applied, stale: fromVersion !== undefined, live: { files: await readKubeOutFiles(this.dir), stored: fromVersion ? undefined : applied } };
  }

  check(record: AppliedRecord, live: KubeOutLive): DriftItem[] {
    const detail = record.targets[ID] as Partial<KubeOutDetail> | undefined;
    if (!detail?.files) return [{ target: ID, object: this.dir, what: 'record without file hashes (written by release 0.1.0)' }];
    const drift: DriftItem[] = [];
    for (const [name, hash] of Object.entries(detail.files)) {
      const f = live.files.get(name);
      if (!f) drift.push({ target: ID, object: manifestFileName(name), what: 'deleted' });
      else if (f.fileHash !== hash) drift.push({ target: ID, object: manifestFileName(name), what: 'changed' });
    }
    return drift;
  }

  plan(desired: DesiredOutputs, observed: Observed<KubeOutLive>): TargetPlan<KubeOutPlanDetail> {
    const recorded = (observed.record?.targets[ID] as Partial<KubeOutDetail> | undefined)?.files ?? {};
    const drift = observed.record ? this.check(observed.record, observed.live) : [];
    const detail: KubeOutPlanDetail = { write: [], keep: {} };
    const actions: string[] = [];
    for (const cm of desired.configMaps) {
      const f = observed.live.files.get(cm.name);
      const edited = f !== undefined && recorded[cm.name] !== undefined && recorded[cm.name] !== f.fileHash;
      if (f && !edited && contentHashOf(f) === cm.contentHash) {
        detail.keep[cm.name] = f.fileHash;
        continue;
      }
      detail.write.push(cm);
      actions.push(`${f ? 'update' : 'create'} ${manifestFileName(cm.name)}`);
    }
    const objects = desired.configMaps.map((cm) => ({
      name: cm.name,
      action: cm.name in detail.keep ? ('unchanged' as const) : observed.live.files.has(cm.name) ? ('update' as const) : ('create' as const),
    }));
    return { target: ID, changes: detail.write.length > 0, drift, actions, detail, objects };
  }

  async apply(plan: TargetPlan<KubeOutPlanDetail>, record: AppliedRecord, opts: { dryRun: boolean }): Promise<TargetApplied<{ written: string[] }>> {
    const files = { ...plan.detail.keep };
    const manifests = renderManifests(plan.detail.write, record);
    for (const m of manifests) files[m.name] = sha256(m.text);
    if (opts.dryRun) return { wrote: false, details: { files }, report: { written: [] } };
    const written = await writeManifests(this.dir, manifests);
    return { wrote: written.length > 0, details: { files } satisfies KubeOutDetail, report: { written } };
  }

  async record(record: AppliedRecord | undefined, _run: unknown, observed: Observed<KubeOutLive> | undefined): Promise<boolean> {
    // A failed run leaves the directory's record as it was: it still describes the files there.
    if (!record) return false;
    const strip = (a: AppliedRecord | undefined): string => JSON.stringify(a ? { ...a, appliedAt: undefined, targets: { [ID]: a.targets[ID] } } : null);
    if (observed?.live.stored && strip(observed.live.stored) === strip(record)) return false;
    const mine = { ...record, targets: { [ID]: record.targets[ID] } };
    await writeFileAtomic(path.join(this.dir, KUBE_OUT_RECORD), JSON.stringify({ version: RECORD_VERSION, applied: mine }, null, 2) + '\n');
    return true;
  }

  async tidy(): Promise<string[]> {
    return [];
  }

  rollbackProblem(to: RollbackSource): string | undefined {
    const want = new Set(to.configMaps.map((c) => c.name));
    const missing = Object.keys((to.record.targets[ID] as Partial<KubeOutDetail> | undefined)?.files ?? {}).filter((n) => !want.has(n));
    return missing.length ? `--kube-out: the manifests of ${missing.join(', ')} were not kept for that payload` : undefined;
  }

  async rollback(to: RollbackSource): Promise<TargetApplied<{ written: string[] }>> {
    const manifests = renderManifests(to.configMaps, to.record);
    const written = await writeManifests(this.dir, manifests);
    const files = Object.fromEntries(manifests.map((m) => [m.name, sha256(m.text)]));
    return { wrote: true, details: { files }, report: { written } };
  }

  close(): void {}
}

export const kubeOutTargetFactory: TargetFactory = {
  id: ID,
  async open(settings: Settings): Promise<Target | undefined> {
    if (!settings.kubeOut) return undefined;
    const secret = settings.config.configMaps.find((cm) => cm.secret);
    if (secret) {
      throw new UsageError(
        `ConfigMap target ${secret.name} holds sensitive files; --kube-out writes plain manifests and never writes a secret to disk`,
        'publish it through the API (drop --kube-out) or unmark the files',
      );
    }
    return new KubeOutTarget(settings.kubeOut) as Target;
  },
};
