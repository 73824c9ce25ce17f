import { execa } from 'execa';

/** End-to-end tests run the shipped CLI (bin/ → the esbuild bundle): build it once before any test file starts. */
export default async function setup(): Promise<void> {
  await execa('npm', ['run', '--silent', 'build'], { stdio: 'inherit' });
}
