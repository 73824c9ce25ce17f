/**
 * TSL selections → PKCS#12 trust store + Keycloak's meta JSON. Keycloak matches meta entries to store
 * entries by friendlyName, and Java lower-cases PKCS#12 aliases, so names must be unique
 * case-insensitively; a clash (two different certificates under one service name) gets a numbered
 * suffix in both files, and a warning.
 */
import { encodePkcs12TrustStore } from '../pki/pkcs12.js';
import type { TrustEntry } from './tsl/index.js';

export interface NamedStore {
  p12: Buffer;
  entries: TrustEntry[];
  warnings: string[];
}

export function uniqueNames(entries: TrustEntry[]): { entries: TrustEntry[]; warnings: string[] } {
  const used = new Set<string>();
  const warnings: string[] = [];
  const out = entries.map((e) => {
    let name = e.friendlyName === '' ? `certificate ${e.sha256.slice(0, 16)}` : e.friendlyName;
    if (used.has(name.toLowerCase())) {
      let n = 2;
      while (used.has(`${name} #${n}`.toLowerCase())) n++;
      warnings.push(`two certificates share the name "${name}"; the second is stored as "${name} #${n}"`);
      name = `${name} #${n}`;
    }
    used.add(name.toLowerCase());
    return { ...e, friendlyName: name };
  });
  return { entries: out, warnings };
}

export function encodeTrustStore(entries: TrustEntry[], password: string): NamedStore {
  const named = uniqueNames(entries);
  const p12 = encodePkcs12TrustStore(
    named.entries.map((e) => ({ certificate: e.certificate, friendlyName: e.friendlyName })),
    password,
  );
  return { p12, entries: named.entries, warnings: named.warnings };
}

/** `[{friendlyName, tspName, revokedSince?}]`, two-space indented, newline-terminated, stable. */
export function trustMetaJson(entries: TrustEntry[]): Buffer {
  const meta = entries.map((e) => ({ friendlyName: e.friendlyName, tspName: e.tspName, ...(e.revokedSince ? { revokedSince: e.revokedSince } : {}) }));
  return Buffer.from(JSON.stringify(meta, null, 2) + '\n');
}
