/**
 * What each platform measures of an initdata document (the exact TOML bytes):
 *
 * - digest D = `algorithm`(toml), then fitted to the platform's register: cut when longer, padded
 *   with zero bytes when shorter (kata-types `adjust_digest`: TDX 48 bytes, SNP 32).
 * - tdx: MRCONFIGID = fit(D, 48); snp: HOSTDATA = fit(D, 32).
 * - azure-vtpm: the guest extends PCR 8 (SHA-256 bank, initially zero) once with fit(D, 32), so
 *   PCR8 = sha256(32 zero bytes ‖ fit(D, 32)) — cloud-api-adaptor's TestConfAzureInitDataMeasurement.
 *   With algorithm sha256 (the config insists on it for this platform) that is the OSC guides'
 *   `sha256sum initdata.toml` + `xxd -r -p` + `sha256sum` one-liner.
 *
 * Values are lower-case hex, as the guides put them into the RVPS reference values.
 */
import { createHash } from 'node:crypto';
import type { InitdataAlgorithm, InitdataPlatform } from '../../config/initdata.js';

const REGISTER_BYTES: Record<InitdataPlatform, number> = { 'azure-vtpm': 32, tdx: 48, snp: 32 };

export function initdataDigest(algorithm: InitdataAlgorithm, toml: Buffer): Buffer {
  return createHash(algorithm).update(toml).digest();
}

export function fitDigest(digest: Buffer, bytes: number): Buffer {
  if (digest.length >= bytes) return Buffer.from(digest.subarray(0, bytes));
  return Buffer.concat([digest, Buffer.alloc(bytes - digest.length)]);
}

/** The reference value of one platform, hex. */
export function platformValue(platform: InitdataPlatform, algorithm: InitdataAlgorithm, toml: Buffer): string {
  const fitted = fitDigest(initdataDigest(algorithm, toml), REGISTER_BYTES[platform]);
  if (platform !== 'azure-vtpm') return fitted.toString('hex');
  return createHash('sha256').update(Buffer.alloc(32)).update(fitted).digest('hex');
}

export function platformValues(platforms: InitdataPlatform[], algorithm: InitdataAlgorithm, toml: Buffer): Record<InitdataPlatform, string> {
  const out = {} as Record<InitdataPlatform, string>;
  for (const p of platforms) out[p] = platformValue(p, algorithm, toml);
  return out;
}
