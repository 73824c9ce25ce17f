/**
 * What a command line (flags and env twins) may set, before config-file values and defaults are
 * applied by resolveSettings. The config stage owns these types; src/cli/ only fills them.
 */
export type DryRunMode = 'client' | 'server';
/** Report format on stdout. */
export type OutputFormat = 'text' | 'json' | 'yaml';
/** Log format on stderr. */
export type LogFormatSetting = 'text' | 'json';
export type ImageSignatureMode = 'required' | 'optional' | 'off';
/** `required`: the TSL's XML signature must chain to a trusted GEM root; `off` skips it (warned on every run). */
export type TslSignatureMode = 'required' | 'off';

/** Values the user set explicitly (by flag or env); absent keys fall through to file and defaults. */
export interface RunFlags {
  config?: string;
  source?: string;
  volume?: string;
  kubeOut?: string;
  namespace?: string;
  kubeconfig?: string;
  context?: string;
  prune?: boolean;
  forceConflicts?: boolean;
  kubeDeadline?: number;
  insecureRegistry?: string[];
  registryCa?: string;
  registryAuthFile?: string;
  platform?: string;
  maxPayloadMib?: number;
  imageTrustChain?: string;
  imageIdentity?: string;
  imageSignature?: ImageSignatureMode;
  dryRun?: DryRunMode | false;
  detailedExitcode?: boolean;
  output?: OutputFormat;
  logFormat?: LogFormatSetting;
  force?: boolean;
  allowDowngrade?: boolean;
  debug?: boolean;
  profile?: string;
  tslGraceDays?: number;
  tslSignerAnchor?: string[];
  tslTrust?: string[];
  tslSignature?: TslSignatureMode;
  truststorePassFile?: string;
}
