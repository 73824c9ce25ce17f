// npm run demo: one provisioning pass over the bundled example payload into ./demo-out/.
// Run it twice: the second pass reports that the payload was already applied.
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const args = [
  path.join(root, 'bin', 'zeta-provision'),
  'run',
  '--config',
  path.join(root, 'fixtures', 'example', 'zeta-provision.yaml'),
  '--volume',
  path.join(root, 'demo-out', 'volume'),
  '--kube-out',
  path.join(root, 'demo-out', 'manifests'),
  '--log-format',
  'text',
  ...process.argv.slice(2),
];
const result = spawnSync(process.execPath, args, { stdio: 'inherit' });
if (result.status === 0) {
  console.log(`\nvolume:    ${path.join('demo-out', 'volume')}  (ls -la it: ..data → the current generation)`);
  console.log(`manifests: ${path.join('demo-out', 'manifests')}`);
}
process.exit(result.status ?? 1);
