/**
 * The one module that knows the order of the stages:
 * config → source.resolve → [up to date? stop] → source.unpack → verify → process → plan → publish → report.
 * Every stage throws a typed error; this module turns the outcome into one report and one exit code.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Settings } from './config/index.js';
import { ConfigError, ExitCode, InternalError, UsageError, VerifyError, ZetaError, errorMessage } from './errors.js';
import type { Logger } from './log.js';
import { makePlan } from './plan/index.js';
import { deriveOutputs } from './process/index.js';
import { isUpToDate, publish, readCurrentState, readLastApplied, type Targets } from './publish/index.js';
import { chooseKubeTarget, KubePublishError } from './publish/kube/index.js';
import { DEFAULT_LIMITS, freshnessOf, freshnessWarnings, processedExpiryWarnings, recordedFreshness } from './plan/freshness.js';
import type { RunReport } from './report/index.js';
import { fetchImageSignature, layerReporter, parsePlatform, parseSourceReference, resolveSource, unpackSource, type SourceOptions } from './source/index.js';

/**
 * `run` goes all the way; `verify` stops after verification (source + signatures only, no targets, no
 * status, nothing written) — what CI runs on a payload before it ships.
 */
export async function runPipeline(settings: Settings, log: Logger, command: 'run' | 'verify' = 'run'): Promise<RunReport> {
  const started = Date.now();
  const verifyOnly = command === 'verify';
  const { fileMode, dirMode, group, keep, lockStale } = settings.config.volume;
  const lock = lockStale === undefined ? undefined : { staleMs: lockStale * 1000 };
  const targets: Targets = verifyOnly
    ? {}
    : { volumeDir: settings.volumeDir, kubeOut: settings.kubeOut, volume: { fileMode, dirMode, gid: group, keepGenerations: keep, lock } };
  const report: RunReport = {
    command,
    outcome: 'failed',
    exitCode: ExitCode.internal,
    dryRun: settings.dryRun,
    source: { reference: settings.source },
    targets: { volume: targets.volumeDir, kubeOut: targets.kubeOut },
    warnings: [],
    durationMs: 0,
  };
  let staging: string | undefined;
  try {
    if (!settings.source) {
      throw new UsageError('no source given', 'pass --source REF, set ZETA_PROVISION_SOURCE or PROVISIONING_CONTAINER_NAME, or put source: in the config');
    }
    const ref = parseSourceReference(settings.source, settings.sourceBaseDir);

    const sourceOptions = sourceOptionsFrom(settings, log);
    const resolved = await resolveSource(ref, sourceOptions);
    report.source.digest = resolved.digest;
    log.info('source resolved', { source: ref.original, digest: resolved.digest });
    if (!verifyOnly) {
      // `verify` publishes nothing, so it needs no cluster and no targets.
      const kube = await chooseKubeTarget(settings, log);
      targets.kube = kube.target;
      if (kube.target) report.targets.kube = `${kube.target.namespace} (${kube.target.origin})`;
      if ('warning' in kube && kube.warning) report.warnings.push(kube.warning);
      if (!settings.dryRun) requireTargets(settings, targets);
    }

    const last = await readLastApplied(targets);
    // The CoCo reference values can fall due (expiration refresh, overlap cleanup) on an unchanged payload.
    const initdataDue = !verifyOnly && settings.config.initdata ? await (await import('./publish/coco/step.js')).initdataDue(settings, log) : undefined;
    if (initdataDue) report.warnings.push(`initdata: ${initdataDue}; running although the payload may be unchanged`);
    if (!verifyOnly && !settings.force && !initdataDue && isUpToDate(last, resolved.digest, settings.configHash)) {
      report.source.revision = last[0]?.revision;
      // The hourly run mostly ends here: it still says how fresh the payload in place is.
      const now = new Date();
      report.freshness = recordedFreshness(last, now);
      if (report.freshness) report.warnings.push(...freshnessWarnings(report.freshness, now, { ...DEFAULT_LIMITS, expiryWarningDays: settings.config.expiryWarningDays, tslWarningDays: settings.config.process?.tsl?.warnDays ?? DEFAULT_LIMITS.tslWarningDays }));
      if (targets.kube && !settings.dryRun) {
        const meta = { source: ref.original, digest: resolved.digest, revision: report.source.revision };
        await targets.kube.recordOutcome('up-to-date', 'UpToDate', `payload ${resolved.digest} already applied; nothing to do`, meta);
      }
      return finish(report, 'up-to-date', ExitCode.ok, started, log);
    }

    // Loaded only now: the crypto stack (pkijs, asn1js) costs more start-up than the whole
    // up-to-date check above, which the hourly CronJob takes almost every time.
    const verify = await import('./verify/index.js');
    const { loadTrustSets, verificationFailure, verifyImage, verifyPayload } = verify;
    const trustSets = await loadTrustSets(settings.config);

    // The image signature is checked before a single layer is unpacked.
    const signature = settings.image.mode === 'off' ? undefined : await fetchImageSignature(resolved, sourceOptions);
    report.image = await verifyImage(signature, settings.image, resolved.digest, ref.kind);
    if (report.image.checked) log.info('image signature verified', { identity: report.image.identity, location: report.image.location });
    else report.warnings.push(`image signature not verified: ${report.image.reason}`);
    report.warnings.push(...verify.expiryWarnings([], report.image, new Date(), settings.config.expiryWarningDays));

    staging = await mkdtemp(path.join(os.tmpdir(), 'zeta-provision-'));
    const unpacked = await unpackSource(resolved, path.join(staging, 'payload'), {}, sourceOptions);
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
    if (verifyOnly) {
      if (settings.config.initdata) {
        // CI sees the initdata and its reference values before the payload ships.
        const { deriveInitdata } = await import('./process/initdata/index.js');
        const { summarizeInitdata } = await import('./publish/coco/step.js');
        const { walkTree } = await import('./util/fs.js');
        report.initdata = { ...summarizeInitdata(await deriveInitdata(unpacked.root, await walkTree(unpacked.root), settings.config.initdata), settings.config.initdata), actions: [] };
      }
      return finish(report, 'verified', ExitCode.ok, started, log);
    }
    const downgrade = verify.downgradeProblem(proven, verify.lastProvenTime(last));
    if (downgrade && !settings.allowDowngrade) {
      throw new VerifyError(`downgrade refused: ${downgrade}`, undefined, 'if going back to this payload is intended, rerun once with --allow-downgrade (ZETA_PROVISION_ALLOW_DOWNGRADE=true)');
    }
    if (downgrade) report.warnings.push(`downgrade allowed by --allow-downgrade: ${downgrade}`);

    const desired = await deriveOutputs(unpacked.root, settings.config, settings.namespace, {
      derivedDir: path.join(staging, 'derived'),
      truststorePassword: settings.gematik.truststorePassword,
      truststorePasswordFile: settings.process.truststorePasswordFile,
      resultFilenames: settings.gematik.resultFilenames,
      inputFilenames: settings.gematik.inputFilenames,
      authenticodeVerified: new Set(verification.checks.filter((c) => c.ok && c.kind === 'authenticode').map((c) => c.file)),
      tslGraceDays: settings.process.tslGraceDays,
      tslSignerAnchors: settings.process.tslSignerAnchors,
      onSecret: (secret) => log.redactor.add(secret),
    });
    report.warnings.push(...desired.warnings);
    if (desired.processed?.length) report.processed = desired.processed;
    report.freshness = freshnessOf(report);
    report.warnings.push(...processedExpiryWarnings(desired.processed ?? [], new Date(), settings.config.expiryWarningDays));
    for (const p of desired.processed ?? []) log.info(`derived ${p.outputs.join(', ')}`, { processor: p.processor, input: p.input, detail: p.detail });
    const current = await readCurrentState(targets);
    // Without a volume directory (dry run) the plan is made against an empty volume.
    if (!current.volume && publishesToVolume(settings)) current.volume = new Map();
    const plan = makePlan(desired, current);
    report.plan = plan;

    const meta = {
      source: ref.original,
      digest: resolved.digest,
      revision: report.source.revision,
      configHash: settings.configHash,
      ...(proven ? { provenTime: proven.time, provenBasis: proven.basis } : {}),
      ...report.freshness,
    };
    if (settings.dryRun === 'server' && targets.kube) {
      // Admission and validation errors surface now; the server stores nothing (dryRun=All).
      report.published = { configMapsWritten: [], statusWritten: false, kube: await targets.kube.publish(desired.configMaps, meta, { dryRun: true }) };
    }
    const coco = desired.initdata ? await import('./publish/coco/step.js') : undefined;
    if (settings.dryRun) {
      if (coco) report.initdata = await coco.publishInitdata(settings, log, desired, settings.dryRun);
      const pending = plan.changes || (report.initdata?.actions.length ?? 0) > 0;
      const code = settings.detailedExitcode && pending ? ExitCode.changesPending : ExitCode.ok;
      return finish(report, 'dry-run', code, started, log);
    }
    // Before the other targets: their records (volume, status ConfigMap) say "this payload is
    // applied", and the next hourly run would then skip an initdata that failed after them. The
    // initdata's own two writes are ordered inside its target; it depends on no other output.
    if (coco) report.initdata = await coco.publishInitdata(settings, log, desired, 'apply');
    report.published = await publish(plan, desired, targets, meta);
    const changed = plan.changes || (report.initdata?.applied !== undefined) || (report.initdata?.files?.length ?? 0) > 0;
    return finish(report, changed ? 'applied' : 'no-changes', ExitCode.ok, started, log);
  } catch (err) {
    const zerr = err instanceof ZetaError ? err : new InternalError(`internal error: ${errorMessage(err)}`, 'rerun with --debug and report this', { cause: err });
    report.error = { kind: zerr.kind, message: zerr.message, hint: zerr.hint, file: (zerr as { file?: string }).file };
    if (err instanceof KubePublishError) report.published = { configMapsWritten: err.report.applied.map((a) => a.name), statusWritten: err.report.statusWritten, kube: err.report };
    if (targets.kube && !settings.dryRun && !(err instanceof KubePublishError)) {
      // Best effort, after the fact: the status ConfigMap and an Event say this run failed.
      const reason = zerr.kind === 'verify' ? 'VerificationFailed' : 'PublishFailed';
      await targets.kube.recordOutcome('failed', reason, zerr.message, report.source.digest ? { source: settings.source ?? '', digest: report.source.digest, revision: report.source.revision } : undefined);
    }
    if (settings.debug && err instanceof Error && err.stack) log.debug('stack', { stack: err.stack });
    return finish(report, 'failed', zerr.exitCode, started, log);
  } finally {
    targets.kube?.close();
    if (staging) await rm(staging, { recursive: true, force: true });
  }
}

