/**
 * The one module that knows the order of the stages:
 * config → source.resolve → targets.observe → [up to date? stop, nothing written] → verify → unpack →
 * verify payload → process → plan → targets.apply → targets.record → report. Each step is a named
 * function below; runPipeline is their order.
 * Every stage throws a typed error; this module turns the outcome into one report and one exit code.
 */
import path from 'node:path';
import { trustSetFiles, type Settings } from './config/index.js';
import { ExitCode, InternalError, VerifyError, ZetaError, errorMessage } from './errors.js';
import type { Logger } from './log.js';
import { DEFAULT_LIMITS, freshnessOf, freshnessWarnings, processedExpiryWarnings, recordedFreshness } from './plan/freshness.js';
import { failedStatus, runStatus } from './plan/status.js';
import { deriveOutputs } from './process/index.js';
import type { DesiredOutputs } from './process/types.js';
import {
  applyTargets,
  closeTargets,
  convergence,
  KubePublishError,
  newRecord,
  observeTargets,
  openTargets,
  planTargets,
  recordTargets,
  RECORD_VERSION,
  tidyTargets,
  type AppliedRecord,
  type Convergence,
  type Observations,
  type Target,
  type TargetsPlan,
} from './publish/index.js';
import type { RunReport } from './report/index.js';
import { requireTargets, sourceOptionsFrom, sourceReference } from './pipeline-inputs.js';
import { fetchImageSignature, missingSignatureReason, openSource, unpackSource, type SourceOptions } from './source/index.js';
import type { ResolvedSource, SourceReference } from './source/types.js';
import { createStaging, tidyStaging, type Staging } from './util/staging.js';
import { downgradeProblem, lastProvenTime } from './verify/downgrade.js';

/** What the steps of one run share. */
interface Run {
  settings: Settings;
  log: Logger;
  report: RunReport;
  verifyOnly: boolean;
  targets: Target[];
  observed?: Observations;
  staging?: Staging;
  /** Staging directories of dead runs this run removed (tidied once, before unpacking). */
  tidiedStaging?: string[];
}

/**
 * `run` goes all the way; `verify` is `run --dry-run` minus the targets: the same steps up to and
 * including the processors (so every check a run makes — image, files, manifest, downgrade, TSL
 * signature and NextUpdate, roots.json, policy signer, TPM store — decides its verdict too), then it
 * stops before plan and publish. It needs no cluster; a given volume is only read (its record feeds
 * the downgrade check). What CI runs on a payload before it ships.
 */
export async function runPipeline(settings: Settings, log: Logger, command: 'run' | 'verify' = 'run'): Promise<RunReport> {
  const started = Date.now();
  const report: RunReport = {
    command,
    outcome: 'failed',
    exitCode: ExitCode.internal,
    dryRun: settings.dryRun,
    source: { reference: settings.source },
    targets: {},
    warnings: [],
    durationMs: 0,
  };
  const run: Run = { settings, log, report, verifyOnly: command === 'verify', targets: [] };
  try {
    const ref = sourceReference(settings);
    const sourceOptions = sourceOptionsFrom(settings, log);
    const resolved = await resolveStep(run, ref, sourceOptions);
    if (!run.verifyOnly) await observeStep(run);
    const converged = run.verifyOnly ? undefined : convergence(run.targets, run.observed!, resolved.digest, settings.configHash);
    if (converged?.upToDate && !settings.force) return await upToDateStep(run, converged, started);
    if (converged?.why.length) log.info('not up to date', { why: converged.why });

    const verified = await verifyStep(run, resolved, sourceOptions);
    downgradeStep(run, verified.proven, run.verifyOnly ? [await appliedHistory(run)] : [...run.observed!.values()].map((o) => o.record));
    const desired = await processStep(run, verified.root, verified.authenticode);
    // verify ends here: every check has been made; plan and publish concern targets it does not have.
    if (run.verifyOnly) {
      // CI sees the initdata and its reference values before the payload ships.
      if (desired.initdata) report.initdata = await initdataSummary(settings, desired);
      return finish(report, 'verified', ExitCode.ok, started, log);
    }
    const meta = { source: ref.original, digest: resolved.digest, revision: report.source.revision };
    const planned = planTargets(run.targets, desired, run.observed!, meta);
    const plan = planned.plan;
    report.plan = plan;
    if (desired.initdata) report.initdata = await initdataReport(settings, desired, planned);

    if (settings.dryRun) return await dryRunStep(run, planned, meta, verified.proven, started);
    const record = newRecord({
      ...meta,
      configHash: settings.configHash,
      ...(verified.proven ? { proven: verified.proven } : {}),
      freshness: pickFreshness(report.freshness),
    });
    report.published = await applyTargets(run.targets, planned, record, { dryRun: false });
    if (report.initdata && report.published.initdata) report.initdata.applied = report.published.initdata;
    // Same payload and config, and something differed live: this run repaired drift.
    const changed = report.published.changed === true;
    const drifted =
      changed && converged?.record?.digest === resolved.digest && converged.record.configHash === settings.configHash && (plan.drift?.length ?? 0) > 0;
    const status = runStatus(drifted ? 'drift-corrected' : 'applied', plan, meta);
    if (changed || plan.changes || anyRecordStale(run, resolved.digest, settings.configHash)) {
      report.published.statusWritten = (await recordTargets(run.targets, record, status, run.observed)) || report.published.statusWritten;
    }
    report.published.tidied = await tidyStep(run);
    return finish(report, !changed ? 'no-changes' : drifted ? 'drift-corrected' : 'applied', ExitCode.ok, started, log);
  } catch (err) {
    return await failureStep(run, err, started);
  } finally {
    closeTargets(run.targets);
    await run.staging?.remove();
  }
}

