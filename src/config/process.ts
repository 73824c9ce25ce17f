/**
 * The `process:` section: which processors derive files from the payload, from which payload files,
 * under which output names. Output ids are fixed (they are what `volume.outputs` and ConfigMap
 * `{output: …}` entries refer to); file names default to gematik's and can be renamed in the config
 * or by gematik-style `*_RESULT_FILENAME` variables.
 */
import path from 'node:path';

export const OUTPUT_IDS = [
  'smcbTruststore',
  'smcbMeta',
  'ocspTruststore',
  'ocspMeta',
  'tpmTruststore',
  'tpmPemBundle',
  'policySignerKey',
  'rootsJson',
] as const;
export type OutputId = (typeof OUTPUT_IDS)[number];

/** Warn this many days before a TSL's NextUpdate (process.tsl.warnDays; also the status command's default). */
export const DEFAULT_TSL_WARN_DAYS = 7;

/** gematik's file names. */
export const DEFAULT_OUTPUT_NAMES: Record<OutputId, string> = {
  smcbTruststore: 'smcb-trust-roots.p12',
  smcbMeta: 'smcb-trust-roots-meta.json',
  ocspTruststore: 'ocsp-signers.p12',
  ocspMeta: 'ocsp-signers-meta.json',
  tpmTruststore: 'tpm-trust-roots.p12',
  tpmPemBundle: 'tpm-trust-roots.pem',
  policySignerKey: 'policy-signer.pub',
  rootsJson: 'roots.json',
};

/**
 * Environment variables that rename an output (env beats the config file). The store and key names are
 * gematik's processor variables; gematik has none for the meta files and roots.json, so those are ours.
 */
export const OUTPUT_NAME_ENV: Record<OutputId, string> = {
  smcbTruststore: 'SMB_RESULT_FILENAME',
  smcbMeta: 'SMB_META_RESULT_FILENAME',
  ocspTruststore: 'OCSP_RESULT_FILENAME',
  ocspMeta: 'OCSP_META_RESULT_FILENAME',
  tpmTruststore: 'TPM_RESULT_FILENAME',
  tpmPemBundle: 'TPM_PEM_RESULT_FILENAME',
  policySignerKey: 'POLICY_RESULT_FILENAME',
  rootsJson: 'ROOTS_RESULT_FILENAME',
};

/** gematik's variables naming a processor's input; when set they replace the configured candidates. */
export const INPUT_NAME_ENV = ['TSL_FILENAME', 'TPM_CAB_FILENAME', 'POLICY_SIGNER_CERT_FILENAME'] as const;

export const PROCESSOR_OUTPUTS = {
  tsl: ['smcbTruststore', 'smcbMeta', 'ocspTruststore', 'ocspMeta'],
  tpm: ['tpmTruststore'],
  policySigner: ['policySignerKey'],
  roots: ['rootsJson'],
} as const satisfies Record<string, readonly OutputId[]>;

export interface ProcessConfig {
  /**
   * `trust`: trust-set names the TSL signer must chain to (built-in gematik-rca …); `signerAnchors`:
   * extra certificate files. `signature`: required (default when any anchor is configured) or off.
   */
  tsl?: { files: string[]; warnDays: number; graceDays: number; signerAnchors: string[]; trust: string[]; signature?: 'required' | 'off' };
  /** `pemBundle`: also write the TPM certificates as one PEM file (output tpmPemBundle). */
  tpm?: { files: string[]; pemBundle: boolean };
  policySigner?: { dirs: string[]; signer?: string };
  roots?: { files: string[] };
  /** File holding the truststore password (TRUSTSTORE_PASS wins); absolute. */
  truststorePasswordFile?: string;
  /** Output id → file name, after config renames (env renames are applied at run time). */
  names: Partial<Record<OutputId, string>>;
}

type Fail = (keyPath: (string | number)[], msg: string) => never;
type Helpers = {
  fail: Fail;
  str: (k: (string | number)[], v: unknown) => string;
  strList: (k: (string | number)[], v: unknown) => string[];
  payloadPath: (k: (string | number)[], v: unknown) => string;
};

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
/** A published file name: one path segment, no dot-names (the volume reserves `..*`). */
export const OUTPUT_NAME = /^[A-Za-z0-9_][-._A-Za-z0-9]{0,252}$/;

