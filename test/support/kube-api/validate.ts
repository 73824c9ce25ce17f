/**
 * The validation the real API server applies to the kinds the double serves (names, labels,
 * annotations, ConfigMap/Secret keys and the 1 MiB limit), as 422 causes. Only rules that the
 * real server enforces are here, so the double never accepts what a cluster would refuse.
 */
import type { StatusCause } from './status.js';

type Obj = Record<string, any>;

const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const QUALIFIED_NAME = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;
const CONFIG_KEY = /^[-._a-zA-Z0-9]+$/;
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
/** etcd's request limit as the API server enforces it for ConfigMap and Secret payloads. */
export const MAX_DATA_BYTES = 1024 * 1024;
const MAX_ANNOTATION_BYTES = 256 * 1024;

export function dnsSubdomainProblem(name: unknown): string | undefined {
  if (typeof name !== 'string' || name === '') return 'Required value: name or generateName is required';
  if (name.length > 253) return 'Invalid value: must be no more than 253 characters';
  if (!DNS1123_SUBDOMAIN.test(name))
    return `Invalid value: "${name}": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character`;
  return undefined;
}

export function namespaceProblem(ns: string): string | undefined {
  return ns.length <= 63 && DNS1123_LABEL.test(ns)
    ? undefined
    : `Invalid value: "${ns}": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-'`;
}

function qualifiedNameProblem(key: string): string | undefined {
  const parts = key.split('/');
  if (parts.length > 2) return "a qualified name must consist of alphanumeric characters, '-', '_' or '.', with an optional DNS subdomain prefix and '/'";
  const [prefix, name] = parts.length === 2 ? parts : [undefined, parts[0]!];
  if (prefix !== undefined && (prefix.length > 253 || !DNS1123_SUBDOMAIN.test(prefix))) return 'prefix part must be a lowercase RFC 1123 subdomain';
  if (name.length === 0 || name.length > 63 || !QUALIFIED_NAME.test(name))
    return "name part must consist of alphanumeric characters, '-', '_' or '.', at most 63 characters";
  return undefined;
}

function validateMetadata(obj: Obj, causes: StatusCause[]): void {
  const meta = obj.metadata ?? {};
  const nameProblem = dnsSubdomainProblem(meta.name);
  if (nameProblem) causes.push({ reason: 'FieldValueInvalid', message: nameProblem, field: 'metadata.name' });
  for (const [k, v] of Object.entries((meta.labels ?? {}) as Record<string, unknown>)) {
    const p = qualifiedNameProblem(k);
    if (p) causes.push({ reason: 'FieldValueInvalid', message: `Invalid value: "${k}": ${p}`, field: 'metadata.labels' });
    if (typeof v !== 'string' || v.length > 63 || (v !== '' && !QUALIFIED_NAME.test(v))) {
      causes.push({
        reason: 'FieldValueInvalid',
        message: `Invalid value: ${JSON.stringify(v)}: a valid label value must be 63 characters or less, alphanumeric, '-', '_' or '.'`,
        field: 'metadata.labels',
      });
    }
  }
  let annotationBytes = 0;
  for (const [k, v] of Object.entries((meta.annotations ?? {}) as Record<string, unknown>)) {
    const p = qualifiedNameProblem(k.toLowerCase());
    if (p) causes.push({ reason: 'FieldValueInvalid', message: `Invalid value: "${k}": ${p}`, field: 'metadata.annotations' });
    if (typeof v !== 'string') causes.push({ reason: 'FieldValueInvalid', message: 'annotation values must be strings', field: 'metadata.annotations' });
    annotationBytes += k.length + String(v).length;
  }
  if (annotationBytes > MAX_ANNOTATION_BYTES)
    causes.push({ reason: 'FieldValueTooLong', message: `Too long: must have at most ${MAX_ANNOTATION_BYTES} bytes`, field: 'metadata.annotations' });
}

function keyProblem(key: string): string | undefined {
  if (key.length > 253) return 'must be no more than 253 characters';
  if (!CONFIG_KEY.test(key)) return "a valid config key must consist of alphanumeric characters, '-', '_' or '.'";
  if (key === '.' || key === '..') return "must not be '.' or '..'";
  return undefined;
}