/** `verify`: the initdata document and its reference values, rendered from the verified payload. */
async function initdataSummary(settings: Settings, desired: DesiredOutputs): Promise<RunReport['initdata']> {
  const { summarizeInitdata } = await import('./publish/coco/summary.js');
  return { ...summarizeInitdata(desired.initdata!, settings.config.initdata!), actions: [] };
}

/** The initdata part of the report: the document (decoded), its values, and what the plan does with it. */
async function initdataReport(settings: Settings, desired: DesiredOutputs, planned: TargetsPlan): Promise<RunReport['initdata']> {
  const { initdataPlanReport } = await import('./publish/coco/summary.js');
  return initdataPlanReport(
    settings.config.initdata!,
    desired.initdata!,
    planned.parts.find((p) => p.target === 'coco-initdata'),
  );
}

async function resolveStep(run: Run, ref: SourceReference, sourceOptions: SourceOptions): Promise<ResolvedSource> {
  // One driver (and registry session) for resolve, signature and unpack.
  const resolved = await openSource(ref, sourceOptions).resolve();
  run.report.source.digest = resolved.digest;
  run.log.info('source resolved', { source: ref.original, digest: resolved.digest });
  return resolved;
}

/** Open the targets and read their live state (`verify` publishes nothing, so it needs no targets). */
async function observeStep(run: Run): Promise<void> {
  run.targets = await openTargets(run.settings, run.log, run.report.warnings);
  for (const t of run.targets) run.report.targets[t.id === 'kube-out' ? 'kubeOut' : (t.id as 'volume' | 'kube')] = t.where;
  if (!run.settings.dryRun) requireTargets(run.settings, run.targets);
  run.observed = await observeTargets(run.targets);
}

/**
 * verify writes nothing and needs no cluster: a given volume is only read, for the downgrade check
 * (opened as for rollback, since it holds the history even when this config publishes nothing to it).
 */
async function appliedHistory(run: Run): Promise<AppliedRecord | undefined> {
  const volume = await openTargets(run.settings, run.log, [], 'rollback', ['volume']);
  try {
    return (await observeTargets(volume)).get('volume')?.record;
  } finally {
    closeTargets(volume);
  }
}

/** The hourly run mostly ends here: nothing is written (only a dead run's leftovers are tidied). */
async function upToDateStep(run: Run, c: Convergence, started: number): Promise<RunReport> {
  const { report, settings } = run;
  report.source.revision = c.record?.revision;
  const now = new Date();
  report.freshness = c.record ? recordedFreshness([{ ...c.record.freshness, appliedAt: c.record.appliedAt }], now) : undefined;
  if (report.freshness)
    report.warnings.push(
      ...freshnessWarnings(report.freshness, now, {
        ...DEFAULT_LIMITS,
        expiryWarningDays: settings.config.expiryWarningDays,
        tslWarningDays: settings.config.process?.tsl?.warnDays ?? DEFAULT_LIMITS.tslWarningDays,
      }),
    );
  // Said on every run, the hourly up-to-date ones included: an unchecked TSL is a standing risk.
  if (settings.config.process?.tsl && (settings.process.tslSignature ?? settings.config.process.tsl.signature) === 'off') {
    report.warnings.push('the TSL signature check is turned off (--tsl-signature off or process.tsl.signature): the applied TSL was not verified');
  }
  if (c.record?.rollback)
    report.warnings.push(`rolled back from ${c.record.rollback.fromDigest} at ${c.record.rollback.at}; kept until a new payload or config arrives`);
  if (!settings.dryRun) {
    const tidied = await tidyStep(run);
    if (tidied.length) report.published = { configMapsWritten: [], statusWritten: false, tidied };
  }
  return finish(report, 'up-to-date', ExitCode.ok, started, run.log);
}

