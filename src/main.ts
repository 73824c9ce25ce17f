/**
 * Process entry: parse the command line, run the command, print the report on stdout, logs on stderr,
 * and exit with the code of DESIGN.md. Errors are one line unless --debug.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parseCommandLine, type ParsedCommand } from './cli/index.js';
import { PACKAGE_ROOT } from './config/package-root.js';
import { ExitCode, ZetaError, errorMessage } from './errors.js';
import { createLogger, defaultLogFormat, Redactor } from './log.js';
import { renderReport } from './report/index.js';

export function packageVersion(): string {
  const pkg = JSON.parse(readFileSync(path.join(PACKAGE_ROOT, 'package.json'), 'utf8')) as { version: string };
  return pkg.version;
}

export async function main(argv: string[], env: NodeJS.ProcessEnv): Promise<number> {
  const redactor = new Redactor();
  // Register every secret we may hold before anything can print.
  for (const name of ['PROVISIONING_CONTAINER_REGISTRY_TOKEN', 'TRUSTSTORE_PASS', 'ZETA_PROVISION_REGISTRY_PASSWORD']) redactor.add(env[name]);
  const fail = (err: unknown, debug = false): number => {
    const code = err instanceof ZetaError ? err.exitCode : ExitCode.internal;
    const hint = err instanceof ZetaError && err.hint ? `\n  hint: ${err.hint}` : '';
    const detail = debug && err instanceof Error && err.stack ? `\n${err.stack}` : '';
    process.stderr.write(redactor.apply(`zeta-provision: error: ${errorMessage(err)}${hint}${detail}`) + '\n');
    return code;
  };
  let debug = argv.includes('--debug');
  try {
    const cmd = parseCommandLine(argv, env, packageVersion());
    if (cmd.name === 'help') {
      process.stdout.write(cmd.text);
      return ExitCode.ok;
    }
    if (cmd.name === 'version') {
      const info = { name: 'zeta-provision', version: packageVersion(), node: process.version };
      process.stdout.write(cmd.json ? JSON.stringify(info) + '\n' : `zeta-provision ${info.version} (node ${info.node})\n`);
      return ExitCode.ok;
    }
    if (cmd.name === 'status' || cmd.name === 'rollback') return await volumeCommand(cmd);
    if (cmd.name === 'watch') {
      debug = cmd.debug;
      const { runWatchUntilSignalled } = await import('./watch/index.js');
      const log = createLogger({ format: cmd.logFormat ?? defaultLogFormat(), level: cmd.debug ? 'debug' : 'info', redactor });
      return await runWatchUntilSignalled(cmd.options, log);
    }
    debug = cmd.flags.debug ?? debug;
    const log = createLogger({ format: cmd.flags.logFormat ?? defaultLogFormat(), level: debug ? 'debug' : 'info', redactor });
    // The config loader (and its YAML parser) only for commands that read a config: not for version/help.
    const { loadConfigFile, profileConfigFile, resolveSettings } = await import('./config/index.js');
    const config = await loadConfigFile(profileConfigFile(cmd.flags));
    const settings = resolveSettings(cmd.flags, config, env);
    const { runPipeline } = await import('./pipeline.js');
    const report = await runPipeline(settings, log, cmd.name);
    process.stdout.write(redactor.apply(renderReport(report, settings.output)));
    return report.exitCode;
  } catch (err) {
    return fail(err, debug);
  }
}

/** `status` and `rollback`: no config, no payload — they only look at (or swap) the volume. */
async function volumeCommand(cmd: Extract<ParsedCommand, { name: 'status' | 'rollback' }>): Promise<number> {
  const { renderVolumeStatus, rollbackVolume, volumeStatus } = await import('./publish/volume/index.js');
  const volume = path.resolve(cmd.volume);
  if (cmd.name === 'status') {
    const status = await volumeStatus(volume);
    process.stdout.write(cmd.json ? JSON.stringify(status, null, 2) + '\n' : renderVolumeStatus(status));
    return ExitCode.ok;
  }
  const r = await rollbackVolume(volume, { to: cmd.to });
  process.stdout.write(cmd.json ? JSON.stringify({ volume, ...r }) + '\n' : `rolled back ${volume}: ..data -> ${r.to} (was ${r.from}); kept ${r.kept.join(', ')}\n`);
  return ExitCode.ok;
}