function validateConfigMap(obj: Obj, causes: StatusCause[]): void {
  let total = 0;
  const data = (obj.data ?? {}) as Record<string, unknown>;
  const binary = (obj.binaryData ?? {}) as Record<string, unknown>;
  for (const [k, v] of Object.entries(data)) {
    const p = keyProblem(k);
    if (p) causes.push({ reason: 'FieldValueInvalid', message: `Invalid value: "${k}": ${p}`, field: 'data' });
    if (typeof v !== 'string') causes.push({ reason: 'FieldValueInvalid', message: 'values must be strings', field: `data[${k}]` });
    else total += Buffer.byteLength(v);
  }
  for (const [k, v] of Object.entries(binary)) {
    const p = keyProblem(k);
    if (p) causes.push({ reason: 'FieldValueInvalid', message: `Invalid value: "${k}": ${p}`, field: 'binaryData' });
    if (k in data) causes.push({ reason: 'FieldValueDuplicate', message: `Duplicate value: "${k}"`, field: 'data' });
    total += base64Bytes(v, `binaryData[${k}]`, causes);
  }
  if (total > MAX_DATA_BYTES) causes.push({ reason: 'FieldValueTooLong', message: `Too long: must have at most ${MAX_DATA_BYTES} bytes`, field: '[]' });
}

function validateSecret(obj: Obj, causes: StatusCause[]): void {
  let total = 0;
  for (const [k, v] of Object.entries((obj.data ?? {}) as Record<string, unknown>)) {
    const p = keyProblem(k);
    if (p) causes.push({ reason: 'FieldValueInvalid', message: `Invalid value: "${k}": ${p}`, field: 'data' });
    total += base64Bytes(v, `data[${k}]`, causes);
  }
  if (total > MAX_DATA_BYTES) causes.push({ reason: 'FieldValueTooLong', message: `Too long: must have at most ${MAX_DATA_BYTES} bytes`, field: 'data' });
  if (obj.stringData !== undefined)
    causes.push({ reason: 'FieldValueNotSupported', message: 'stringData is not implemented by the test double', field: 'stringData' });
}

function validateEvent(obj: Obj, namespace: string, causes: StatusCause[]): void {
  const io = obj.involvedObject;
  if (!io || typeof io !== 'object') causes.push({ reason: 'FieldValueRequired', message: 'Required value', field: 'involvedObject' });
  else if (io.namespace !== namespace)
    causes.push({
      reason: 'FieldValueInvalid',
      message: `Invalid value: "${io.namespace}": does not match event.namespace`,
      field: 'involvedObject.namespace',
    });
  if (obj.type !== 'Normal' && obj.type !== 'Warning')
    causes.push({ reason: 'FieldValueNotSupported', message: `Unsupported value: "${obj.type}": supported values: "Normal", "Warning"`, field: 'type' });
  if (typeof obj.reason !== 'string' || obj.reason === '') causes.push({ reason: 'FieldValueRequired', message: 'Required value', field: 'reason' });
}

function validateWorkload(obj: Obj, causes: StatusCause[]): void {
  if (!obj.spec?.selector) causes.push({ reason: 'FieldValueRequired', message: 'Required value', field: 'spec.selector' });
  if (!Array.isArray(obj.spec?.template?.spec?.containers) || obj.spec.template.spec.containers.length === 0) {
    causes.push({ reason: 'FieldValueRequired', message: 'Required value', field: 'spec.template.spec.containers' });
  }
}

function base64Bytes(v: unknown, field: string, causes: StatusCause[]): number {
  // The real server fails to decode a bad []byte with 400 before validation; a 422 cause here is
  // close enough for a client, and what matters is that the value is refused.
  if (typeof v !== 'string' || !BASE64.test(v)) {
    causes.push({ reason: 'FieldValueInvalid', message: 'illegal base64 data', field });
    return 0;
  }
  return Buffer.from(v, 'base64').length;
}

/** 422 causes for an object about to be stored (after create, apply or patch), or []. */
export function validateObject(resource: string, obj: Obj, namespace: string): StatusCause[] {
  const causes: StatusCause[] = [];
  validateMetadata(obj, causes);
  if (resource === 'configmaps') validateConfigMap(obj, causes);
  else if (resource === 'secrets') validateSecret(obj, causes);
  else if (resource === 'events') validateEvent(obj, namespace, causes);
  else validateWorkload(obj, causes);
  return causes;
}