interface Verified {
  root: string;
  proven?: { time: string; basis: string };
  authenticode: Set<string>;
}

async function verifyStep(run: Run, resolved: ResolvedSource, sourceOptions: SourceOptions): Promise<Verified> {
  const { report, settings, log } = run;
  // Loaded only now: the crypto stack (certificates, CMS, cosign) costs more start-up than the whole
  // up-to-date check above, which the hourly CronJob takes almost every time.
  const verify = await import('./verify/index.js');
  const { loadTrustSets, verificationFailure, verifyImage, verifyPayload } = verify;
  const trustSets = await loadTrustSets(settings.config);

  // The image signature is checked before a single layer is unpacked.
  const signature = settings.image.mode === 'off' ? undefined : await fetchImageSignature(resolved);
  report.image = await verifyImage(signature, settings.image, resolved.digest, missingSignatureReason(resolved));
  if (report.image.checked) log.info('image signature verified', { identity: report.image.identity, location: report.image.location });
  else report.warnings.push(`image signature not verified: ${report.image.reason}`);
  report.warnings.push(...verify.expiryWarnings([], report.image, new Date(), settings.config.expiryWarningDays));

  if (!run.verifyOnly) {
    // Before unpacking, so dead runs' leftovers free the staging space this run needs; tidyStep reuses it.
    run.tidiedStaging = await tidyStaging();
    if (run.tidiedStaging.length) log.info('removed staging directories of dead runs', { dirs: run.tidiedStaging });
  }
  run.staging = await createStaging();
  const unpacked = await unpackSource(resolved, path.join(run.staging.dir, 'payload'), sourceOptions.limits, sourceOptions);
  report.warnings.push(...unpacked.warnings);
  log.info('payload unpacked', { files: unpacked.files, bytes: unpacked.bytes });
  const labels = { ...resolved.annotations, ...unpacked.annotations };

  const { warnings: verifyWarnings, ...verification } = await verifyPayload(unpacked.root, settings.config, trustSets);
  report.verification = verification;
  report.warnings.push(...verifyWarnings);
  // The manifest check already read .revision (and warned about a bad one); read it here only otherwise.
  const revision = verification.manifest?.checked ? verification.manifest.revision : await verify.readRevision(unpacked.root, report.warnings);
  report.source.revision = labels['org.opencontainers.image.revision'] ?? revision;
  const failure = verificationFailure(verification);
  if (failure) throw failure;
  log.info('payload verified', { checks: verification.checks.length });

  // Downgrade protection (src/verify/downgrade.ts says what counts as proven).
  const proven = verify.provenTime(report.image, verification.checks);
  if (proven) verification.proven = proven;
  const authenticode = new Set(verification.checks.filter((c) => c.ok && c.kind === 'authenticode').map((c) => c.file));
  return { root: unpacked.root, ...(proven ? { proven } : {}), authenticode };
}

function downgradeStep(run: Run, proven: Verified['proven'], records: (AppliedRecord | undefined)[]): void {
  // Against the newest time any target's record proves: one target may lag behind the others.
  const last = lastProvenTime(records.map((r) => (r?.proven ? { provenTime: r.proven.time, provenBasis: r.proven.basis } : undefined)));
  const problem = downgradeProblem(proven, last);
  if (problem && !run.settings.allowDowngrade) {
    throw new VerifyError(
      `downgrade refused: ${problem}`,
      undefined,
      'if going back to this payload is intended, rerun once with --allow-downgrade (ZETA_PROVISION_ALLOW_DOWNGRADE=true)',
    );
  }
  if (problem) run.report.warnings.push(`downgrade allowed by --allow-downgrade: ${problem}`);
}

