/**
 * Signature verification and hashing on node:crypto, and a pkijs CryptoEngine that uses them.
 *
 * Why not WebCrypto: it has no brainpool curves (gematik's TI PKI is brainpool ECC) and it wants raw
 * (r||s) ECDSA signatures, while X.509/CMS carry DER. node:crypto (OpenSSL) has both. Our own chain and
 * CMS code call `createSignatureVerifier`/`verifySignature` directly; the engine exists so that any
 * pkijs method that verifies (Certificate.verify, SignedData.verify, OCSP …) takes the same path.
 */
import crypto from 'node:crypto';
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';

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
 * parameters (e.g. a zero-length BOOLEAN) that pkijs tolerates, and accepting bytes the peer tools
 * refuse is how a payload verifies here but not elsewhere (found by test/verify/fuzz.test.ts).
 */
export function digestAlgorithmName(alg: pkijs.AlgorithmIdentifier): string {
  const params: unknown = alg.algorithmParams;
  // pkijs leaves an empty asn1js.Any (not a parsed block) when the parameters are absent.
  if (params instanceof asn1js.BaseBlock && !(params instanceof asn1js.Null && DER_NULL.equals(Buffer.from(params.valueBeforeDecodeView)))) {
    throw new Error(`digest algorithm ${alg.algorithmId} has parameters other than NULL`);
  }
  return hashNameForOid(alg.algorithmId);
}

/** Accepts pkijs/WebCrypto spellings ("SHA-256", { name: "sha-256" }) and node's ("sha256"). */
function hashNameFromWebCrypto(algorithm: unknown): string {
  const raw = typeof algorithm === 'string' ? algorithm : (algorithm as { name?: unknown })?.name;
  if (typeof raw !== 'string') throw new Error('digest algorithm name missing');
  const name = raw.toLowerCase().replace('sha-', 'sha');
  if (!Object.values(HASH_BY_OID).includes(name)) throw new Error(`unsupported digest algorithm ${raw}`);
  return name;
}

// The project compiles without the DOM lib, so borrow WebCrypto's parameter types from pkijs itself.
type VerifyParams = Parameters<pkijs.CryptoEngine['verifyWithPublicKey']>;
type DigestParams = Parameters<pkijs.CryptoEngine['digest']>;
type EngineCrypto = ConstructorParameters<typeof pkijs.CryptoEngine>[0]['crypto'];

function toBytes(data: VerifyParams[0]): Uint8Array {
  if (data instanceof Uint8Array) return data;
  if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  return new Uint8Array(data);
}

const keyCache = new WeakMap<pkijs.PublicKeyInfo, crypto.KeyObject>();

