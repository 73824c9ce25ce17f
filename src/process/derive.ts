/**
 * Runs the configured processors over the verified staging tree and writes their outputs into a
 * separate directory (never into the payload tree). Nothing here publishes: the outputs become
 * DesiredOutputs entries, and plan/publish treat them like payload files.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { OutputId, ProcessConfig } from '../config/process.js';
import { DEFAULT_OUTPUT_NAMES, OUTPUT_NAME, OUTPUT_NAME_ENV } from '../config/process.js';
import { ConfigError, VerifyError, errorMessage } from '../errors.js';
import { loadCertificates } from '../pki/certs.js';
import type { TreeEntry } from '../util/fs.js';
import { pickInput } from './inputs.js';
import { derivePolicySigner } from './policy-signer.js';
import { type CheckedRoots, checkRootsJson } from './roots-json.js';
import { encodeTrustStore, trustMetaJson } from './truststore.js';
import { processTsl, type TslOptions } from './tsl/index.js';
import type { Certificate } from '../pki/certs.js';
import type { DerivedFile, ProcessOptions, ProcessorSummary } from './types.js';

/** gematik's processor default: the stores hold only public certificates (see src/pki/pkcs12.ts). */
export const DEFAULT_TRUSTSTORE_PASSWORD = 'no_secret_for_trust_only';

export interface Derived {
  files: Map<OutputId, DerivedFile>;
  summaries: ProcessorSummary[];
  warnings: string[];
}