async function processStep(run: Run, root: string, authenticodeVerified: Set<string>): Promise<DesiredOutputs> {
  const { report, settings, log } = run;
  const desired = await deriveOutputs(root, settings.config, settings.namespace, {
    derivedDir: path.join(run.staging!.dir, 'derived'),
    truststorePassword: settings.gematik.truststorePassword,
    truststorePasswordFile: settings.process.truststorePasswordFile,
    resultFilenames: settings.gematik.resultFilenames,
    inputFilenames: settings.gematik.inputFilenames,
    authenticodeVerified,
    tslGraceDays: settings.process.tslGraceDays,
    tslSignerAnchors: settings.process.tslSignerAnchors,
    tslTrust: settings.process.tslTrust,
    tslSignature: settings.process.tslSignature,
    trustSetFiles: (name) => trustSetFiles(settings.config, name),
    onSecret: (secret) => log.redactor.add(secret),
  });
  report.warnings.push(...desired.warnings);
  if (desired.processed?.length) report.processed = desired.processed;
  report.freshness = freshnessOf(report);
  report.warnings.push(...processedExpiryWarnings(desired.processed ?? [], new Date(), settings.config.expiryWarningDays));
  for (const p of desired.processed ?? []) log.info(`derived ${p.outputs.join(', ')}`, { processor: p.processor, input: p.input, detail: p.detail });
  return desired;
}

/** Client dry run: the plan only. Server dry run: every target validates its writes (dryRun=All). */
async function dryRunStep(
  run: Run,
  planned: TargetsPlan,
  meta: { source: string; digest: string; revision?: string },
  proven: Verified['proven'],
  started: number,
): Promise<RunReport> {
  const { settings, report } = run;
  if (settings.dryRun === 'server') {
    const record = newRecord({ ...meta, configHash: settings.configHash, ...(proven ? { proven } : {}), freshness: pickFreshness(report.freshness) });
    report.published = await applyTargets(
      run.targets.filter((t) => t.id === 'kube' || t.id === 'coco-initdata'),
      planned,
      record,
      { dryRun: true },
    );
    if (report.initdata && report.published.initdata) report.initdata.applied = report.published.initdata;
  }
  const code = settings.detailedExitcode && planned.plan.changes ? ExitCode.changesPending : ExitCode.ok;
  return finish(report, 'dry-run', code, started, run.log);
}

async function tidyStep(run: Run): Promise<string[]> {
  const staging = run.tidiedStaging ?? (await tidyStaging());
  const tidied = [...(await tidyTargets(run.targets, run.observed!)), ...staging.map((d) => `staging: ${d}`)];
  if (tidied.length) run.log.info('removed what killed runs left behind', { removed: tidied });
  return tidied;
}

async function failureStep(run: Run, err: unknown, started: number): Promise<RunReport> {
  const { report, settings, log } = run;
  const zerr = err instanceof ZetaError ? err : new InternalError(`internal error: ${errorMessage(err)}`, 'rerun with --debug and report this', { cause: err });
  report.error = { kind: zerr.kind, message: zerr.message, hint: zerr.hint, file: (zerr as { file?: string }).file };
  if (err instanceof KubePublishError)
    report.published = { ...report.published, configMapsWritten: err.report.applied.map((a) => a.name), statusWritten: false, kube: err.report };
  if (run.targets.length && run.observed && !settings.dryRun) {
    // Best effort, after the fact: the status says which stage failed (the same failure again writes nothing).
    await recordTargets(run.targets, undefined, failedStatus(zerr, report.source.digest), run.observed).catch(() => false);
  }
  if (settings.debug && err instanceof Error && err.stack) log.debug('stack', { stack: err.stack });
  return finish(report, 'failed', zerr.exitCode, started, log);
}

/** A target without a record of this payload (lost, or read from an older format) gets it written. */
function anyRecordStale(run: Run, digest: string, configHash: string): boolean {
  return [...(run.observed?.values() ?? [])].some(
    (o) => !o.record || o.record.version !== RECORD_VERSION || o.record.digest !== digest || o.record.configHash !== configHash || o.stale === true,
  );
}

function pickFreshness(f: RunReport['freshness']): AppliedRecord['freshness'] {
  return {
    ...(f?.earliestCertificateExpiry ? { earliestCertificateExpiry: f.earliestCertificateExpiry } : {}),
    ...(f?.tslNextUpdate ? { tslNextUpdate: f.tslNextUpdate } : {}),
  };
}

function finish(report: RunReport, outcome: RunReport['outcome'], exitCode: number, started: number, log: Logger): RunReport {
  report.outcome = outcome;
  report.exitCode = exitCode;
  // Runs that end before processing (verify, failures) still say what they saw.
  if (!report.freshness) {
    const f = freshnessOf(report);
    if (Object.keys(f).length > 0) report.freshness = f;
  }
  report.durationMs = Date.now() - started;
  // A failure is printed once, by the report on stdout; the log only records that the run ended.
  log.info(`run finished: ${outcome}`, { exitCode, durationMs: report.durationMs });
  return report;
}
