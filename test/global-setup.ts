import { execa } from 'execa';

/** End-to-end tests run the compiled CLI: build it once before any test file starts. */
export default async function setup(): Promise<void> {
  await execa('npx', ['tsc', '-p', 'tsconfig.build.json'], { stdio: 'inherit' });
}
