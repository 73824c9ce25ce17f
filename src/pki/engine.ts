/**
 * Signature verification and hashing on node:crypto.
 *
 * Why not WebCrypto: it has no brainpool curves (gematik's TI PKI is brainpool ECC) and it wants raw
 * (r||s) ECDSA signatures, while X.509/CMS carry DER. node:crypto (OpenSSL) has both.
 */
import crypto from 'node:crypto';
import { Asn1Error, children, context, raw, readWhole, sequence, smallInteger } from './asn1.js';
import { type AlgorithmIdentifier, algorithmIdentifier } from './x509.js';

/** Digest algorithm OIDs → node:crypto hash names. */
const HASH_BY_OID: Record<string, string> = {
  '1.3.14.3.2.26': 'sha1',
  '2.16.840.1.101.3.4.2.4': 'sha224',
  '2.16.840.1.101.3.4.2.1': 'sha256',
  '2.16.840.1.101.3.4.2.2': 'sha384',
  '2.16.840.1.101.3.4.2.3': 'sha512',
  '2.16.840.1.101.3.4.2.8': 'sha3-256',
  '2.16.840.1.101.3.4.2.9': 'sha3-384',
  '2.16.840.1.101.3.4.2.10': 'sha3-512',
};

/** Signature algorithm OIDs that name their own hash. */
const SIG_ALGS: Record<string, { key: 'rsa' | 'ec'; hash: string }> = {
  '1.2.840.113549.1.1.5': { key: 'rsa', hash: 'sha1' },
  '1.2.840.113549.1.1.14': { key: 'rsa', hash: 'sha224' },
  '1.2.840.113549.1.1.11': { key: 'rsa', hash: 'sha256' },
  '1.2.840.113549.1.1.12': { key: 'rsa', hash: 'sha384' },
  '1.2.840.113549.1.1.13': { key: 'rsa', hash: 'sha512' },
  '1.2.840.10045.4.1': { key: 'ec', hash: 'sha1' },
  '1.2.840.10045.4.3.1': { key: 'ec', hash: 'sha224' },
  '1.2.840.10045.4.3.2': { key: 'ec', hash: 'sha256' },
  '1.2.840.10045.4.3.3': { key: 'ec', hash: 'sha384' },
  '1.2.840.10045.4.3.4': { key: 'ec', hash: 'sha512' },
};
const OID_RSA_ENCRYPTION = '1.2.840.113549.1.1.1';
const OID_RSA_PSS = '1.2.840.113549.1.1.10';
const OID_MGF1 = '1.2.840.113549.1.1.8';
const OID_EC_PUBLIC_KEY = '1.2.840.10045.2.1';
const OID_ED25519 = '1.3.101.112';
const OID_ED448 = '1.3.101.113';

/** node:crypto hash name for a digest AlgorithmIdentifier OID; throws on anything we do not support. */
export function hashNameForOid(oid: string): string {
  const name = HASH_BY_OID[oid];
  if (!name) throw new Error(`unsupported digest algorithm ${oid}`);
  return name;
}

const DER_NULL = Buffer.from([0x05, 0x00]);

/**
 * node:crypto hash name for a digest AlgorithmIdentifier, whose parameters must be absent or NULL
 * (RFC 5754 §2). Anything else in that unsigned field is refused: OpenSSL's decoder rejects malformed
 * parameters (e.g. a zero-length BOOLEAN) that a lenient parser tolerates, and accepting bytes the peer tools
 * refuse is how a payload verifies here but not elsewhere (found by test/verify/fuzz.test.ts).
 */
export function digestAlgorithmName(alg: AlgorithmIdentifier): string {
  if (alg.params && !DER_NULL.equals(raw(alg.params))) throw new Error(`digest algorithm ${alg.oid} has parameters other than NULL`);
  return hashNameForOid(alg.oid);
}

/** Keys by SPKI bytes (the buffer views of one certificate are distinct objects; the DER is the identity). */
const keyCache = new Map<string, crypto.KeyObject>();
const KEY_CACHE_LIMIT = 256;

