/**
 * The versioned documents on stdout: `apiVersion: zeta-provision/v1` with `kind` RunReport,
 * VerifyReport or VolumeStatus. Every field is present in every outcome — null when the run did not
 * get that far — so a consumer can read `.image.checked` without first asking whether `.image`
 * exists. The shapes are pinned by the JSON Schemas in schemas/ (tests validate real outputs).
 * Pure: the domain types stay as they are; this only fills in and renames for the wire.
 */
import type { RunReport } from './types.js';

export const API_VERSION = 'zeta-provision/v1';
export type DocumentKind = 'RunReport' | 'VerifyReport' | 'VolumeStatus' | 'VolumeRollback';

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

/** `keys` present in order, each the value or null (undefined → null), other keys kept after them. */
function filled(obj: object | undefined, keys: readonly string[]): { [k: string]: Json } {
  const src = (obj ?? {}) as Record<string, unknown>;
  const out: { [k: string]: Json } = {};
  for (const k of keys) out[k] = nul(src[k]);
  for (const [k, v] of Object.entries(src)) if (!(k in out) && v !== undefined) out[k] = v as Json;
  return out;
}

function nul(v: unknown): Json {
  return v === undefined ? null : (v as Json);
}

function signer(s: object | undefined): Json {
  return s === undefined ? null : filled(s, ['subject', 'anchor', 'earliestExpiry']);
}

export function runDocument(r: RunReport): { [k: string]: Json } {
  const verify = r.command === 'verify';
  const image = r.image ? { ...filled(r.image, ['checked', 'location', 'identity', 'signedAt', 'reason']), signer: signer(r.image.signer) } : null;
  const verification = r.verification
    ? {
        checks: r.verification.checks.map((c) => ({ ...filled(c, ['file', 'kind', 'ok', 'timestamp', 'reason']), signers: c.signers.map((s) => signer(s)) })),
        unverified: r.verification.unverified,
        manifest: r.verification.manifest ? filled(r.verification.manifest, ['checked', 'listed', 'unlisted', 'revision', 'revisionListed', 'reason']) : null,
        proven: r.verification.proven ? filled(r.verification.proven, ['time', 'basis']) : null,
      }
    : null;
  const processed = r.processed
    ? r.processed.map((p) => filled(p, ['processor', 'input', 'outputs', 'detail', 'signatureChecked', 'nextUpdate', 'notAfter']))
    : null;
  const freshness = filled(r.freshness, ['earliestCertificateExpiry', 'tslNextUpdate', 'appliedAt', 'payloadAgeSeconds']);
  const doc: { [k: string]: Json } = {
    apiVersion: API_VERSION,
    kind: verify ? 'VerifyReport' : 'RunReport',
    command: r.command,
    outcome: r.outcome,
    exitCode: r.exitCode,
    ...(verify ? {} : { dryRun: r.dryRun }),
    source: filled(r.source, ['reference', 'digest', 'revision']),
    ...(verify ? {} : { targets: filled(r.targets, ['volume', 'kubeOut', 'kube']) }),
    image,
    verification,
    processed,
    freshness,
    // Confidential Containers initdata (README "Confidential Containers initdata"): null without `initdata:`.
    initdata: nul(r.initdata),
  };
  if (!verify) {
    // Lists are empty rather than null, so a consumer can iterate them in every outcome.
    doc.plan = r.plan ? (filled({ targets: [], drift: [], rollouts: [], ...r.plan }, ['volume', 'configMaps', 'changes']) as Json) : null;
    doc.published = r.published
      ? (filled({ tidied: [], changed: false, ...r.published }, ['volume', 'configMapsWritten', 'statusWritten', 'kube']) as Json)
      : null;
  }
  doc.warnings = r.warnings;
  doc.error = r.error ? filled(r.error, ['kind', 'message', 'hint', 'file']) : null;
  doc.durationMs = r.durationMs;
  return doc;
}

/** `status`: the volume's generations; every field present (null: no ..data yet, no record …). */
export function volumeStatusDocument(s: object): { [k: string]: Json } {
  const src = s as Record<string, unknown>;
  return {
    apiVersion: API_VERSION,
    kind: 'VolumeStatus',
    ...filled(s, ['volume', 'current', 'previous', 'generations', 'unreferenced', 'lastApplied', 'rollback', 'lock']),
    freshness:
      src.freshness === undefined
        ? null
        : filled(src.freshness as object, ['appliedAt', 'ageSeconds', 'earliestCertificateExpiry', 'tslNextUpdate', 'warnings']),
  };
}

/** `rollback`: what was swapped. */
export function rollbackDocument(
  volume: string,
  r: { from?: string; to: string; kept: string[]; digest?: string; configMaps?: string[] },
): { [k: string]: Json } {
  return {
    apiVersion: API_VERSION,
    kind: 'VolumeRollback',
    volume,
    from: nul(r.from),
    to: r.to,
    kept: r.kept,
    digest: nul(r.digest),
    reapplied: r.configMaps ?? [],
  };
}
