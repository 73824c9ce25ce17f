/**
 * An API failure in words an operator can act on — one mapping for every target that talks to the
 * API (the ConfigMap/Secret target, the CoCo initdata target). API messages name verb, resource and
 * namespace themselves; the hint says where the fix is.
 */
import { PublishError, errorMessage } from '../../errors.js';
import { ApiRequestError } from './http.js';

export interface ApiErrorContext {
  /** `(origin, namespace x)`: which server, and where. */
  where: string;
  /** What to do when the server does not answer. */
  unreachableHint: string;
  /** Where the missing permission is granted. */
  forbiddenHint: string;
  /** What another field manager owns. */
  conflictHint: string;
  /** The namespace our objects go to, when a missing one is ours to name. */
  namespace?: string;
}

export function describeApiError(err: unknown, ctx: ApiErrorContext): { detail: string; hint?: string } {
  if (err instanceof PublishError) return { detail: err.message, hint: err.hint };
  if (!(err instanceof ApiRequestError)) return { detail: errorMessage(err) };
  if (err.status === 0) return { detail: `no answer from the API server ${ctx.where}: ${err.message}`, hint: ctx.unreachableHint };
  if (err.status === 401) return { detail: `401 Unauthorized ${ctx.where}`, hint: 'the token or client certificate was refused' };
  if (err.status === 403) return { detail: err.apiStatus?.message ?? '403 Forbidden', hint: ctx.forbiddenHint };
  if (isFieldConflict(err)) return { detail: err.apiStatus?.message ?? 'conflict', hint: ctx.conflictHint };
  if (ctx.namespace && err.status === 404 && /namespaces? "[^"]*" not found/.test(err.apiStatus?.message ?? ''))
    return { detail: err.apiStatus!.message!, hint: `create namespace ${ctx.namespace} first, or pass --namespace` };
  return { detail: `${err.status} ${err.reason ?? ''}: ${err.apiStatus?.message ?? err.message}` };
}

export function isFieldConflict(err: ApiRequestError): boolean {
  return err.status === 409 && (err.apiStatus?.details?.causes ?? []).some((c) => c.reason === 'FieldManagerConflict');
}
