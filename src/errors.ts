/**
 * Typed errors, one class per exit-code family of DESIGN.md. Every message is one line an operator can
 * act on; it must never contain a secret (passwords, tokens), so callers pass names, not values.
 */
export const ExitCode = {
  ok: 0,
  internal: 1,
  usage: 2,
  verify: 3,
  source: 4,
  publish: 5,
  changesPending: 10,
} as const;
export type ExitCodeValue = (typeof ExitCode)[keyof typeof ExitCode];

export abstract class ZetaError extends Error {
  abstract readonly exitCode: ExitCodeValue;
  /** Machine-readable category for the JSON report. */
  abstract readonly kind: string;
  constructor(
    message: string,
    readonly hint?: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** Bad command line (exit 2). */
export class UsageError extends ZetaError {
  readonly exitCode = ExitCode.usage;
  readonly kind = 'usage';
}

/** Unreadable or invalid configuration (exit 2). */
export class ConfigError extends ZetaError {
  readonly exitCode = ExitCode.usage;
  readonly kind = 'config';
}

/** A signature, digest or trust check failed (exit 3). Nothing may be published after this. */
export class VerifyError extends ZetaError {
  readonly exitCode = ExitCode.verify;
  readonly kind = 'verify';
  constructor(
    message: string,
    /** Payload-relative file the failure is about, when there is one. */
    readonly file?: string,
    hint?: string,
    options?: { cause?: unknown },
  ) {
    super(message, hint, options);
  }
}

/** The payload could not be found, read or unpacked (exit 4). */
export class SourceError extends ZetaError {
  readonly exitCode = ExitCode.source;
  readonly kind = 'source';
}

/** Writing to the volume, the manifests directory or the API failed (exit 5). */
export class PublishError extends ZetaError {
  readonly exitCode = ExitCode.publish;
  readonly kind = 'publish';
}

/** A bug or an unexpected environment failure (exit 1). */
export class InternalError extends ZetaError {
  readonly exitCode = ExitCode.internal;
  readonly kind = 'internal';
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * The one table from how a run ended (the error's kind; its class carries the exit code) to its Event
 * reason and the stage condition it sets (DESIGN.md): the report, the status ConfigMap and the Events all read it, so a registry outage
 * can never be recorded as a publish failure.
 */
export type Stage = 'Fetched' | 'Verified' | 'Published';
export const FAILURES = {
  source: { reason: 'FetchFailed', stage: 'Fetched' },
  verify: { reason: 'VerificationFailed', stage: 'Verified' },
  publish: { reason: 'PublishFailed', stage: 'Published' },
  config: { reason: 'ConfigInvalid', stage: 'Fetched' },
  usage: { reason: 'ConfigInvalid', stage: 'Fetched' },
  internal: { reason: 'InternalError', stage: 'Published' },
} as const satisfies Record<string, { reason: string; stage: Stage }>;
export type FailureKind = keyof typeof FAILURES;

/** Event reasons of runs that changed something (Normal events; an up-to-date run sends none). */
export const SUCCESS_REASONS = { applied: 'Provisioned', 'drift-corrected': 'DriftCorrected', 'rolled-back': 'RolledBack' } as const;
export type EventReason = (typeof FAILURES)[FailureKind]['reason'] | (typeof SUCCESS_REASONS)[keyof typeof SUCCESS_REASONS];

export function failureOf(err: ZetaError): (typeof FAILURES)[FailureKind] {
  return FAILURES[(err.kind in FAILURES ? err.kind : 'internal') as FailureKind];
}
