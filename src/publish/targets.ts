/**
 * The registered targets, in apply order: volume first, then the manifests directory or the API
 * (DESIGN.md: a later failure leaves earlier steps whole). A new target is one file exporting a
 * TargetFactory plus one line here — see target.ts for the contract.
 */
import { kubeOutTargetFactory } from './kube-out-target.js';
import { kubeTargetFactory } from './kube/open.js';
import type { TargetFactory } from './target.js';
import { volumeTargetFactory } from './volume/target.js';

export const FACTORIES: TargetFactory[] = [volumeTargetFactory, kubeOutTargetFactory, kubeTargetFactory];
