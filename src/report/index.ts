/**
 * Report stage: what happened, as text for a person or JSON for a machine, on stdout. The exit code
 * travels inside the report so both renderings agree with the process status.
 */
import { stringify } from 'yaml';
import { describeAge, describeTime } from '../util/time.js';
import { runDocument } from './document.js';
import { renderInitdata } from './initdata.js';
import type { RunReport } from './types.js';
import { wrapLines } from './wrap.js';

export type { Outcome, RunReport } from './types.js';
export { rollbackDocument, volumeStatusDocument } from './document.js';

/**
 * A versioned document as JSON or YAML (the same fields either way). `compact` JSON is one line: on
 * a pipe (a pod's log, `| jq`) the output stays parseable line by line.
 */
export function renderDocument(doc: object, format: 'json' | 'yaml', compact = false): string {
  return format === 'json' ? JSON.stringify(doc, null, compact ? 0 : 2) + '\n' : stringify(doc, { lineWidth: 0 });
}

export function renderReport(report: RunReport, format: 'text' | 'json' | 'yaml', width?: number, compact = false): string {
  return format === 'text' ? wrapLines(renderText(report), width) : renderDocument(runDocument(report), format, compact);
}

/** Named in the text report up to this many; the JSON report always lists them all. */
const MAX_NAMED_UNVERIFIED = 50;

const HEADLINE: Record<RunReport['outcome'], string> = {
  applied: 'applied',
  'drift-corrected': 'drift corrected: the live state differed from what was applied and was repaired',
  'rolled-back': 'rolled back: every target is back at the previous payload',
  'no-changes': 'no changes: outputs already match the payload',
  'up-to-date': 'up to date: this payload was already applied, nothing to do',
  'dry-run': 'dry run: nothing was written',
  verified: 'verified: every required check passed (nothing was written)',
  failed: 'FAILED',
};

function renderText(r: RunReport): string {
  if (r.outcome === 'failed') return renderFailure(r);
  const lines: string[] = [];
  const pending =
    r.outcome === 'dry-run' && r.plan?.changes
      ? `; changes pending${r.plan.drift?.length ? ` (${r.plan.drift.length} drift)` : ''}${r.plan.rollouts?.length ? `, ${r.plan.rollouts.length} rollout(s)` : ''}`
      : '';
  lines.push(`zeta-provision ${r.command}: ${HEADLINE[r.outcome]}${pending}`);
  if (r.source.reference) {
    lines.push(
      `  source    ${r.source.reference}${r.source.digest ? ` (${short(r.source.digest)})` : ''}${r.source.revision ? ` revision ${r.source.revision}` : ''}`,
    );
  }
  if (r.image?.checked) {
    const expires = r.image.signer ? `, chain expires ${r.image.signer.earliestExpiry.slice(0, 10)}` : '';
    lines.push(`  image     signed by ${r.image.identity ?? r.image.signer?.subject} → ${r.image.signer?.anchor} (${r.image.location}${expires})`);
  }
  if (r.verification) {
    const signatures = r.verification.checks.filter((c) => c.kind !== 'manifest');
    const ok = signatures.filter((c) => c.ok).length;
    lines.push(`  verified  ${ok}/${signatures.length} signature checks passed`);
    for (const c of signatures) {
      const who = c.signers.map((s) => `${s.subject} → ${s.anchor} (chain expires ${s.earliestExpiry.slice(0, 10)})`).join('; ');
      const when = c.timestamp ? ` (timestamp ${c.timestamp})` : '';
      lines.push(`    ${c.ok ? 'ok  ' : 'FAIL'} ${c.file} [${c.kind}]${c.ok ? ` ${who}${when}` : `: ${c.reason ?? ''}`}`);
    }
    const unverified = r.verification.unverified;
    if (unverified.length > 0) {
      const named = unverified.slice(0, MAX_NAMED_UNVERIFIED).join(', ');
      const more = unverified.length > MAX_NAMED_UNVERIFIED ? ` … and ${unverified.length - MAX_NAMED_UNVERIFIED} more (all in -o json)` : '';
      lines.push(`  unverified ${unverified.length} payload file(s) not covered by a verify rule: ${named}${more}`);
    }
    const m = r.verification.manifest;
    if (m?.checked) {
      const listed = r.verification.checks.filter((c) => c.kind === 'manifest' && c.ok).length;
      const unlisted = m.unlisted?.length ? `; ${m.unlisted.length} unlisted: ${m.unlisted.join(', ')}` : '';
      lines.push(`  manifest  .manifest: ${listed}/${m.listed ?? 0} listed files match${unlisted}`);
    } else if (m?.reason) {
      lines.push(`  manifest  not checked: ${m.reason}`);
    }
    if (r.verification.proven) lines.push(`  proven    ${r.verification.proven.time} (${r.verification.proven.basis})`);
  }
  for (const p of r.processed ?? []) {
    lines.push(`  derived   ${p.outputs.join(', ')} from ${p.input}: ${p.detail}`);
  }
  const f = r.freshness;
  if (f?.earliestCertificateExpiry || f?.tslNextUpdate || f?.appliedAt) {
    const now = new Date();
    const parts = [
      ...(f.appliedAt ? [`payload applied ${describeAge(f.appliedAt, now)} ago`] : []),
      ...(f.earliestCertificateExpiry ? [`earliest certificate expiry ${describeTime(f.earliestCertificateExpiry, now)}`] : []),
      ...(f.tslNextUpdate ? [`TSL next update ${describeTime(f.tslNextUpdate, now)}`] : []),
    ];
    lines.push(`  freshness ${parts.join('; ')}`);
  }
  const v = r.plan?.volume;
  if (v && r.targets.volume) {
    const what = v.changed
      ? `${v.added.length} added, ${v.modified.length} changed, ${v.removed.length} removed, ${v.unchanged} unchanged`
      : `unchanged (${v.files} files)`;
    const gen = r.published?.volume ? ` → generation ${r.published.volume.generation}` : '';
    lines.push(`  volume    ${r.targets.volume}: ${what}${gen}`);
  }
  for (const cm of r.plan?.configMaps ?? []) {
    lines.push(
      `  ${cm.kind === 'Secret' ? 'secret   ' : 'configmap'} ${cm.name}: ${cm.action} (${cm.keys.join(', ')}; ${cm.bytes} bytes)${r.targets.kubeOut || r.targets.kube ? '' : ' [no target]'}`,
    );
  }
  for (const d of r.plan?.drift ?? []) lines.push(`  drift     ${d.target} ${d.object}: ${d.what}`);
  for (const w of r.plan?.rollouts ?? []) lines.push(`  rollout   ${w}${r.outcome === 'dry-run' ? ' (pending)' : ''}`);
  for (const t of r.published?.tidied ?? []) lines.push(`  tidied    ${t}`);
  lines.push(...renderKube(r));
  if (r.initdata) lines.push(...renderInitdata(r.initdata, r.outcome === 'dry-run' || r.outcome === 'verified'));
  for (const w of r.warnings) lines.push(`  warning   ${w}`);
  if (r.error) {
    lines.push(`  error     ${r.error.message}`);
    if (r.error.hint) lines.push(`  hint      ${r.error.hint}`);
  }
  lines.push(`  exit ${r.exitCode} after ${(r.durationMs / 1000).toFixed(2)} s`);
  return lines.join('\n') + '\n';
}

