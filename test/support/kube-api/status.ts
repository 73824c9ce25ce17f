/**
 * `Status` bodies as the API server sends them (k8s.io/apimachinery metav1.Status): every error a
 * client sees carries kind, apiVersion, status, message, reason, code and, where the server gives
 * them, details {name, group, kind, causes, retryAfterSeconds}.
 */
export interface StatusCause {
  reason: string;
  message: string;
  field?: string;
}

export interface StatusBody {
  kind: 'Status';
  apiVersion: 'v1';
  metadata: Record<string, never>;
  status: 'Success' | 'Failure';
  message?: string;
  reason?: string;
  details?: { name?: string; group?: string; kind?: string; causes?: StatusCause[]; retryAfterSeconds?: number };
  code: number;
}

export class ApiError extends Error {
  constructor(readonly body: StatusBody) {
    super(body.message);
  }
}

function failure(code: number, reason: string, message: string, details?: StatusBody['details']): ApiError {
  return new ApiError({ kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, ...(details ? { details } : {}), code });
}

export interface Target {
  group: string;
  resource: string;
  name?: string;
}

const qualified = (t: Target): string => (t.group ? `${t.resource}.${t.group}` : t.resource);

export const status = {
  notFound: (t: Target) => failure(404, 'NotFound', `${qualified(t)} "${t.name}" not found`, { name: t.name, group: t.group || undefined, kind: t.resource }),
  alreadyExists: (t: Target) =>
    failure(409, 'AlreadyExists', `${qualified(t)} "${t.name}" already exists`, { name: t.name, group: t.group || undefined, kind: t.resource }),
  modified: (t: Target) =>
    failure(
      409,
      'Conflict',
      `Operation cannot be fulfilled on ${qualified(t)} "${t.name}": the object has been modified; please apply your changes to the latest version and try again`,
      { name: t.name, group: t.group || undefined, kind: t.resource },
    ),
  applyConflict: (_t: Target, causes: StatusCause[]) =>
    failure(
      409,
      'Conflict',
      `Apply failed with ${causes.length} conflict${causes.length === 1 ? '' : 's'}: ${causes.map((c) => `${c.message}: ${c.field}`).join(', ')}`,
      { causes },
    ),
  invalid: (kind: string, t: Target, causes: StatusCause[]) =>
    failure(422, 'Invalid', `${kind} "${t.name}" is invalid: ${causes.map((c) => `${c.field}: ${c.message}`).join(', ')}`, {
      name: t.name,
      group: t.group || undefined,
      kind,
      causes,
    }),
  forbidden: (user: string, verb: string, t: Target, namespace: string) =>
    failure(
      403,
      'Forbidden',
      `${qualified(t)}${t.name ? ` "${t.name}"` : ''} is forbidden: User "${user}" cannot ${verb} resource "${t.resource}" in API group "${t.group}" in the namespace "${namespace}"`,
      { name: t.name, group: t.group || undefined, kind: t.resource },
    ),
  unauthorized: () => failure(401, 'Unauthorized', 'Unauthorized'),
  badRequest: (message: string) => failure(400, 'BadRequest', message),
  unsupportedMediaType: (type: string) =>
    failure(
      415,
      'UnsupportedMediaType',
      `the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml (got ${JSON.stringify(type)})`,
    ),
  methodNotAllowed: (method: string) => failure(405, 'MethodNotAllowed', `the server does not allow this method on the requested resource (${method})`),
  tooManyRequests: (retryAfter: number) =>
    failure(429, 'TooManyRequests', 'the server has received too many requests and has asked us to try again later', { retryAfterSeconds: retryAfter }),
  internal: (message = 'Internal error occurred: etcdserver: request timed out') => failure(500, 'InternalError', message),
  unavailable: () => failure(503, 'ServiceUnavailable', 'the server is currently unable to handle the request'),
};

export function success(t: Target): StatusBody {
  return {
    kind: 'Status',
    apiVersion: 'v1',
    metadata: {},
    status: 'Success',
    details: { name: t.name, group: t.group || undefined, kind: t.resource },
    code: 200,
  };
}
