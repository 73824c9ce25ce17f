/**
 * `--kube-out DIR` for the CoCo initdata: the same objects as manifests under DIR/coco-initdata/
 * (see writeInitdataManifests), with the applied record beside them in `.record.json`. No cluster
 * is read, so there is no rotation here: the README gives the order to apply them in.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { InitdataConfig } from '../../config/initdata.js';
import { InternalError, PublishError, errorMessage } from '../../errors.js';
import type { InitdataOutput } from '../../process/initdata/index.js';
import type { DesiredOutputs } from '../../process/types.js';
import { writeFileAtomic } from '../kube-out.js';
import { parseRecord, parseStored, type AppliedRecord } from '../record.js';
import type { DriftItem, Observed, RunStatus, Target, TargetApplied, TargetPlan } from '../target.js';
import { writeInitdataManifests } from './summary.js';

const RECORD = '.record.json';

export interface KubeOutLive {
  /** sha256 of initdata.toml as it is in the directory (undefined: missing). */
  toml?: string;
  recordText?: string;
}

export interface KubeOutPlanDetail {
  where: string;
  write: boolean;
  initdata: InitdataOutput;
}

export class CocoKubeOutTarget implements Target<KubeOutLive, KubeOutPlanDetail, { files: string[] }> {
  readonly id = 'coco-initdata';
  readonly where: string;
  private readonly sub: string;

  constructor(
    readonly dir: string,
    readonly config: InitdataConfig,
  ) {
    this.sub = path.join(dir, 'coco-initdata');
    this.where = this.sub;
  }

  async observe(): Promise<Observed<KubeOutLive>> {
    const read = async (name: string): Promise<Buffer | undefined> => {
      try {
        return await readFile(path.join(this.sub, name));
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
        throw new PublishError(`cannot read ${path.join(this.sub, name)}: ${errorMessage(err)}`);
      }
    };
    const toml = await read('initdata.toml');
    const recordText = (await read(RECORD))?.toString('utf8');
    const stored = recordText === undefined ? undefined : parseStored(recordText, path.join(this.sub, RECORD));
    const record = stored ? parseRecord(stored.doc) : undefined;
    const live: KubeOutLive = {
      ...(toml ? { toml: 'sha256:' + createHash('sha256').update(toml).digest('hex') } : {}),
      ...(recordText !== undefined ? { recordText } : {}),
    };
    return { live, ...(record ? { record } : {}) };
  }

  check(record: AppliedRecord, live: KubeOutLive): DriftItem[] {
    const id = (record.targets[this.id] as { id?: string } | undefined)?.id;
    return id && live.toml === id ? [] : [{ target: this.id, object: 'coco-initdata/initdata.toml', what: live.toml ? 'changed' : 'missing' }];
  }

  plan(desired: DesiredOutputs, observed: Observed<KubeOutLive>): TargetPlan<KubeOutPlanDetail> {
    if (!desired.initdata) throw new InternalError('initdata is configured but the process stage produced none');
    const write = observed.live.toml !== desired.initdata.id || !observed.record;
    return {
      target: this.id,
      changes: write,
      drift: [],
      actions: write ? [`write ${this.sub}/ (initdata ${desired.initdata.id})`] : [],
      detail: { where: this.where, write, initdata: desired.initdata },
    };
  }

  async apply(plan: TargetPlan<KubeOutPlanDetail>, _record: AppliedRecord, opts: { dryRun: boolean }): Promise<TargetApplied<{ files: string[] }>> {
    const { initdata, write } = plan.detail;
    if (!write || opts.dryRun) return { wrote: false, details: { id: initdata.id }, report: { files: [] } };
    const files = await writeInitdataManifests(this.dir, this.config, initdata);
    return { wrote: true, details: { id: initdata.id }, report: { files } };
  }

  async record(record: AppliedRecord | undefined, _run: RunStatus, observed: Observed<KubeOutLive> | undefined): Promise<boolean> {
    if (!record?.targets[this.id]) return false;
    const text = JSON.stringify(record, null, 2) + '\n';
    if (observed?.live.recordText === text) return false;
    await writeFileAtomic(path.join(this.sub, RECORD), text);
    return true;
  }

  async tidy(): Promise<string[]> {
    return [];
  }

  rollbackProblem(): string | undefined {
    return 'the CoCo initdata manifests keep no earlier initdata; write the earlier payload instead';
  }

  rollback(): Promise<TargetApplied<{ files: string[] }>> {
    return Promise.reject(new PublishError(this.rollbackProblem()!));
  }

  close(): void {}
}