/** One line an operator can act on, the hint, and the failed checks when verification was the cause. */
function renderFailure(r: RunReport): string {
  const lines = [`zeta-provision: error: ${r.error?.message ?? 'failed'}`];
  if (r.error?.hint) lines.push(`  hint: ${r.error.hint}`);
  lines.push(...renderKube(r));
  const failed = r.verification?.checks.filter((c) => !c.ok) ?? [];
  if (failed.length > 1) for (const c of failed) lines.push(`  FAIL ${c.file} [${c.kind}]: ${c.reason ?? ''}`);
  for (const w of r.warnings) lines.push(`  warning   ${w}`);
  return lines.join('\n') + '\n';
}

/** The API target's outcome: counts, then each object applied, pruned, rolled out or still pending. */
function renderKube(r: RunReport): string[] {
  const k = r.published?.kube;
  if (!k) return [];
  const verb = k.dryRun ? 'would be ' : '';
  const lines = [
    `  api       namespace ${k.namespace}: ${k.applied.length} ${verb}applied, ${k.unchanged.length} unchanged, ${k.pruned.length} ${verb}pruned, ${k.restarted.length} ${verb}rolled out, ${k.pending.length} pending (${k.requests} requests)`,
  ];
  for (const a of k.applied) lines.push(`    ${a.action.padEnd(7)} ${a.kind}/${a.name}`);
  for (const p of k.pruned) lines.push(`    pruned  ${p.kind}/${p.name}`);
  for (const w of k.restarted) lines.push(`    rollout ${w.workload} (inputs ${w.inputs.join(', ')})`);
  for (const p of k.pending) lines.push(`    PENDING ${p.step} ${p.kind}/${p.name}: ${p.error}`);
  return lines;
}

function short(digest: string): string {
  const [alg, hex] = digest.split(':');
  return hex ? `${alg}:${hex.slice(0, 12)}` : digest;
}
