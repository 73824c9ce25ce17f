/**
 * The registered targets, in apply order: volume first, then the manifests directory or the API
 * (DESIGN.md: a later failure leaves earlier steps whole). A new target is one file exporting a
 * TargetFactory plus one line here — see target.ts for the contract.
 */
import { cocoTargetFactory } from './coco/open.js';
import { kubeOutTargetFactory } from './kube-out-target.js';
import { kubeTargetFactory } from './kube/open.js';
import type { TargetFactory } from './target.js';
import { volumeTargetFactory } from './volume/target.js';

// The CoCo initdata target last: its writes depend on no other output, and records are written only
// after every target applied, so a failure anywhere leaves no record claiming the payload applied.
export const FACTORIES: TargetFactory[] = [volumeTargetFactory, kubeOutTargetFactory, kubeTargetFactory, cocoTargetFactory];