/** KeyObject for an SPKI, made once per key: chain building asks for the same issuer keys often. */
export function publicKeyFromSpki(spki: Uint8Array): crypto.KeyObject {
  const id = Buffer.from(spki.buffer, spki.byteOffset, spki.byteLength).toString('base64');
  let key = keyCache.get(id);
  if (!key) {
    key = crypto.createPublicKey({ key: Buffer.from(spki), format: 'der', type: 'spki' });
    // Bounded: a hostile certificate set must not grow this without limit.
    if (keyCache.size >= KEY_CACHE_LIMIT) keyCache.clear();
    keyCache.set(id, key);
  }
  return key;
}

interface Scheme {
  /** null for EdDSA, which hashes internally. */
  hash: string | null;
  keyTypes: crypto.KeyType[];
  padding?: number;
  saltLength?: number;
}

/**
 * Work out hash, padding and acceptable key types from a signature AlgorithmIdentifier.
 * `digestHint` is the CMS SignerInfo digestAlgorithm (node name): CMS may name the bare key algorithm
 * (rsaEncryption, id-ecPublicKey) as signature algorithm, and then the digest algorithm is the hash.
 * When the signature algorithm names a hash itself, it must equal the hint: a SignerInfo whose two
 * algorithm fields disagree is malformed, and letting either win would make "which hash was signed"
 * depend on the implementation.
 */
function schemeFor(sigAlg: AlgorithmIdentifier, digestHint?: string): Scheme {
  const oid = sigAlg.oid;
  const agree = (hash: string): string => {
    if (digestHint && digestHint !== hash) {
      throw new Error(`signature algorithm uses ${hash} but the digest algorithm is ${digestHint}`);
    }
    return hash;
  };
  const named = SIG_ALGS[oid];
  if (named) {
    return named.key === 'rsa'
      ? { hash: agree(named.hash), keyTypes: ['rsa'], padding: crypto.constants.RSA_PKCS1_PADDING }
      : { hash: agree(named.hash), keyTypes: ['ec'] };
  }
  if (oid === OID_RSA_ENCRYPTION || oid === OID_EC_PUBLIC_KEY) {
    if (!digestHint) throw new Error(`signature algorithm ${oid} needs a digest algorithm`);
    return oid === OID_RSA_ENCRYPTION
      ? { hash: digestHint, keyTypes: ['rsa'], padding: crypto.constants.RSA_PKCS1_PADDING }
      : { hash: digestHint, keyTypes: ['ec'] };
  }
  if (oid === OID_RSA_PSS) {
    if (!sigAlg.params) throw new Error('RSASSA-PSS without parameters');
    const params = pssParams(sigAlg.params);
    // node:crypto (OpenSSL) uses the signature hash for MGF1 too; a different MGF1 hash cannot be
    // verified faithfully, so refuse instead of verifying something other than what was signed.
    if (params.mgf.oid !== OID_MGF1) throw new Error('RSASSA-PSS with a mask generation other than MGF1');
    if (params.mgfHash !== params.hash) throw new Error('RSASSA-PSS with an MGF1 hash different from the signature hash');
    if (params.trailerField !== 1) throw new Error('RSASSA-PSS with an unsupported trailer field');
    return {
      hash: agree(params.hash),
      keyTypes: ['rsa', 'rsa-pss'],
      padding: crypto.constants.RSA_PKCS1_PSS_PADDING,
      saltLength: params.saltLength,
    };
  }
  if (oid === OID_ED25519) return { hash: null, keyTypes: ['ed25519'] };
  if (oid === OID_ED448) return { hash: null, keyTypes: ['ed448'] };
  throw new Error(`unsupported signature algorithm ${oid}`);
}

const SHA1 = '1.3.14.3.2.26';