/** KeyObject for an SPKI, made once per parsed key: chain building asks for the same issuer keys often. */
export function publicKeyFromSpki(spki: pkijs.PublicKeyInfo): crypto.KeyObject {
  let key = keyCache.get(spki);
  if (!key) {
    const der = Buffer.from(spki.toSchema().toBER(false));
    key = crypto.createPublicKey({ key: der, format: 'der', type: 'spki' });
    keyCache.set(spki, key);
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
function schemeFor(sigAlg: pkijs.AlgorithmIdentifier, digestHint?: string): Scheme {
  const oid = sigAlg.algorithmId;
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
    if (!sigAlg.algorithmParams) throw new Error('RSASSA-PSS without parameters');
    const params = new pkijs.RSASSAPSSParams({ schema: sigAlg.algorithmParams });
    const hash = hashNameForOid(params.hashAlgorithm.algorithmId);
    // node:crypto (OpenSSL) uses the signature hash for MGF1 too; a different MGF1 hash cannot be
    // verified faithfully, so refuse instead of verifying something other than what was signed.
    if (params.maskGenAlgorithm.algorithmId !== OID_MGF1) throw new Error('RSASSA-PSS with a mask generation other than MGF1');
    const mgfParams = params.maskGenAlgorithm.algorithmParams;
    const mgfHash = mgfParams ? new pkijs.AlgorithmIdentifier({ schema: mgfParams }).algorithmId : '1.3.14.3.2.26';
    if (hashNameForOid(mgfHash) !== hash) throw new Error('RSASSA-PSS with an MGF1 hash different from the signature hash');
    if (params.trailerField !== 1) throw new Error('RSASSA-PSS with an unsupported trailer field');
    return {
      hash: agree(hash),
      keyTypes: ['rsa', 'rsa-pss'],
      padding: crypto.constants.RSA_PKCS1_PSS_PADDING,
      saltLength: params.saltLength,
    };
  }
  if (oid === OID_ED25519) return { hash: null, keyTypes: ['ed25519'] };
  if (oid === OID_ED448) return { hash: null, keyTypes: ['ed448'] };
  throw new Error(`unsupported signature algorithm ${oid}`);
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
  sigAlg: pkijs.AlgorithmIdentifier,
  spki: pkijs.PublicKeyInfo,
  options: { digestHint?: string; streaming?: boolean } = {},
): SignatureVerifier {
  const scheme = schemeFor(sigAlg, options.digestHint);
  const key = publicKeyFromSpki(spki);
  const keyType = key.asymmetricKeyType;
  if (!keyType || !scheme.keyTypes.includes(keyType)) {
    throw new Error(`signature algorithm ${sigAlg.algorithmId} does not fit a ${keyType ?? 'unknown'} key`);
  }
  const keyOpts: crypto.VerifyKeyObjectInput = { key, dsaEncoding: 'der' };
  if (scheme.padding !== undefined && keyType !== 'rsa-pss') keyOpts.padding = scheme.padding;
  if (scheme.saltLength !== undefined) keyOpts.saltLength = scheme.saltLength;

  if (scheme.hash === null) {
    // EdDSA is one-shot by definition (PureEdDSA); it cannot be streamed.
    if (options.streaming) throw new Error(`signature algorithm ${sigAlg.algorithmId} cannot verify streamed content`);
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
export function verifySignature(
  data: Uint8Array,
  signature: Uint8Array,
  spki: pkijs.PublicKeyInfo,
  sigAlg: pkijs.AlgorithmIdentifier,
  digestHint?: string,
): boolean {
  const verifier = createSignatureVerifier(sigAlg, spki, { digestHint });
  verifier.update(data);
  return verifier.verify(signature);
}

/** pkijs engine whose verification and hashing run on node:crypto; everything else stays WebCrypto. */
class NodeCryptoEngine extends pkijs.CryptoEngine {
  override async verifyWithPublicKey(
    data: VerifyParams[0],
    signature: VerifyParams[1],
    publicKeyInfo: pkijs.PublicKeyInfo,
    signatureAlgorithm: pkijs.AlgorithmIdentifier,
    shaAlgorithm?: string,
  ): Promise<boolean> {
    const hint = shaAlgorithm ? hashNameFromWebCrypto(shaAlgorithm) : undefined;
    return verifySignature(toBytes(data), signature.valueBlock.valueHexView, publicKeyInfo, signatureAlgorithm, hint);
  }

  override async digest(algorithm: DigestParams[0], data: DigestParams[1]): Promise<ArrayBuffer> {
    const out = crypto.createHash(hashNameFromWebCrypto(algorithm)).update(toBytes(data)).digest();
    return out.buffer.slice(out.byteOffset, out.byteOffset + out.byteLength) as ArrayBuffer;
  }
}

let installed = false;

/** Install the node:crypto engine as pkijs' global engine. Idempotent. */
export function ensureCryptoEngine(): void {
  if (installed) return;
  const engine = new NodeCryptoEngine({ name: 'node-crypto', crypto: crypto.webcrypto as unknown as EngineCrypto });
  pkijs.setEngine('node-crypto', engine);
  installed = true;
}