export async function runProcessors(stagingRoot: string, tree: TreeEntry[], config: ProcessConfig, options: ProcessOptions): Promise<Derived> {
  const derivedDir = options.derivedDir;
  await mkdir(derivedDir, { recursive: true, mode: 0o700 });
  const names = outputNames(config, options.resultFilenames ?? {});
  const files = new Map<OutputId, DerivedFile>();
  const summaries: ProcessorSummary[] = [];
  const warnings: string[] = [];
  const now = options.now ?? new Date();
  const emit = async (id: OutputId, bytes: Buffer): Promise<void> => {
    const name = names[id];
    const file = path.join(derivedDir, name);
    await writeFile(file, bytes, { mode: 0o644 });
    files.set(id, { id, name, file, bytes });
  };
  const fromEnv = options.inputFilenames ?? {};
  const input = (configured: string[], kind: 'file' | 'dir', what: string, envName?: string): string => {
    const named = envName ? fromEnv[envName] : undefined;
    const picked = pickInput(tree, named !== undefined ? [named] : configured, kind, named !== undefined ? `${what} (${envName})` : what);
    for (const other of picked.ignored) warnings.push(`${what}: using ${picked.path}; ${other} is also present and was not used`);
    return picked.path;
  };
  let password: string | undefined;
  const truststorePassword = async (): Promise<string> => (password ??= await resolvePassword(config, options));

  // roots.json is read and validated once: its cross-certificates help the TSL signer check, and the
  // roots processor below publishes it. A bad one fails the run with its own reason, whichever asks first.
  let roots: Promise<{ rel: string; bytes: Buffer; checked: CheckedRoots }> | undefined;
  const rootsJson = config.roots
    ? () =>
        (roots ??= (async () => {
          const rel = input(config.roots!.files, 'file', 'roots.json');
          const bytes = await readFile(path.join(stagingRoot, rel));
          return { rel, bytes, checked: checkRootsJson(bytes, rel) };
        })())
    : undefined;

  if (config.tsl) {
    const rel = input(config.tsl.files, 'file', 'TSL', 'TSL_FILENAME');
    const trust = await tslTrust(config, options, rootsJson);
    const tsl = processTsl(await readFile(path.join(stagingRoot, rel)), rel, {
      now,
      warnDays: config.tsl.warnDays,
      graceDays: options.tslGraceDays ?? config.tsl.graceDays,
      ...trust,
    });
    warnings.push(...tsl.warnings);
    const pw = await truststorePassword();
    for (const [sel, store, meta] of [
      [tsl.smcb, 'smcbTruststore', 'smcbMeta'],
      [tsl.ocsp, 'ocspTruststore', 'ocspMeta'],
    ] as const) {
      const named = encodeTrustStore(sel.entries, pw);
      warnings.push(...named.warnings.map((w) => `${rel}: ${w}`));
      await emit(store, named.p12);
      await emit(meta, trustMetaJson(named.entries));
    }
    const sig = tsl.signature.checked
      ? `signature verified (signer ${tsl.signature.signer} → ${tsl.signature.anchor})`
      : `signature NOT checked (${tsl.signature.reason})`;
    summaries.push({
      processor: 'tsl',
      input: rel,
      outputs: [names.smcbTruststore, names.smcbMeta, names.ocspTruststore, names.ocspMeta],
      detail: `sequence ${tsl.sequenceNumber ?? '?'}, next update ${tsl.nextUpdate ?? '?'}, ${tsl.smcb.entries.length} SMC-B CA(s), ${tsl.ocsp.entries.length} OCSP signer(s); ${sig}`,
      signatureChecked: tsl.signature.checked,
      ...(tsl.nextUpdate ? { nextUpdate: tsl.nextUpdate } : {}),
    });
  }

  if (config.tpm) {
    const rel = input(config.tpm.files, 'file', 'TPM roots', 'TPM_CAB_FILENAME');
    if (!options.authenticodeVerified?.has(rel)) {
      throw new VerifyError(
        `${rel}: the TPM processor needs a cabinet whose Authenticode signature was verified, and no verify rule covered this one`,
        rel,
        'add it to a verify rule with kind: authenticode, trust: [microsoft]',
      );
    }
    // Loaded only when configured: the cabinet reader is not needed by other profiles.
    const { deriveTpmTrustStore } = await import('./tpm-store.js');
    const tpm = await deriveTpmTrustStore(await readFile(path.join(stagingRoot, rel)), rel, await truststorePassword(), config.tpm.pemBundle);
    warnings.push(...tpm.warnings);
    await emit('tpmTruststore', tpm.p12);
    if (tpm.pem) await emit('tpmPemBundle', tpm.pem);
    summaries.push({
      processor: 'tpm',
      input: rel,
      outputs: config.tpm.pemBundle ? [names.tpmTruststore, names.tpmPemBundle] : [names.tpmTruststore],
      detail: tpm.detail,
    });
  }

  if (config.policySigner) {
    const rel = input(config.policySigner.dirs, 'dir', 'policy signer');
    const signer = await derivePolicySigner(path.join(stagingRoot, rel), rel, {
      signer: fromEnv.POLICY_SIGNER_CERT_FILENAME ?? config.policySigner.signer,
      now,
    });
    await emit('policySignerKey', Buffer.from(signer.publicKeyPem));
    summaries.push({
      processor: 'policySigner',
      input: signer.signerFile,
      outputs: [names.policySignerKey],
      detail: `${signer.subject} (${signer.keyType}, valid until ${signer.notAfter}) → ${signer.anchor}`,
      notAfter: signer.notAfter,
    });
  }

  if (rootsJson) {
    const { rel, bytes, checked } = await rootsJson();
    const { summary } = checked;
    // Published byte for byte: the PEP parses it; we only vouch that it is consistent.
    await emit('rootsJson', bytes);
    summaries.push({
      processor: 'roots',
      input: rel,
      outputs: [names.rootsJson],
      detail: `${summary.roots} roots, ${summary.first} … ${summary.last}, cross-certificates linked`,
    });
  }
  return { files, summaries, warnings };
}

/**
 * The TSL signer's anchors and helpers: the configured trust sets (or --tsl-trust's) plus extra anchor
 * files, and the payload's roots.json cross-certificates as untrusted intermediates. The mode is
 * `required` whenever an anchor is configured unless turned off explicitly; with none it is not
 * checked (warned).
 */
