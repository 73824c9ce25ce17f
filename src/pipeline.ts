/**
 * The one module that knows the order of the stages:
 * config → source.resolve → [up to date? stop] → source.unpack → verify → process → plan → publish → report.
 * Every stage throws a typed error; this module turns the outcome into one report and one exit code.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Settings } from './config/index.js';
import { ConfigError, ExitCode, InternalError, UsageError, ZetaError, errorMessage } from './errors.js';
import type { Logger } from './log.js';
import { makePlan } from './plan/index.js';
import { deriveOutputs } from './process/index.js';
import { isUpToDate, publish, readCurrentState, readLastApplied, type Targets } from './publish/index.js';
import type { RunReport } from './report/index.js';
import { fetchImageSignature, layerReporter, parsePlatform, parseSourceReference, resolveSource, unpackSource, type SourceOptions } from './source/index.js';

export async function runPipeline(settings: Settings, log: Logger): Promise<RunReport> {
  const started = Date.now();
  const targets: Targets = { volumeDir: settings.volumeDir, kubeOut: settings.kubeOut };
  const report: RunReport = {
    command: 'run',
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
    if (!settings.dryRun) requireTargets(settings, targets);

    const last = await readLastApplied(targets);
    if (!settings.force && isUpToDate(last, resolved.digest, settings.configHash)) {
      report.source.revision = last[0]?.revision;
      return finish(report, 'up-to-date', ExitCode.ok, started, log);
    }

    // Loaded only now: the crypto stack (pkijs, asn1js) costs more start-up than the whole
    // up-to-date check above, which the hourly CronJob takes almost every time.
    const { loadTrustSets, verificationFailure, verifyImage, verifyPayload } = await import('./verify/index.js');
    const trustSets = await loadTrustSets(settings.config);

    // The image signature is checked before a single layer is unpacked.
    const signature = settings.image.mode === 'off' ? undefined : await fetchImageSignature(resolved, sourceOptions);
    report.image = await verifyImage(signature, settings.image, resolved.digest, ref.kind);
    if (report.image.checked) log.info('image signature verified', { identity: report.image.identity, location: report.image.location });
    else report.warnings.push(`image signature not verified: ${report.image.reason}`);

    staging = await mkdtemp(path.join(os.tmpdir(), 'zeta-provision-'));
    const unpacked = await unpackSource(resolved, path.join(staging, 'payload'), {}, sourceOptions);
    report.warnings.push(...unpacked.warnings);
    log.info('payload unpacked', { files: unpacked.files, bytes: unpacked.bytes });
    const labels = { ...resolved.annotations, ...unpacked.annotations };
    report.source.revision = labels['org.opencontainers.image.revision'] ?? (await readRevision(unpacked.root));

    const verification = await verifyPayload(unpacked.root, settings.config, trustSets);
    report.verification = verification;
    const failure = verificationFailure(verification);
    if (failure) throw failure;
    log.info('payload verified', { checks: verification.checks.length });

    const desired = await deriveOutputs(unpacked.root, settings.config, settings.namespace);
    report.warnings.push(...desired.warnings);
    const current = await readCurrentState(targets);
    // Without a volume directory (dry run) the plan is made against an empty volume.
    if (!current.volume && settings.config.volume.files.length > 0) current.volume = new Map();
    const plan = makePlan(desired, current);
    report.plan = plan;

    if (settings.dryRun) {
      const code = settings.detailedExitcode && plan.changes ? ExitCode.changesPending : ExitCode.ok;
      return finish(report, 'dry-run', code, started, log);
    }
    const meta = { source: ref.original, digest: resolved.digest, revision: report.source.revision, configHash: settings.configHash };
    report.published = await publish(plan, desired, targets, meta);
    return finish(report, plan.changes ? 'applied' : 'no-changes', ExitCode.ok, started, log);
  } catch (err) {
    const zerr = err instanceof ZetaError ? err : new InternalError(`internal error: ${errorMessage(err)}`, 'rerun with --debug and report this', { cause: err });
    report.error = { kind: zerr.kind, message: zerr.message, hint: zerr.hint, file: (zerr as { file?: string }).file };
    if (settings.debug && err instanceof Error && err.stack) log.debug('stack', { stack: err.stack });
    return finish(report, 'failed', zerr.exitCode, started, log);
  } finally {
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
  if (settings.config.volume.files.length > 0 && !targets.volumeDir) {
    throw new ConfigError(
      `${settings.config.origin} publishes files to a volume, but no volume directory is set`,
      'pass --volume DIR (or ZETA_PROVISION_VOLUME, RESULT_DIR, volume.dir in the config)',
    );
  }
  if (settings.config.configMaps.length > 0 && !targets.kubeOut) {
    throw new ConfigError(
      `${settings.config.origin} defines ConfigMaps, but no target for them is set`,
      'pass --kube-out DIR to write them as manifests (or ZETA_PROVISION_KUBE_OUT)',
    );
  }
}

/** gematik payloads carry a `.revision` file; a short first line is reported, anything else ignored. */
async function readRevision(root: string): Promise<string | undefined> {
  try {
    const first = (await readFile(path.join(root, '.revision'), 'utf8')).split('\n')[0]!.trim();
    return /^[\x20-\x7e]{1,128}$/.test(first) ? first : undefined;
  } catch {
    return undefined;
  }
}

function finish(report: RunReport, outcome: RunReport['outcome'], exitCode: number, started: number, log: Logger): RunReport {
  report.outcome = outcome;
  report.exitCode = exitCode;
  report.durationMs = Date.now() - started;
  // A failure is printed once, by the report on stdout; the log only records that the run ended.
  log.info(`run finished: ${outcome}`, { exitCode, durationMs: report.durationMs });
  return report;
}
