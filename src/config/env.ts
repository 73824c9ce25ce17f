/**
 * Env twins and boolean parsing, shared by every command line (run/verify/status/rollback in
 * src/cli/, the reload sidecar in src/watch/). Kept out of cli/ so the sidecar and the config stage do
 * not depend on the run command's option table.
 */
import { UsageError } from '../errors.js';

/** `--kube-out` → `ZETA_PROVISION_KUBE_OUT`: the env twin of any command's flag. */
export function envNameOfFlag(flag: string): string {
  return 'ZETA_PROVISION_' + flag.replace(/^--/, '').toUpperCase().replace(/-/g, '_');
}

/**
 * Unknown `ZETA_PROVISION_*` variables are refused, because a typo there silently ignored is exactly
 * the kind of surprise an unattended job must not have.
 */
export function refuseUnknownEnv(env: NodeJS.ProcessEnv, accepted: ReadonlySet<string>, command: string): void {
  const unknown = Object.keys(env).filter((k) => k.startsWith('ZETA_PROVISION_') && !accepted.has(k));
  if (unknown.length > 0) {
    throw new UsageError(`unknown environment variable ${unknown.sort().join(', ')}`, `see zeta-provision ${command} --help for the accepted names`);
  }
}

/** The spellings a boolean value may take, as the README documents them (case-insensitive). */
export const TRUE_WORDS = ['true', 'yes', '1', 'on'] as const;
export const FALSE_WORDS = ['false', 'no', '0', 'off'] as const;

/** true/false, yes/no, 1/0, on/off (any case); an empty value is false (the variable is "unset"). */
export function parseBoolean(raw: unknown, origin: string): boolean {
  const b = parseBooleanOrUndefined(raw);
  if (b === undefined) throw new UsageError(`${origin}: expected true/false, yes/no, 1/0 or on/off, got "${String(raw)}"`);
  return b;
}

export function parseBooleanOrUndefined(raw: unknown): boolean | undefined {
  if (typeof raw === 'boolean') return raw;
  const v = String(raw).trim().toLowerCase();
  if ((TRUE_WORDS as readonly string[]).includes(v)) return true;
  if (v === '' || (FALSE_WORDS as readonly string[]).includes(v)) return false;
  return undefined;
}
