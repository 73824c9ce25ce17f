/** Text rendering of the CoCo initdata part of a run report (rendering only). */
import type { InitdataRunReport } from '../publish/coco/summary.js';

export function renderInitdata(i: InitdataRunReport, showDocument: boolean): string[] {
  const lines = [
    `  initdata  ${i.id} (${i.algorithm}, ${i.encodedBytes} bytes encoded) from ${i.parts.map((p) => `${p.key} ← ${p.sources.join(' + ')}`).join(', ')}`,
  ];
  for (const [name, value] of Object.entries(i.values)) lines.push(`    current     ${name} ${value}`);
  for (const o of i.applied?.overlapping ?? i.overlapping ?? []) {
    const until = o.waitingFor.length ? `until ${o.until} or until ${o.waitingFor.join(', ')} run the current initdata` : `until ${o.until}`;
    for (const [name, value] of Object.entries(o.values)) lines.push(`    overlapping ${name} ${value} (${o.id}, ${until})`);
  }
  if (i.where) lines.push(`    targets     ${i.where}`);
  const verb = i.applied ? (i.applied.referenceValues?.written === false ? 'would ' : '') : showDocument ? 'would ' : '';
  for (const a of i.actions) lines.push(`    ${verb}${a}`);
  if (i.where && i.actions.length === 0) lines.push('    unchanged (reference values, INITDATA and annotations match)');
  for (const f of i.files ?? []) lines.push(`    wrote       ${f}`);
  if (i.note) lines.push(`    note        ${i.note}`);
  if (showDocument) {
    lines.push('    --- initdata.toml (decoded) ---');
    for (const l of i.toml.replace(/\n$/, '').split('\n')) lines.push(`    | ${l}`);
  }
  return lines;
}
