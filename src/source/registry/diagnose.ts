/**
 * Turning a failed connection into the fix: plain HTTP where TLS was expected (and the reverse), a CA
 * that does not match the registry's certificate versus no CA at all — naming the certificate's issuer,
 * read from a second, unverified handshake that sends nothing but the TLS hello.
 */
import { connect } from 'node:tls';
import { packageVersion } from '../../config/package-root.js';

export function causeCode(err: unknown): string {
  const cause = (err as { cause?: { code?: unknown } } | undefined)?.cause;
  return typeof cause?.code === 'string' ? cause.code : '';
}

const PROTOCOL = /WRONG_VERSION_NUMBER|EPROTO|PACKET_LENGTH_TOO_LONG|HTTP_REQUEST|UNKNOWN_PROTOCOL/;
const UNTRUSTED = /UNABLE_TO_VERIFY_LEAF_SIGNATURE|SELF_SIGNED_CERT_IN_CHAIN|DEPTH_ZERO_SELF_SIGNED_CERT|UNABLE_TO_GET_ISSUER_CERT/;

/** `CN=Test Registry CA, O=Example` from a certificate's issuer fields. */
function describeName(name: Record<string, string | string[]> | undefined): string {
  if (!name) return 'unknown';
  const parts = ['CN', 'O', 'OU', 'C'].filter((k) => name[k] !== undefined).map((k) => `${k}=${([] as string[]).concat(name[k]!).join('+')}`);
  return parts.length > 0 ? parts.join(', ') : 'unknown';
}

/** The issuer of the certificate `host` presents; undefined when that cannot be learnt quickly. */
export function peerIssuer(host: string, port: number): Promise<string | undefined> {
  return new Promise((resolve) => {
    const servername = /^[\d.]+$|:/.test(host) ? undefined : host;
    const socket = connect({ host: host.replace(/^\[|\]$/g, ''), port, servername, rejectUnauthorized: false, timeout: 3000 }, () => {
      const cert = socket.getPeerCertificate();
      socket.destroy();
      resolve(cert && Object.keys(cert).length > 0 ? describeName(cert.issuer as unknown as Record<string, string>) : undefined);
    });
    socket.on('error', () => resolve(undefined));
    socket.on('timeout', () => {
      socket.destroy();
      resolve(undefined);
    });
  });
}

export interface ConnectionContext {
  /** host[:port] as the operator writes it in --insecure-registry. */
  registry: string;
  url: URL;
  insecure: boolean;
  caFile?: string;
}

/** A hint that names the fix and the flag for a connection that failed before any HTTP answer. */
export async function connectionHint(err: unknown, ctx: ConnectionContext): Promise<string | undefined> {
  const code = causeCode(err);
  if (PROTOCOL.test(code)) {
    return `the registry answers plain HTTP, not TLS: if that is intended, pass --insecure-registry ${ctx.registry} (ZETA_PROVISION_INSECURE_REGISTRY)`;
  }
  if (code === 'ERR_TLS_CERT_ALTNAME_INVALID') {
    return `the registry's certificate does not name ${ctx.url.hostname}: use the host name the certificate was issued for`;
  }
  if (UNTRUSTED.test(code) || /CERT/.test(code)) {
    const issuer = await peerIssuer(ctx.url.hostname, Number(ctx.url.port || 443));
    const by = issuer ? ` (issuer ${issuer})` : '';
    if (ctx.caFile) return `the CA in --registry-ca ${ctx.caFile} does not match the registry's certificate${by}: pass the CA that issued it`;
    return `no CA given for the registry's certificate${by}: pass it with --registry-ca FILE (PROVISIONING_CONTAINER_REGISTRY_CA_FILE)`;
  }
  return undefined;
}

/** An HTTP answer to an https request never arrives; the reverse does: Go's server says so in a 400. */
export function tlsExpected(status: number, body: string): boolean {
  return status === 400 && /HTTP request to an HTTPS server/i.test(body);
}

let agent: string | undefined;
/** `zeta-provision/<version>`, so registry operators can tell our requests apart in their logs. */
export function userAgent(): string {
  if (agent === undefined) {
    try {
      agent = `zeta-provision/${packageVersion()}`;
    } catch {
      agent = 'zeta-provision/unknown';
    }
  }
  return agent;
}