export function validateProcessSection(raw: unknown, baseDir: string, h: Helpers): ProcessConfig | undefined {
  if (raw === undefined || raw === null) return undefined;
  const { fail, str, strList, payloadPath } = h;
  if (!isObj(raw)) return fail(['process'], 'expected a mapping of processors (tsl, tpm, policySigner, roots)');
  const allowed = ['tsl', 'tpm', 'policySigner', 'roots', 'truststorePasswordFile', 'names'];
  for (const k of Object.keys(raw)) if (!allowed.includes(k)) fail(['process', k], `unknown key (expected one of ${allowed.join(', ')})`);
  const section = (name: string, keys: string[]): Record<string, unknown> | undefined => {
    const v = raw[name];
    if (v === undefined || v === null) return undefined;
    if (!isObj(v)) return fail(['process', name], 'expected a mapping');
    for (const k of Object.keys(v)) if (!keys.includes(k)) fail(['process', name, k], `unknown key (expected one of ${keys.join(', ')})`);
    return v;
  };
  const days = (k: (string | number)[], v: unknown, dflt: number): number => {
    if (v === undefined) return dflt;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > 3650) return fail(k, 'expected a whole number of days (0–3650)');
    return v;
  };
  const files = (k: (string | number)[], v: unknown): string[] => strList(k, v).map((p, i) => payloadPath([...k, i], p));
  const out: ProcessConfig = { names: {} };
  const tsl = section('tsl', ['files', 'warnDays', 'graceDays', 'signerAnchors', 'trust', 'signature']);
  if (tsl) {
    out.tsl = {
      files: files(['process', 'tsl', 'files'], tsl.files),
      warnDays: days(['process', 'tsl', 'warnDays'], tsl.warnDays, DEFAULT_TSL_WARN_DAYS),
      graceDays: days(['process', 'tsl', 'graceDays'], tsl.graceDays, 0),
      signerAnchors:
        tsl.signerAnchors === undefined ? [] : strList(['process', 'tsl', 'signerAnchors'], tsl.signerAnchors).map((f) => path.resolve(baseDir, f)),
      trust: tsl.trust === undefined || (Array.isArray(tsl.trust) && tsl.trust.length === 0) ? [] : strList(['process', 'tsl', 'trust'], tsl.trust),
    };
    if (tsl.signature !== undefined) {
      if (tsl.signature !== 'required' && tsl.signature !== 'off')
        fail(['process', 'tsl', 'signature'], `expected "required" or "off", got "${String(tsl.signature)}"`);
      out.tsl.signature = tsl.signature as 'required' | 'off';
    }
  }
  const tpm = section('tpm', ['files', 'pemBundle']);
  if (tpm) {
    if (tpm.pemBundle !== undefined && typeof tpm.pemBundle !== 'boolean') fail(['process', 'tpm', 'pemBundle'], 'expected true or false');
    out.tpm = { files: files(['process', 'tpm', 'files'], tpm.files), pemBundle: tpm.pemBundle === true };
  }
  const ps = section('policySigner', ['dirs', 'signer']);
  if (ps)
    out.policySigner = {
      dirs: files(['process', 'policySigner', 'dirs'], ps.dirs),
      signer: ps.signer === undefined ? undefined : str(['process', 'policySigner', 'signer'], ps.signer),
    };
  const roots = section('roots', ['files']);
  if (roots) out.roots = { files: files(['process', 'roots', 'files'], roots.files) };
  if (raw.truststorePasswordFile !== undefined)
    out.truststorePasswordFile = path.resolve(baseDir, str(['process', 'truststorePasswordFile'], raw.truststorePasswordFile));
  if (raw.names !== undefined) {
    if (!isObj(raw.names)) fail(['process', 'names'], 'expected a mapping of output id to file name');
    for (const [id, name] of Object.entries(raw.names as Record<string, unknown>)) {
      if (!(OUTPUT_IDS as readonly string[]).includes(id)) fail(['process', 'names', id], `unknown output (expected one of ${OUTPUT_IDS.join(', ')})`);
      const n = str(['process', 'names', id], name);
      if (!OUTPUT_NAME.test(n)) fail(['process', 'names', id], `"${n}" is not a plain file name`);
      out.names[id as OutputId] = n;
    }
  }
  return out;
}

/** Output ids the configured processors produce. */
export function producedOutputs(p: ProcessConfig | undefined): OutputId[] {
  if (!p) return [];
  const ids: OutputId[] = (Object.keys(PROCESSOR_OUTPUTS) as (keyof typeof PROCESSOR_OUTPUTS)[])
    .filter((k) => p[k] !== undefined)
    .flatMap((k) => [...PROCESSOR_OUTPUTS[k]]);
  return p.tpm?.pemBundle ? [...ids, 'tpmPemBundle'] : ids;
}
