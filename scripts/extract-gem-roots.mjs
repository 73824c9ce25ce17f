#!/usr/bin/env node
/**
 * Writes the shipped GEM.RCA trust sets from gematik's published roots.json files, one PEM per root
 * with its provenance above the block (the PEM reader ignores text outside BEGIN/END):
 *   config/trust/gematik-rca/       ← gematik-test/ti-roots/roots.json (production GEM.RCA2 … RCA11)
 *   config/trust/gematik-rca-test/  ← gematik-test/roots.json (GEM.RCA… TEST-ONLY, the RU/TU environment)
 * Source: github.com/gematik/zeta, zeta-guard-provisioning/test/, commit 93054eea55c13fb3ec5877980dd267a61c672413
 * (see ../shared/realworld/PROVENANCE.md). Only the self-signed roots are taken ("cert"); the cross-
 * certificates ("prev"/"next") stay in the payload, where the TSL check uses them as untrusted helpers.
 * Usage: node scripts/extract-gem-roots.mjs [REALWORLD_DIR]   (re-running gives the same files)
 */
import { createHash, X509Certificate } from 'node:crypto';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const realworld = process.argv[2] ?? process.env.ZETA_REALWORLD_DIR ?? path.resolve(repo, '..', 'shared', 'realworld');
const SOURCE = 'github.com/gematik/zeta zeta-guard-provisioning/test/%s, commit 93054eea55c13fb3ec5877980dd267a61c672413';

for (const [set, file] of [
  ['gematik-rca', 'ti-roots/roots.json'],
  ['gematik-rca-test', 'roots.json'],
]) {
  const roots = JSON.parse(await readFile(path.join(realworld, 'gematik-test', file), 'utf8'));
  const dir = path.join(repo, 'config', 'trust', set);
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  for (const r of roots) {
    const der = Buffer.from(r.cert, 'base64');
    const x = new X509Certificate(der);
    if (x.subject !== x.issuer || !x.verify(x.publicKey)) throw new Error(`${file}: ${r.cn} is not a self-signed root`);
    const sha = createHash('sha256').update(der).digest('hex').toUpperCase().match(/../g).join(':');
    const pem = x.toString();
    const text = [
      `subject: ${x.subject.replace(/\n/g, ', ')}`,
      `sha256: ${sha}`,
      `validity: ${new Date(x.validFrom).toISOString()} .. ${new Date(x.validTo).toISOString()}`,
      `source: ${SOURCE.replace('%s', file)}`,
      pem,
    ].join('\n');
    await writeFile(path.join(dir, `${r.cn.replace(/[^A-Za-z0-9.-]+/g, '_')}.pem`), text);
  }
  console.log(`${set}: ${roots.length} roots from ${file}`);
}
