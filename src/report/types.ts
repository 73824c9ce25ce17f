import type { Plan } from '../plan/index.js';
import type { ProcessorSummary } from '../process/types.js';
import type { PublishResult } from '../publish/index.js';
import type { InitdataRunReport } from '../publish/coco/summary.js';
import type { Freshness } from '../plan/freshness.js';
import type { ImageCheck, VerificationReport } from '../verify/types.js';

export type Outcome = 'applied' | 'drift-corrected' | 'rolled-back' | 'no-changes' | 'up-to-date' | 'dry-run' | 'verified' | 'failed';

export interface RunReport {
  command: 'run' | 'verify';
  outcome: Outcome;
  exitCode: number;
  dryRun: false | 'client' | 'server';
  source: { reference?: string; digest?: string; revision?: string };
  targets: { volume?: string; kubeOut?: string; kube?: string };
  image?: ImageCheck;
  verification?: VerificationReport;
  /** What the processors derived (truststores, keys, validated files). */
  processed?: ProcessorSummary[];
  /** Earliest certificate expiry and TSL NextUpdate of what this run verified and derived. */
  freshness?: Freshness;
  plan?: Plan;
  published?: PublishResult;
  /** Confidential Containers initdata: the document (decoded), its reference values, what changed. */
  initdata?: InitdataRunReport;
  warnings: string[];
  error?: { kind: string; message: string; hint?: string; file?: string };
  durationMs: number;
}
