/**
 * `zeta-provision rollback`: its own short order over the same targets as a run — read the volume's
 * history, ask every target it names whether it can restore the earlier payload, then move them all
 * together and record the rollback. (src/pipeline.ts is the order of a run.)
 */
import type { Settings } from './config/index.js';
import { PublishError, SUCCESS_REASONS, UsageError } from './errors.js';
import type { Logger } from './log.js';
import { closeTargets, GENERATION_PATTERN, observeTargets, openTargets, planRollback, recordTargets, rollbackTargets } from './publish/index.js';

export interface RollbackOutcome {
  volume?: string;
  from: string;
  to: string;
  kept: string[];
  /** API objects or manifests re-applied from what the restored payload produced. */
  configMaps: string[];
  digest: string;
}

/**
 * `zeta-provision rollback`: every target back to an earlier applied payload together. Each target is
 * asked first whether it can restore it; if one cannot (a Secret whose data is not kept), nothing is
 * changed and the message names what cannot be restored. The status records the rollback (a
 * RolledBack Event), and the next run holds it until a new payload or config arrives.
 */
export async function rollbackPipeline(settings: Settings, log: Logger, to?: string): Promise<RollbackOutcome> {
  if (to !== undefined && !GENERATION_PATTERN.test(to)) {
    throw new UsageError(
      `--to ${JSON.stringify(to)} is not a generation name (like ..2026_01_31_12_00_00.1a2b3c4d)`,
      'zeta-provision status --volume DIR lists the kept generations',
    );
  }
  // The volume's record says which targets the current payload went to: exactly those move back.
  const volume = await openTargets(settings, log, [], 'rollback', ['volume']);
  const written = Object.keys((await observeTargets(volume)).get('volume')?.record?.targets ?? {});
  closeTargets(volume);
  if (volume.length === 0)
    throw new UsageError('rollback needs the volume: it keeps the earlier payloads', 'pass --volume DIR (or ZETA_PROVISION_VOLUME, RESULT_DIR)');
  const targets = await openTargets(settings, log, [], 'rollback', ['volume', ...written]);
  try {
    const missing = written.filter((id) => !targets.some((t) => t.id === id));
    if (missing.length) {
      throw new UsageError(
        `the current payload was also published to ${missing.join(', ')}; refusing to roll back the volume alone (nothing was changed)`,
        'pass the same --config and target options (--kube-out, --kubeconfig, --namespace) as the run',
      );
    }
    const observed = await observeTargets(targets);
    const plan = await planRollback(targets, observed, to);
    if (!plan && to)
      throw new UsageError(`generation ${to} is not kept in ${settings.volumeDir}`, 'zeta-provision status --volume DIR lists the kept generations');
    if (!plan)
      throw new UsageError(
        `${settings.volumeDir} keeps no previous payload to roll back to`,
        'a rollback target exists after the second publish; zeta-provision status --volume DIR lists the kept generations',
      );
    if (plan.problems.length) {
      throw new PublishError(
        `refusing to roll back to ${plan.to.ref} (${plan.to.record.digest}); nothing was changed: ${plan.problems.join('; ')}`,
        'publish the wanted payload with run instead (a Secret can only come from its payload)',
      );
    }
    const { record, results } = await rollbackTargets(targets, observed, plan.to);
    const message = `rolled back to ${record.source}@${record.digest}${record.revision ? ` revision ${record.revision}` : ''} (from ${record.rollback?.fromDigest ?? 'unknown'})`;
    await recordTargets(
      targets,
      record,
      {
        outcome: 'rolled-back',
        message,
        drift: [],
        conditions: [
          { type: 'Fetched', status: 'True', reason: 'Fetched', message: `kept payload ${record.digest}` },
          { type: 'Verified', status: 'True', reason: 'Verified', message: 'verified when it was applied' },
          { type: 'Published', status: 'True', reason: SUCCESS_REASONS['rolled-back'], message },
        ],
      },
      observed,
    );
    log.info(message, {});
    const v = results.volume as { from: string; to: string; kept: string[] } | undefined;
    const kube = results.kube as { applied: { name: string }[] } | undefined;
    const out = results['kube-out'] as { written: string[] } | undefined;
    return {
      volume: settings.volumeDir,
      from: v?.from ?? '',
      to: v?.to ?? plan.to.ref,
      kept: v?.kept ?? [],
      configMaps: [...(kube?.applied.map((a) => a.name) ?? []), ...(out?.written ?? [])],
      digest: record.digest,
    };
  } finally {
    closeTargets(targets);
  }
}
