import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * Package root, where `config/` and package.json ship: the nearest ancestor of this module holding a
 * package.json. The module runs from dist/config/ (tsc), dist/chunks/ (the bundle)
 * or src/config/index.ts (tests), so a fixed number of `..` would be wrong for one of them.
 */
export const PACKAGE_ROOT = packageRoot(path.dirname(fileURLToPath(import.meta.url)));

let version: string | undefined;

/** Our version from package.json, read once per process (the CLI's `version` and the registry User-Agent). */
export function packageVersion(): string {
  version ??= (JSON.parse(readFileSync(path.join(PACKAGE_ROOT, 'package.json'), 'utf8')) as { version: string }).version;
  return version;
}

function packageRoot(from: string): string {
  for (let dir = from; ; dir = path.dirname(dir)) {
    if (existsSync(path.join(dir, 'package.json'))) return dir;
    if (path.dirname(dir) === dir) return path.resolve(from, '..', '..');
  }
}
