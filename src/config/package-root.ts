import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * Package root, where `config/` and package.json ship: the nearest ancestor of this module holding a
 * package.json. The module runs from dist/config/ (tsc), dist/chunks/ (the bundle)
 * or src/config/index.ts (tests), so a fixed number of `..` would be wrong for one of them.
 */
export const PACKAGE_ROOT = packageRoot(path.dirname(fileURLToPath(import.meta.url)));

function packageRoot(from: string): string {
  for (let dir = from; ; dir = path.dirname(dir)) {
    if (existsSync(path.join(dir, 'package.json'))) return dir;
    if (path.dirname(dir) === dir) return path.resolve(from, '..', '..');
  }
}
