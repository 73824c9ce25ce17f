/**
 * The parts of an ETSI TS 119 612 trust-service status list the processors use, read from the DOM.
 * Only each service's current ServiceInformation counts; ServiceHistory is ignored on purpose (a
 * past status must never make a CA trusted today).
 */
import { VerifyError } from '../../errors.js';
import type { XElement } from './dom.js';
import { NS_TSL, child, children, text, type TslDocument } from './xml.js';

export interface TslService {
  tspName: string;
  serviceName: string;
  type: string;
  status: string;
  statusStartingTime?: Date;
  /** StatusStartingTime as written in the list (published as `revokedSince`). */
  statusStartingTimeText?: string;
  /** DER of every X509Certificate in the ServiceDigitalIdentity, in document order. */
  certificates: Buffer[];
  /** ServiceInformationExtensions as (OID, value) pairs. */
  extensions: { oid: string; value: string }[];
}

export interface TslModel {
  sequenceNumber?: string;
  issued?: Date;
  nextUpdate?: Date;
  services: TslService[];
}

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

export function readTsl({ doc }: TslDocument, file: string): TslModel {
  const root = doc.documentElement!;
  const scheme = child(root, NS_TSL, 'SchemeInformation');
  const nextUpdateText = text(child(child(scheme, NS_TSL, 'NextUpdate'), NS_TSL, 'dateTime'));
  const issuedText = text(child(scheme, NS_TSL, 'ListIssueDateTime'));
  const services: TslService[] = [];
  const providers = children(child(root, NS_TSL, 'TrustServiceProviderList'), NS_TSL, 'TrustServiceProvider');
  for (const tsp of providers) {
    const tspName = firstName(child(child(tsp, NS_TSL, 'TSPInformation'), NS_TSL, 'TSPName')) ?? '';
    for (const svc of children(child(tsp, NS_TSL, 'TSPServices'), NS_TSL, 'TSPService')) {
      const info = child(svc, NS_TSL, 'ServiceInformation');
      if (!info) continue;
      const certificates: Buffer[] = [];
      for (const id of children(child(info, NS_TSL, 'ServiceDigitalIdentity'), NS_TSL, 'DigitalId')) {
        for (const x of children(id, NS_TSL, 'X509Certificate')) {
          const b64 = (x.textContent ?? '').replace(/\s+/g, '');
          // Buffer.from skips junk silently; a damaged certificate must be noticed, not half-read.
          if (!BASE64.test(b64) || b64.length === 0)
            throw new VerifyError(`${file}: service "${clip(text(info) ?? '')}" has an X509Certificate that is not base64`, file);
          certificates.push(Buffer.from(b64, 'base64'));
        }
      }
      const extensions: TslService['extensions'] = [];
      for (const ext of children(child(info, NS_TSL, 'ServiceInformationExtensions'), NS_TSL, 'Extension')) {
        const oid = text(child(ext, NS_TSL, 'ExtensionOID'));
        const value = text(child(ext, NS_TSL, 'ExtensionValue'));
        if (oid !== undefined && value !== undefined) extensions.push({ oid, value });
      }
      const starting = text(child(info, NS_TSL, 'StatusStartingTime'));
      services.push({
        tspName,
        serviceName: firstName(child(info, NS_TSL, 'ServiceName')) ?? '',
        type: text(child(info, NS_TSL, 'ServiceTypeIdentifier')) ?? '',
        status: text(child(info, NS_TSL, 'ServiceStatus')) ?? '',
        statusStartingTime: starting === undefined ? undefined : parseDateTime(starting, file, 'StatusStartingTime'),
        statusStartingTimeText: starting,
        certificates,
        extensions,
      });
    }
  }
  return {
    sequenceNumber: text(child(scheme, NS_TSL, 'TSLSequenceNumber')),
    issued: issuedText === undefined ? undefined : parseDateTime(issuedText, file, 'ListIssueDateTime'),
    nextUpdate: nextUpdateText === undefined ? undefined : parseDateTime(nextUpdateText, file, 'NextUpdate'),
    services,
  };
}

/** The first Name of a multilingual name list (gematik writes one, xml:lang="DE"). */
function firstName(list: XElement | undefined): string | undefined {
  return text(child(list, NS_TSL, 'Name'));
}

/** xsd:dateTime with an explicit zone; a date without one would mean different instants on different nodes. */
function parseDateTime(value: string, file: string, what: string): Date {
  if (!/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/.test(value) || Number.isNaN(Date.parse(value))) {
    throw new VerifyError(`${file}: ${what} ${JSON.stringify(clip(value))} is not an xsd:dateTime with a time zone`, file);
  }
  return new Date(value);
}

function clip(s: string): string {
  return s.length > 80 ? `${s.slice(0, 77)}...` : s;
}
