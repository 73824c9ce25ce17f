/**
 * Records of release 0.1.0 (format 1) in today's shapes. Release 0.1.0 kept five shapes (status,
 * generation, manifest provenance, volume meta, kube status); each is mapped to the one applied record
 * here, so a new release converges from a volume and a cluster the old one wrote without a manual step.
 * The converted record is written back in format 2 by the next run that writes anything.
 *
 * Pure functions over parsed JSON; fields are checked by type because the files are input like any other.
 */
import { RECORD_VERSION, type AppliedRecord, type Freshness } from './record.js';

type V1 = Record<string, unknown>;

const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);

function freshnessOf(r: V1): Freshness {
  const f: Freshness = {};
  const e = str(r.earliestCertificateExpiry);
  const t = str(r.tslNextUpdate);
  if (e) f.earliestCertificateExpiry = e;
  if (t) f.tslNextUpdate = t;
  return f;
}

/** The payload part every format-1 shape shares; undefined when the shape is not one we wrote. */
export function appliedFromV1(r: unknown, targets: Record<string, unknown> = {}): AppliedRecord | undefined {
  if (r === null || typeof r !== 'object') return undefined;
  const o = r as V1;
  const source = str(o.source);
  const digest = str(o.digest);
  const configHash = str(o.configHash);
  const appliedAt = str(o.appliedAt);
  if (source === undefined || !digest || !configHash || !appliedAt) return undefined;
  const time = str(o.provenTime);
  return {
    version: RECORD_VERSION,
    source,
    digest,
    ...(str(o.revision) ? { revision: str(o.revision) } : {}),
    configHash,
    appliedAt,
    ...(time ? { proven: { time, basis: str(o.provenBasis) ?? 'recorded by release 0.1.0' } } : {}),
    freshness: freshnessOf(o),
    targets,
  };
}

/** Volume `..zeta-provision.json` format 1 → the kept generations as applied records. */
export function volumeFromV1(doc: V1): {
  generation?: string;
  kept: string[];
  generations: Record<string, AppliedRecord>;
  rollback?: { from: string; to: string; at: string };
} {
  const generation = str(doc.generation);
  const kept = Array.isArray(doc.kept) ? doc.kept.filter((g): g is string => typeof g === 'string') : generation ? [generation] : [];
  const generations: Record<string, AppliedRecord> = {};
  const old = doc.generations && typeof doc.generations === 'object' ? (doc.generations as Record<string, unknown>) : {};
  for (const g of kept) {
    const e = old[g] as V1 | undefined;
    // The current generation's own entry lacks provenTime in format 1; the top level has it.
    const source = g === generation ? { ...e, ...pick(doc, ['provenTime', 'provenBasis']) } : e;
    const files = num(e?.files) ?? (g === generation ? num(doc.files) : undefined) ?? 0;
    const bytes = num(e?.bytes) ?? (g === generation ? num(doc.bytes) : undefined) ?? 0;
    const a = appliedFromV1(source, { volume: { generation: g, files, bytes } });
    if (a) generations[g] = a;
  }
  const rb = doc.rollback as V1 | undefined;
  const rollback = rb && str(rb.from) && str(rb.to) && str(rb.at) ? { from: str(rb.from)!, to: str(rb.to)!, at: str(rb.at)! } : undefined;
  return { ...(generation ? { generation } : {}), kept, generations, ...(rollback ? { rollback } : {}) };
}

/** Status ConfigMap `status.json` format 1 → the last converged run, with what this instance manages. */
export function kubeFromV1(doc: V1, namespace: string): AppliedRecord | undefined {
  const objects = Array.isArray(doc.objects)
    ? doc.objects.filter(
        (o): o is { kind: string; name: string; contentHash: string } =>
          !!o && typeof o === 'object' && typeof o.kind === 'string' && typeof o.name === 'string' && typeof o.contentHash === 'string',
      )
    : [];
  const consumers =
    doc.consumers && typeof doc.consumers === 'object' ? Object.fromEntries(Object.entries(doc.consumers as V1).filter(([, v]) => typeof v === 'string')) : {};
  return appliedFromV1(doc.lastApplied, {
    kube: { namespace, objects: objects.map(({ kind, name, contentHash }) => ({ kind, name, contentHash })), consumers },
  });
}

function pick(o: V1, keys: string[]): V1 {
  return Object.fromEntries(keys.filter((k) => o[k] !== undefined).map((k) => [k, o[k]]));
}
