/**
 * Verify stage: every rule of the config against the staged payload. All checks run (so the report
 * names every problem), and the caller publishes nothing unless all of them passed.
 */
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import picomatch from 'picomatch';
import { trustSetFiles, type Config, type VerifyRule } from '../config/index.js';
import { ConfigError, VerifyError, errorMessage } from '../errors.js';
import { loadCertificates } from '../pki/certs.js';
import { pathExists, walkTree, type TreeEntry } from '../util/fs.js';
import { verifyAuthenticodeCab } from './authenticode.js';
import { verifyCmsAttached, verifyCmsDetached, type TrustAnchors } from './cms.js';
import { expiryWarnings } from './expiry.js';
import { MANIFEST_FILE, verifyPayloadManifest } from './payload-manifest.js';
export { readRevision } from './payload-manifest.js';
import type { FileCheck, ManifestReport, VerificationReport } from './types.js';

export type { FileCheck, ImageCheck, ManifestReport, ProvenTime, SignerReport, VerificationReport } from './types.js';
export { verifyImage, type ImagePolicySettings } from './image.js';
export { expiryWarnings } from './expiry.js';
export { downgradeProblem, lastProvenTime, provenTime } from './downgrade.js';

const DETACHED_SUFFIX = '.p7s';

/** Certificates of a trust set that ships with the tool (`config/trust/<name>/` in the package). */
export { builtinTrustDir } from '../config/index.js';

/**
 * Load every trust set a rule names; an unreadable anchor file is a configuration error. A set defined
 * under `trust:` wins over a built-in one of the same name, so an operator can pin other roots.
 */
export async function loadTrustSets(config: Config): Promise<Map<string, TrustAnchors>> {
  const sets = new Map<string, TrustAnchors>();
  const needed = new Set(config.verify.flatMap((r) => r.trust));
  for (const name of needed) {
    const files = trustSetFiles(config, name);
    if (!files) throw new ConfigError(`trust set "${name}" has no certificate files configured`);
    try {
      // Every certificate of a configured set is pinned as an anchor; intermediates come from the signature.
      sets.set(name, { anchors: await loadCertificates(files), intermediates: [] });
    } catch (err) {
      throw new ConfigError(`trust set "${name}": ${errorMessage(err)}`);
    }
  }
  return sets;
}

/** The report plus non-fatal findings (unlisted files under policy "warn", chains that expire soon …). */
export async function verifyPayload(
  stagingRoot: string,
  config: Config,
  trustSets: Map<string, TrustAnchors>,
  now: Date = new Date(),
): Promise<VerificationReport & { warnings: string[] }> {
  const warnings: string[] = [];
  const checks: FileCheck[] = [];
  // Before the signature rules: an attached CMS file is replaced by its content below, and the
  // manifest lists the bytes as shipped.
  // One walk serves both: replacing attached CMS files changes contents, never names.
  const tree = await walkTree(stagingRoot);
  const manifest = await checkManifest(stagingRoot, config.manifest, checks, warnings, tree);
  const files = tree.filter((e) => e.type === 'file').map((e) => e.path);
  const covered = new Set<string>();
  for (const rule of config.verify) {
    const isMatch = picomatch(rule.files, { dot: true });
    const signatureFiles = rule.kind === 'cms' && rule.signature === 'detached';
    const matched = files.filter((f) => isMatch(f) && !(signatureFiles && f.endsWith(DETACHED_SUFFIX)));
    if (matched.length === 0 && rule.required) {
      checks.push({ file: rule.files.join(', '), kind: kindOf(rule), ok: false, signers: [], reason: 'required file is missing from the payload' });
    }
    for (const file of matched) {
      covered.add(file);
      if (signatureFiles) covered.add(file + DETACHED_SUFFIX);
      checks.push(await checkFile(stagingRoot, file, rule, trustSets, now));
    }
  }
  const unverified = files.filter((f) => !covered.has(f));
  warnings.push(...expiryWarnings(checks, undefined, now, config.expiryWarningDays));
  return { checks, unverified, ...(manifest ? { manifest } : {}), warnings };
}

