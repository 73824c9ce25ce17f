/** Synthetic ETSI TSLs for tests: services with names, types, status, extensions and certificates. */
import { readFile } from 'node:fs/promises';

export interface FixtureService {
  tsp?: string;
  name: string;
  type?: string;
  status?: 'inaccord' | 'revoked' | string;
  since?: string;
  /** PEM or DER certificate files. */
  certs: Buffer[];
  extensions?: [string, string][];
  /** A ServiceHistory instance with these values (must be ignored). */
  history?: { status: string; extensions: [string, string][] };
}

export const SMCB_EXT: [string, string] = ['1.2.276.0.76.4.77', 'oid_smc_b_aut'];
export const TYPE_CA = 'http://uri.etsi.org/TrstSvc/Svctype/CA/PKC';
export const TYPE_OCSP = 'http://uri.etsi.org/TrstSvc/Svctype/Certstatus/OCSP';

const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

export async function derFromPem(file: string): Promise<Buffer> {
  const text = await readFile(file, 'utf8');
  return Buffer.from(text.replace(/-----[^-]+-----|\s/g, ''), 'base64');
}

function extensionsXml(exts: [string, string][]): string {
  if (exts.length === 0) return '';
  return `<ServiceInformationExtensions>${exts
    .map(
      ([oid, v]) =>
        `<Extension Critical="false"><ns:ExtensionOID xmlns:ns="http://uri.etsi.org/02231/v2#">${esc(oid)}</ns:ExtensionOID><ns:ExtensionValue xmlns:ns="http://uri.etsi.org/02231/v2#">${esc(v)}</ns:ExtensionValue></Extension>`,
    )
    .join('')}</ServiceInformationExtensions>`;
}

export function tslXml(services: FixtureService[], opts: { nextUpdate?: string; signatureTemplate?: boolean; prolog?: string } = {}): string {
  const byTsp = new Map<string, FixtureService[]>();
  for (const s of services) byTsp.set(s.tsp ?? 'Test TSP GmbH', [...(byTsp.get(s.tsp ?? 'Test TSP GmbH') ?? []), s]);
  const tsps = [...byTsp.entries()]
    .map(
      ([tsp, list]) => `
  <TrustServiceProvider>
    <TSPInformation><TSPName><Name xml:lang="DE">${esc(tsp)}</Name></TSPName></TSPInformation>
    <TSPServices>${list
      .map(
        (s) => `
      <TSPService>
        <ServiceInformation>
          <ServiceTypeIdentifier>${esc(s.type ?? TYPE_CA)}</ServiceTypeIdentifier>
          <ServiceName><Name xml:lang="DE">${esc(s.name)}</Name></ServiceName>
          <ServiceDigitalIdentity>${s.certs.map((c) => `<DigitalId><X509Certificate>${c.toString('base64')}</X509Certificate></DigitalId>`).join('')}</ServiceDigitalIdentity>
          <ServiceStatus>http://uri.etsi.org/TrstSvc/Svcstatus/${s.status ?? 'inaccord'}</ServiceStatus>
          <StatusStartingTime>${s.since ?? '2020-01-01T00:00:00Z'}</StatusStartingTime>
          ${extensionsXml(s.extensions ?? [])}
        </ServiceInformation>${
          s.history
            ? `
        <ServiceHistory><ServiceHistoryInstance><ServiceTypeIdentifier>${TYPE_CA}</ServiceTypeIdentifier><ServiceName><Name xml:lang="DE">${esc(s.name)}</Name></ServiceName><ServiceStatus>http://uri.etsi.org/TrstSvc/Svcstatus/${s.history.status}</ServiceStatus><StatusStartingTime>2019-01-01T00:00:00Z</StatusStartingTime>${extensionsXml(s.history.extensions)}</ServiceHistoryInstance></ServiceHistory>`
            : ''
        }
      </TSPService>`,
      )
      .join('')}
    </TSPServices>
  </TrustServiceProvider>`,
    )
    .join('');
  const signature = opts.signatureTemplate
    ? `
  <ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#">
    <ds:SignedInfo>
      <ds:CanonicalizationMethod Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/>
      <ds:SignatureMethod Algorithm="http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256"/>
      <ds:Reference URI="">
        <ds:Transforms>
          <ds:Transform Algorithm="http://www.w3.org/2000/09/xmldsig#enveloped-signature"/>
          <ds:Transform Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/>
        </ds:Transforms>
        <ds:DigestMethod Algorithm="http://www.w3.org/2001/04/xmlenc#sha256"/>
        <ds:DigestValue/>
      </ds:Reference>
    </ds:SignedInfo>
    <ds:SignatureValue/>
    <ds:KeyInfo><ds:X509Data><ds:X509Certificate/></ds:X509Data></ds:KeyInfo>
  </ds:Signature>`
    : '';
  return `<?xml version="1.0" encoding="UTF-8"?>${opts.prolog ?? ''}
<TrustServiceStatusList xmlns="http://uri.etsi.org/02231/v2#" Id="tsl" TSLTag="http://uri.etsi.org/02231/TSLTag">
  <SchemeInformation>
    <TSLVersionIdentifier>3</TSLVersionIdentifier>
    <TSLSequenceNumber>42</TSLSequenceNumber>
    <ListIssueDateTime>2026-01-01T00:00:00Z</ListIssueDateTime>
    <NextUpdate><dateTime>${opts.nextUpdate ?? '2099-01-01T00:00:00Z'}</dateTime></NextUpdate>
  </SchemeInformation>
  <TrustServiceProviderList>${tsps}
  </TrustServiceProviderList>${signature}
</TrustServiceStatusList>`;
}