async function tslTrust(
  config: ProcessConfig,
  options: ProcessOptions,
  rootsJson: (() => Promise<{ checked: CheckedRoots }>) | undefined,
): Promise<Pick<TslOptions, 'signerAnchors' | 'crossCertificates' | 'anchorOrigin' | 'signature'>> {
  const tsl = config.tsl!;
  const mode = options.tslSignature ?? tsl.signature;
  if (mode === 'off') return { signerAnchors: [], signature: 'off' };
  const sets = options.tslTrust ?? tsl.trust;
  const extra = [...tsl.signerAnchors, ...(options.tslSignerAnchors ?? [])];
  const origin = [...sets.map((s) => `trust set ${s}`), ...extra.map((f) => path.basename(f))].join(', ');
  const files = sets.flatMap((s) => options.trustSetFiles?.(s) ?? []);
  let anchors: Certificate[] = [];
  try {
    anchors = files.length + extra.length > 0 ? await loadCertificates([...files, ...extra]) : [];
  } catch (err) {
    throw new ConfigError(`TSL signer anchors: ${errorMessage(err)}`, 'check --tsl-signer-anchor, --tsl-trust and process.tsl in the config');
  }
  if (anchors.length === 0 && mode === 'required') {
    throw new ConfigError(
      'the TSL signature is required but no TSL signer anchor is configured',
      'name a trust set with --tsl-trust (e.g. gematik-rca) or a file with --tsl-signer-anchor',
    );
  }
  // The payload's roots.json carries the cross-certificates between GEM.RCA generations.
  const cross = rootsJson && anchors.length > 0 ? (await rootsJson()).checked.cross : [];
  return { signerAnchors: anchors, crossCertificates: cross, anchorOrigin: origin || 'no anchors' };
}

/** Output id → file name: env (`*_RESULT_FILENAME`) > config `process.names` > gematik's default. */
export function outputNames(config: ProcessConfig, resultFilenames: Record<string, string>): Record<OutputId, string> {
  const names = { ...DEFAULT_OUTPUT_NAMES };
  for (const id of Object.keys(names) as OutputId[]) {
    const fromEnv = resultFilenames[OUTPUT_NAME_ENV[id]];
    if (fromEnv !== undefined && !OUTPUT_NAME.test(fromEnv)) {
      throw new ConfigError(
        `${OUTPUT_NAME_ENV[id]}=${JSON.stringify(fromEnv)} is not a plain file name`,
        'use letters, digits, ., - and _ (no /, no leading dot)',
      );
    }
    names[id] = fromEnv ?? config.names[id] ?? names[id];
  }
  const seen = new Map<string, OutputId>();
  for (const [id, name] of Object.entries(names) as [OutputId, string][]) {
    const other = seen.get(name);
    if (other) throw new ConfigError(`outputs ${other} and ${id} would both be written as ${name}`);
    seen.set(name, id);
  }
  return names;
}

/** TRUSTSTORE_PASS > password file > gematik's default. The value is registered as a secret first. */
async function resolvePassword(config: ProcessConfig, options: ProcessOptions): Promise<string> {
  if (options.truststorePassword !== undefined) {
    options.onSecret?.(options.truststorePassword);
    return options.truststorePassword;
  }
  const file = options.truststorePasswordFile ?? config.truststorePasswordFile;
  if (file) {
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (err) {
      // The message names the file, never its content.
      throw new ConfigError(`cannot read the truststore password file ${file}: ${(err as NodeJS.ErrnoException).code ?? errorMessage(err)}`);
    }
    const pw = text.replace(/\r?\n$/, '');
    if (pw === '') throw new ConfigError(`truststore password file ${file} is empty`);
    options.onSecret?.(pw);
    return pw;
  }
  return DEFAULT_TRUSTSTORE_PASSWORD;
}
