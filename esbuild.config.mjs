// npm run build, second step: bundle the CLI with its dependencies (tree-shaken) into dist/zeta-provision.mjs,
// the entry that bin/zeta-provision and the container run, plus dist/chunks/*.mjs that it imports. Start-up
// then resolves and reads a handful of files instead of ~400 modules from node_modules (the hourly CronJob
// pays start-up on every run), and node_modules is not needed at run time.
//
// Why chunks and not one file: V8 compiles an ES module's whole source text when it is loaded, lazily
// loaded parts included. One 3.1 MB file cost ~200 ms of compileSourceTextModule before `version` could
// print (measured with --cpu-prof); with code splitting each import() of a stage (pipeline, verifiers,
// processors, client-node's kubeconfig module, undici) is its own chunk, compiled only when that stage runs.
import { build } from 'esbuild';
import { rmSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.dirname(fileURLToPath(import.meta.url));

// Chunk names carry a content hash: clear the old ones so dist/ holds only what this build references.
rmSync(path.join(root, 'dist', 'chunks'), { recursive: true, force: true });

await build({
  entryPoints: [path.join(root, 'src', 'main.ts')],
  outdir: path.join(root, 'dist'),
  entryNames: 'zeta-provision',
  chunkNames: 'chunks/[name]-[hash]',
  outExtension: { '.js': '.mjs' },
  splitting: true,
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20.19',
  // Smaller source is less for V8 to scan at start-up; identifiers are kept readable for stack traces.
  minifySyntax: true,
  minifyWhitespace: true,
  sourcemap: 'linked',
  // Licence headers of bundled dependencies stay in the shipped files.
  legalComments: 'eof',
  logLevel: 'warning',
  // Bundled CommonJS dependencies call require() for node: built-ins; give the ESM file one.
  // yaml's ESM build (its "browser" entry; the same code as the CommonJS one Node would pick): ESM is
  // tree-shaken and skips the CommonJS wrapper; measured on the up-to-date run, which parses the config.
  alias: { yaml: path.join(root, 'node_modules', 'yaml', 'browser', 'index.js') },
  banner: { js: "import { createRequire as __zpCreateRequire } from 'node:module'; const require = __zpCreateRequire(import.meta.url);" },
});