/** The `.manifest` policy: its file checks join `checks`; a missing or malformed manifest is one failed check. */
async function checkManifest(
  root: string,
  policy: Config['manifest'],
  checks: FileCheck[],
  warnings: string[],
  tree: TreeEntry[],
): Promise<ManifestReport | undefined> {
  if (policy.check === 'off') return undefined;
  if (policy.check === 'optional' && !(await pathExists(path.join(root, MANIFEST_FILE)))) {
    warnings.push(`payload has no ${MANIFEST_FILE}; file hashes not checked (manifest check is optional)`);
    return { checked: false, reason: `payload has no ${MANIFEST_FILE}` };
  }
  try {
    const r = await verifyPayloadManifest(root, { unlisted: policy.unlisted }, tree);
    checks.push(...r.checks);
    warnings.push(...r.warnings);
    return {
      checked: true,
      listed: r.listed,
      unlisted: r.unlisted,
      ...(r.revision !== undefined ? { revision: r.revision } : {}),
      revisionListed: r.revisionListed,
    };
  } catch (err) {
    if (!(err instanceof VerifyError)) throw err;
    checks.push({ file: MANIFEST_FILE, kind: 'manifest', ok: false, signers: [], reason: err.message });
    return { checked: false, reason: err.message };
  }
}

async function checkFile(root: string, file: string, rule: VerifyRule, trustSets: Map<string, TrustAnchors>, now: Date): Promise<FileCheck> {
  const kind = kindOf(rule);
  const abs = path.join(root, file);
  try {
    const trust = mergeTrust(rule.trust.map((t) => trustSets.get(t)!));
    const options = { requiredEkus: rule.eku };
    if (rule.kind === 'authenticode') {
      const { signers, timestamp } = await verifyAuthenticodeCab(abs, trust, file, now, options);
      return timestamp ? { file, kind, ok: true, signers, timestamp } : { file, kind, ok: true, signers };
    }
    if (rule.signature === 'detached') {
      const sigPath = abs + DETACHED_SUFFIX;
      if (!(await pathExists(sigPath))) throw new VerifyError(`detached signature ${file}${DETACHED_SUFFIX} is missing`, file);
      const signers = await verifyCmsDetached(abs, await readFile(sigPath), trust, file, now, options);
      return { file, kind, ok: true, signers };
    }
    const { signers, content } = await verifyCmsAttached(await readFile(abs), trust, file, now, options);
    // From here on the staged file is the verified content, so outputs never carry the envelope.
    await writeFile(abs, content);
    return { file, kind, ok: true, signers };
  } catch (err) {
    if (!(err instanceof VerifyError)) throw err;
    return { file, kind, ok: false, signers: [], reason: err.message };
  }
}

function kindOf(rule: VerifyRule): 'cms-detached' | 'cms-attached' | 'authenticode' {
  return rule.kind === 'authenticode' ? 'authenticode' : rule.signature === 'detached' ? 'cms-detached' : 'cms-attached';
}

function mergeTrust(sets: TrustAnchors[]): TrustAnchors {
  return { anchors: sets.flatMap((s) => s.anchors), intermediates: sets.flatMap((s) => s.intermediates) };
}

/** Pure: the error that stops the run when any check failed. */
export function verificationFailure(report: VerificationReport): VerifyError | undefined {
  const failed = report.checks.filter((c) => !c.ok);
  if (failed.length === 0) return undefined;
  const first = failed[0]!;
  const reason = first.reason ?? 'verification failed';
  const msg = reason.startsWith(first.file) ? reason : `${first.file}: ${reason}`;
  return new VerifyError(failed.length === 1 ? msg : `${msg} (and ${failed.length - 1} more failed check${failed.length > 2 ? 's' : ''})`, first.file);
}
