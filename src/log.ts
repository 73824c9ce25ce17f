/**
 * Logs go to stderr: JSON lines when not on a terminal (Kubernetes collects them), readable lines on a
 * terminal. The final error of a command is a log line too (with its exit code, kind and hint), so a
 * collector never has to parse the report to learn why a run failed. Every line passes through the redactor, so a secret registered once can never be printed,
 * even if it ends up inside an error message from a library.
 */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
export type LogFormat = 'text' | 'json';
export type LogFields = Record<string, unknown>;

const LEVEL_ORDER: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export class Redactor {
  private readonly secrets = new Set<string>();
  add(secret: string | undefined): void {
    // Very short values would redact ordinary words; they are not plausible secrets either.
    if (secret && secret.length >= 4) this.secrets.add(secret);
  }
  apply(text: string): string {
    let out = text;
    for (const s of this.secrets) out = out.split(s).join('***');
    return out;
  }
}

export interface Logger {
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
  readonly redactor: Redactor;
}

export interface LoggerOptions {
  format: LogFormat;
  level: LogLevel;
  redactor?: Redactor;
  write?: (line: string) => void;
}

export function defaultLogFormat(): LogFormat {
  return process.stderr.isTTY ? 'text' : 'json';
}

export function createLogger(opts: LoggerOptions): Logger {
  const redactor = opts.redactor ?? new Redactor();
  const write = opts.write ?? ((line: string) => process.stderr.write(line + '\n'));
  const emit = (level: LogLevel, msg: string, fields: LogFields = {}): void => {
    if (LEVEL_ORDER[level] < LEVEL_ORDER[opts.level]) return;
    const line = opts.format === 'json' ? JSON.stringify({ time: new Date().toISOString(), level, msg, ...fields }) : formatText(level, msg, fields);
    write(redactor.apply(line));
  };
  return {
    debug: (m, f) => emit('debug', m, f),
    info: (m, f) => emit('info', m, f),
    warn: (m, f) => emit('warn', m, f),
    error: (m, f) => emit('error', m, f),
    redactor,
  };
}

function formatText(level: LogLevel, msg: string, fields: LogFields): string {
  // On a terminal the hint is what the reader acts on: its own line, not a field among others.
  const { hint, ...rest } = fields;
  const extra = Object.entries(rest)
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
    .join(' ');
  const tag = level === 'info' ? '' : `${level}: `;
  return `${tag}${msg}${extra ? ' (' + extra + ')' : ''}${typeof hint === 'string' && hint !== '' ? `\n  hint: ${hint}` : ''}`;
}

/** A logger that drops everything; for library use and tests. */
export function silentLogger(): Logger {
  return createLogger({ format: 'json', level: 'error', write: () => {} });
}
