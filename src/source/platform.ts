/**
 * Platforms (`os/arch[/variant]`) and the choice of one image from a multi-platform index. Pure.
 */
import { SourceError, UsageError } from '../errors.js';
import type { Descriptor } from './blobs.js';

export interface Platform {
  os: string;
  architecture: string;
  variant?: string;
}

export const DEFAULT_PLATFORM: Readonly<Platform> = Object.freeze({ os: 'linux', architecture: 'amd64' });

const PART = /^[a-z0-9][a-z0-9._-]{0,31}$/;

/** `linux/amd64`, `linux/arm64/v8`; `origin` names the flag or variable in the error. */
export function parsePlatform(text: string, origin = '--platform'): Platform {
  const parts = text.trim().toLowerCase().split('/');
  if (parts.length < 2 || parts.length > 3 || !parts.every((p) => PART.test(p))) {
    throw new UsageError(`${origin}: expected OS/ARCH[/VARIANT] (e.g. linux/amd64), got "${text.slice(0, 80)}"`);
  }
  const [os, architecture, variant] = parts as [string, string, string | undefined];
  return variant === undefined ? { os, architecture } : { os, architecture, variant };
}

export function formatPlatform(p: Partial<Platform> | undefined): string {
  const base = `${p?.os ?? '?'}/${p?.architecture ?? '?'}`;
  return p?.variant ? `${base}/${p.variant}` : base;
}

/** arm64 images often omit their variant; `v8` is what they mean (as containerd treats it). */
function variantOf(p: Partial<Platform> | undefined): string | undefined {
  return p?.variant ?? (p?.architecture === 'arm64' ? 'v8' : undefined);
}

function matches(entry: Descriptor['platform'], want: Platform): boolean {
  if (entry?.os !== want.os || entry.architecture !== want.architecture) return false;
  return want.variant === undefined || variantOf(entry) === variantOf(want);
}

/**
 * From an index's image entries: the one for `wanted`. Without an explicit platform the default
 * (linux/amd64) is taken, or else the only image there is. The error lists what the index offers.
 */
export function choosePlatform(images: Descriptor[], wanted: Platform | undefined, indexDigest: string): Descriptor {
  const want = wanted ?? DEFAULT_PLATFORM;
  const found = images.find((d) => matches(d.platform, want));
  if (found !== undefined) return found;
  if (wanted === undefined && images.length === 1 && images[0] !== undefined) return images[0];
  const offered = images.map((d) => formatPlatform(d.platform)).join(', ');
  throw new SourceError(
    `image index ${indexDigest} has no ${formatPlatform(want)} image (platforms: ${offered || 'none'})`,
    'choose one of the listed platforms with --platform (ZETA_PROVISION_PLATFORM)',
  );
}
