/**
 * Process entry: parse the command line, run the command, print the report on stdout, logs on stderr,
 * and exit with the code of DESIGN.md. Errors are one line unless --debug.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parseCommandLine, type ParsedCommand } from './cli/index.js';
import { PACKAGE_ROOT, loadConfigFile, profileConfigFile, resolveSettings } from './config/index.js';
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
    if (cmd.name === 'status') return await volumeCommand(cmd);
    if (cmd.name === 'rollback') {
      debug = cmd.flags.debug ?? debug;
      const log = createLogger({ format: cmd.flags.logFormat ?? defaultLogFormat(), level: debug ? 'debug' : 'info', redactor });
      const settings = resolveSettings(cmd.flags, await loadConfigFile(profileConfigFile(cmd.flags)), env);
      const { rollbackPipeline } = await import('./pipeline.js');
      const r = await rollbackPipeline(settings, log, cmd.to);
      process.stdout.write(redactor.apply(cmd.json ? JSON.stringify(r) + '\n' : `rolled back ${path.resolve(cmd.volume)}: ..data -> ${r.to} (was ${r.from}); kept ${r.kept.join(', ')}${r.configMaps.length ? `; re-applied ${r.configMaps.join(', ')}` : ''}\n`));
      return ExitCode.ok;
    }
    if (cmd.name === 'watch') {
      debug = cmd.debug;
      const { runWatchUntilSignalled } = await import('./watch/index.js');
      const log = createLogger({ format: cmd.logFormat ?? defaultLogFormat(), level: cmd.debug ? 'debug' : 'info', redactor });
      return await runWatchUntilSignalled(cmd.options, log);
    }
    debug = cmd.flags.debug ?? debug;
    const log = createLogger({ format: cmd.flags.logFormat ?? defaultLogFormat(), level: debug ? 'debug' : 'info', redactor });
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

/** `status`: no config, no payload — it only looks at the volume. */
async function volumeCommand(cmd: Extract<ParsedCommand, { name: 'status' }>): Promise<number> {
  const { renderVolumeStatus, volumeStatus } = await import('./publish/volume/index.js');
  const status = await volumeStatus(path.resolve(cmd.volume));
  process.stdout.write(cmd.json ? JSON.stringify(status, null, 2) + '\n' : renderVolumeStatus(status));
  return ExitCode.ok;
}
