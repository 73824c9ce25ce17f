/**
 * The text report fits a terminal and a CI log: no line longer than TEXT_WIDTH columns. A long line
 * continues under its value (hanging indent after the label), and a token longer than a line — a
 * digest, a path — is cut, never left to run past the edge.
 */
export const TEXT_WIDTH = 100;

/** TEXT_WIDTH, or `COLUMNS` when set to a number of at least 40 (a wider terminal, or a log without limit). */
export function textWidth(env: NodeJS.ProcessEnv): number {
  const n = Number(env.COLUMNS);
  return Number.isInteger(n) && n >= 40 ? n : TEXT_WIDTH;
}

export function wrapLines(text: string, width = TEXT_WIDTH): string {
  const trailing = text.endsWith('\n');
  const out = (trailing ? text.slice(0, -1) : text).split('\n').flatMap((line) => wrapLine(line, width));
  return out.join('\n') + (trailing ? '\n' : '');
}

function wrapLine(line: string, width: number): string[] {
  if (line.length <= width) return [line];
  // Hang under the value: after "  label     " (indent, a word, spaces), else under the indent + 2.
  const m = /^\s*\S{1,12}\s+/.exec(line);
  const lead = (/^\s*/.exec(line)?.[0] ?? '').length;
  let hang = m ? m[0].length : lead + 2;
  if (hang > 16) hang = lead + 2;
  const pad = ' '.repeat(hang);
  const lines: string[] = [];
  let cur = line.slice(0, hang).padEnd(hang);
  let fresh = true;
  const words = line
    .slice(hang)
    .split(/ +/)
    .filter((w) => w !== '');
  for (let word of words) {
    while (word.length > width - hang) {
      // A single token longer than a whole line: fill the current line, continue on the next.
      const take = width - cur.length - (fresh ? 0 : 1);
      if (take > 0) {
        lines.push(cur + (fresh ? '' : ' ') + word.slice(0, take));
        word = word.slice(take);
      } else {
        lines.push(cur);
      }
      cur = pad;
      fresh = true;
    }
    if (!fresh && cur.length + 1 + word.length > width) {
      lines.push(cur);
      cur = pad;
      fresh = true;
    }
    cur += (fresh ? '' : ' ') + word;
    fresh = false;
  }
  if (!fresh) lines.push(cur);
  return lines;
}
