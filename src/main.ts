/**
 * Process entry: parse the command line, run the command, print the report on stdout, logs on stderr,
 * and exit with the code of DESIGN.md. stdout carries only the report (text, JSON or YAML); every
 * warning and the final error are also log lines on stderr — JSON lines when stderr is not a terminal
 * (a pod), so a collector can parse the log line by line, whatever the report format.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { parseCommandLine, type ParsedCommand } from './cli/index.js';
import { packageVersion } from './config/package-root.js';
import { ExitCode, SourceError, ZetaError, errorMessage } from './errors.js';
import { createLogger, defaultLogFormat, Redactor, type Logger } from './log.js';
import { textWidth, wrapLines } from './report/wrap.js';

/** The report renderers (and their YAML writer) load only for commands that print a document: not for version/help. */
const reports = () => import('./report/index.js');

/** The log format before the command line is parsed: `--log-format X` or its env twin, else by terminal. */
function earlyLogFormat(argv: string[], env: NodeJS.ProcessEnv): 'text' | 'json' {
  const i = argv.findIndex((a) => a === '--log-format' || a.startsWith('--log-format='));
  const v = i < 0 ? env.ZETA_PROVISION_LOG_FORMAT : argv[i]!.includes('=') ? argv[i]!.split('=')[1] : argv[i + 1];
  return v === 'text' || v === 'json' ? v : defaultLogFormat();
}

export async function main(argv: string[], env: NodeJS.ProcessEnv): Promise<number> {
  const redactor = new Redactor();
  // Register every secret we may hold before anything can print.
  for (const name of ['PROVISIONING_CONTAINER_REGISTRY_TOKEN', 'TRUSTSTORE_PASS', 'ZETA_PROVISION_REGISTRY_PASSWORD']) redactor.add(env[name]);
  let debug = argv.includes('--debug');
  let log: Logger = createLogger({ format: earlyLogFormat(argv, env), level: debug ? 'debug' : 'info', redactor });
  /** The final error as one log line: code, kind and hint as fields (JSON) or an indented hint (text). */
  const fail = (err: unknown): number => {
    const code = err instanceof ZetaError ? err.exitCode : ExitCode.internal;
    const hint = err instanceof ZetaError ? err.hint : undefined;
    log.error(errorMessage(err), {
      code,
      kind: err instanceof ZetaError ? err.kind : 'internal',
      hint,
      ...(debug && err instanceof Error && err.stack ? { stack: err.stack } : {}),
    });
    return code;
  };
  try {
    const cmd = parseCommandLine(argv, env, packageVersion());
    if (cmd.name === 'help') {
      process.stdout.write(cmd.text);
      return ExitCode.ok;
    }
    if (cmd.name === 'version') {
      const info = { name: 'zeta-provision', version: packageVersion(), node: process.version };
      process.stdout.write(
        cmd.output === 'text' ? `zeta-provision ${info.version} (node ${info.node})\n` : (await reports()).renderDocument(info, cmd.output, piped()),
      );
      return ExitCode.ok;
    }
    if (cmd.name === 'status') return await volumeCommand(cmd, textWidth(env));
    if (cmd.name === 'rollback') {
      debug = cmd.flags.debug ?? debug;
      log = createLogger({ format: cmd.flags.logFormat ?? defaultLogFormat(), level: debug ? 'debug' : 'info', redactor });
      const volume = requireVolume(cmd.volume, 'rollback');
      const { loadConfigFile, profileConfigFile, resolveSettings } = await import('./config/index.js');
      const settings = resolveSettings(cmd.flags, await loadConfigFile(profileConfigFile(cmd.flags)), env);
      const { rollbackPipeline } = await import('./rollback.js');
      const r = await rollbackPipeline(settings, log, cmd.to);
      const { renderDocument, rollbackDocument } = await reports();
      const text = `rolled back ${volume}: ..data -> ${r.to} (was ${r.from}); kept ${r.kept.join(', ')}${r.configMaps.length ? `; re-applied ${r.configMaps.join(', ')}` : ''}\n`;
      process.stdout.write(
        redactor.apply(cmd.output === 'text' ? wrapLines(text, textWidth(env)) : renderDocument(rollbackDocument(volume, r), cmd.output, piped())),
      );
      return ExitCode.ok;
    }
    if (cmd.name === 'watch') {
      debug = cmd.debug;
      const { runWatchUntilSignalled } = await import('./watch/index.js');
      log = createLogger({ format: cmd.logFormat ?? defaultLogFormat(), level: cmd.debug ? 'debug' : 'info', redactor });
      return await runWatchUntilSignalled(cmd.options, log);
    }
    debug = cmd.flags.debug ?? debug;
    log = createLogger({ format: cmd.flags.logFormat ?? defaultLogFormat(), level: debug ? 'debug' : 'info', redactor });
    // The config loader (and its YAML parser) only for commands that read a config: not for version/help.
    const { loadConfigFile, profileConfigFile, resolveSettings } = await import('./config/index.js');
    const config = await loadConfigFile(profileConfigFile(cmd.flags));
    const settings = resolveSettings(cmd.flags, config, env);
    const { runPipeline } = await import('./pipeline.js');
    const report = await runPipeline(settings, log, cmd.name);
    // Warnings and the error are log lines too: in a pod the log is what is read, the report is data.
    for (const w of report.warnings) log.warn(w);
    if (report.error) log.error(report.error.message, { code: report.exitCode, kind: report.error.kind, hint: report.error.hint, file: report.error.file });
    const { renderReport } = await reports();
    process.stdout.write(redactor.apply(renderReport(report, settings.output, textWidth(env), piped())));
    return report.exitCode;
  } catch (err) {
    return fail(err);
  }
}

/** stdout is not a terminal: JSON documents are written on one line (see renderDocument). */
const piped = (): boolean => !process.stdout.isTTY;

/** A volume that is not there is a missing source of state (exit 4), not a failed write. */
function requireVolume(dir: string, command: string): string {
  const volume = path.resolve(dir);
  if (!existsSync(volume))
    throw new SourceError(
      `volume directory ${volume} does not exist`,
      `check --volume (or ZETA_PROVISION_VOLUME, RESULT_DIR); see zeta-provision ${command} --help`,
    );
  return volume;
}

/** `status`: no config, no payload — it only looks at the volume. */
async function volumeCommand(cmd: Extract<ParsedCommand, { name: 'status' }>, width: number): Promise<number> {
  const { renderVolumeStatus, volumeStatus } = await import('./publish/volume/index.js');
  const volume = requireVolume(cmd.volume, 'status');
  const status = await volumeStatus(volume);
  const { renderDocument, volumeStatusDocument } = await reports();
  process.stdout.write(
    cmd.output === 'text' ? wrapLines(renderVolumeStatus(status), width) : renderDocument(volumeStatusDocument(status), cmd.output, piped()),
  );
  return ExitCode.ok;
}