/** Registry access from the settings; every token the client obtains is redacted from all output. */
function sourceOptionsFrom(settings: Settings, log: Logger): SourceOptions {
  const { registryUsername: username, registryToken: password } = settings.gematik;
  return {
    ...(settings.platform ? { platform: parsePlatform(settings.platform, '--platform') } : {}),
    onLayer: layerReporter(log, process.stderr.isTTY ? process.stderr : undefined),
    registry: {
      credentials: username && password ? { username, password } : undefined,
      insecureHosts: settings.insecureRegistries,
      transport: { caFile: settings.registryCaFile },
      authFile: settings.registryAuthFile,
      onSecret: (secret) => log.redactor.add(secret),
    },
  };
}

/** Outputs the config produces need somewhere to go; say exactly which setting is missing. */
function requireTargets(settings: Settings, targets: Targets): void {
  if (publishesToVolume(settings) && !targets.volumeDir) {
    throw new ConfigError(
      `${settings.config.origin} publishes files to a volume, but no volume directory is set`,
      'pass --volume DIR (or ZETA_PROVISION_VOLUME, RESULT_DIR, volume.dir in the config)',
    );
  }
  if (settings.config.configMaps.length > 0 && !targets.kubeOut && !targets.kube) {
    throw new ConfigError(
      `${settings.config.origin} defines ConfigMaps, but no target for them is set`,
      'pass --kube-out DIR to write them as manifests (or ZETA_PROVISION_KUBE_OUT), or give a cluster (--kubeconfig, KUBECONFIG, in-cluster)',
    );
  }
}

function publishesToVolume(settings: Settings): boolean {
  return settings.config.volume.files.length > 0 || settings.config.volume.outputs.length > 0;
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
