import { execa } from 'execa';

/**
 * Peer programs are required, never optional: a missing one fails the test and names the Debian
 * package (scripts/install-test-deps.sh installs them for `npm test`).
 */
export async function requireProgram(command: string, debianPackage: string): Promise<void> {
  const found = await execa('sh', ['-c', `command -v ${command}`], { reject: false });
  if (found.exitCode !== 0) throw new Error(`test peer "${command}" is missing: apt-get install -y ${debianPackage}`);
}