/** RSASSA-PSS-params (RFC 4055 §3.1), every field with its default. */
function pssParams(el: Parameters<typeof sequence>[0]): { hash: string; mgf: AlgorithmIdentifier; mgfHash: string; saltLength: number; trailerField: number } {
  try {
    const fields = sequence(el, 'RSASSA-PSS parameters');
    const explicit = (n: number) => {
      const f = fields.find((x) => x.tag === context(n));
      if (!f) return undefined;
      const [inner, extra] = children(f);
      if (!inner || extra) throw new Asn1Error(`RSASSA-PSS parameter [${n}] is malformed`);
      return inner;
    };
    // Fields in order, each at most once, none unknown.
    for (const [i, f] of fields.entries()) {
      if (f.tag < context(0) || f.tag > context(3) || (i > 0 && f.tag <= fields[i - 1]!.tag)) throw new Asn1Error('RSASSA-PSS parameters are malformed');
    }
    const hashEl = explicit(0);
    const hash = hashNameForOid(hashEl ? algorithmIdentifier(hashEl, 'PSS hash').oid : SHA1);
    const mgfEl = explicit(1);
    const mgf = mgfEl ? algorithmIdentifier(mgfEl, 'PSS mask generation') : { oid: OID_MGF1, der: new Uint8Array() };
    const mgfHash = hashNameForOid(mgf.params ? algorithmIdentifier(mgf.params, 'MGF1 hash').oid : SHA1);
    const saltEl = explicit(2);
    const trailerEl = explicit(3);
    return {
      hash,
      mgf,
      mgfHash,
      saltLength: saltEl ? smallInteger(saltEl, 'PSS salt length') : 20,
      trailerField: trailerEl ? smallInteger(trailerEl, 'PSS trailer field') : 1,
    };
  } catch (err) {
    if (err instanceof Asn1Error) throw new Error(`malformed RSASSA-PSS parameters (${err.message})`);
    throw err;
  }
}

/** An AlgorithmIdentifier from its DER (for identifiers we construct ourselves, e.g. cosign's). */
export function algorithmFromDer(der: Uint8Array): AlgorithmIdentifier {
  return algorithmIdentifier(readWhole(der), 'algorithm');
}

export interface SignatureVerifier {
  update(chunk: Uint8Array): void;
  /** true when the signature verifies; false (never throws) when it does not or is malformed. */
  verify(signature: Uint8Array): boolean;
}

/**
 * A verifier that can be fed incrementally, so a large detached file signed without signed attributes
 * is never held in memory. Throws (before any data) when algorithm and key do not fit together — e.g. an
 * RSA algorithm with an EC key — so such a mismatch is reported as what it is, not as a bad signature.
 */
export function createSignatureVerifier(
  sigAlg: AlgorithmIdentifier,
  spki: Uint8Array,
  options: { digestHint?: string; streaming?: boolean } = {},
): SignatureVerifier {
  const scheme = schemeFor(sigAlg, options.digestHint);
  const key = publicKeyFromSpki(spki);
  const keyType = key.asymmetricKeyType;
  if (!keyType || !scheme.keyTypes.includes(keyType)) {
    throw new Error(`signature algorithm ${sigAlg.oid} does not fit a ${keyType ?? 'unknown'} key`);
  }
  const keyOpts: crypto.VerifyKeyObjectInput = { key, dsaEncoding: 'der' };
  if (scheme.padding !== undefined && keyType !== 'rsa-pss') keyOpts.padding = scheme.padding;
  if (scheme.saltLength !== undefined) keyOpts.saltLength = scheme.saltLength;

  if (scheme.hash === null) {
    // EdDSA is one-shot by definition (PureEdDSA); it cannot be streamed.
    if (options.streaming) throw new Error(`signature algorithm ${sigAlg.oid} cannot verify streamed content`);
    const chunks: Uint8Array[] = [];
    return {
      update: (chunk) => void chunks.push(chunk),
      verify: (signature) => {
        try {
          return crypto.verify(null, Buffer.concat(chunks), keyOpts, signature);
        } catch {
          return false;
        }
      },
    };
  }
  const verifier = crypto.createVerify(scheme.hash);
  return {
    update: (chunk) => void verifier.update(chunk),
    verify: (signature) => {
      try {
        return verifier.verify(keyOpts, signature);
      } catch {
        return false;
      }
    },
  };
}

/** One-shot verification; false for a wrong or malformed signature, throws for unusable algorithms. */
export function verifySignature(data: Uint8Array, signature: Uint8Array, spki: Uint8Array, sigAlg: AlgorithmIdentifier, digestHint?: string): boolean {
  const verifier = createSignatureVerifier(sigAlg, spki, { digestHint });
  verifier.update(data);
  return verifier.verify(signature);
}
