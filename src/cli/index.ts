/**
 * Command line (commander): argv + env → a command and its options. Only explicitly given flags are
 * returned, so the config layer can apply flags > env > file > defaults.
 */
import { Command, CommanderError, Option } from 'commander';
import { UsageError } from '../errors.js';
import { parseWatchOptions, WATCH_DEFAULTS, WATCH_FLAGS, watchCommandFromEnv, type RawWatchCommand, type WatchOptions } from '../watch/options.js';
import { envNameOfFlag } from '../config/env.js';
import type { OutputFormat, RunFlags } from '../config/flags.js';
import { RUN_OPTIONS, VERIFY_OPTIONS, envHelp, envNames, flagsFromEnv, longFlag, mergeFlags, parseOptionValue, type OptionSpec } from './options.js';

export type ParsedCommand =
  | { name: 'run'; flags: RunFlags }
  | { name: 'verify'; flags: RunFlags }
  | { name: 'status'; volume: string; output: OutputFormat }
  | { name: 'rollback'; volume: string; to?: string; output: OutputFormat; flags: RunFlags }
  | { name: 'version'; output: OutputFormat }
  | { name: 'watch'; options: WatchOptions; logFormat?: 'text' | 'json'; debug: boolean }
  | { name: 'help'; text: string };

const ENV_RULES = `
Environment:
  Every option has the env twin shown beside it ([env: ...]); the first name wins over the others.
  Booleans take true/false, yes/no, 1/0 or on/off. Unknown ZETA_PROVISION_* variables are refused.
  Precedence: flags > ZETA_PROVISION_* > gematik names > config file > defaults.
`;

const STATUS_EXAMPLES = `
Examples:
  # what the volume holds now, and what a rollback would restore
  zeta-provision status --volume /provisioning

  # the same for scripts; RESULT_DIR or ZETA_PROVISION_VOLUME work instead of --volume
  RESULT_DIR=/provisioning zeta-provision status -o json
${ENV_RULES}
Exit codes:
  0 shown   2 usage   4 the volume directory does not exist
`;

const ROLLBACK_EXAMPLES = `
Examples:
  # swap ..data back to the previous generation (atomic; consumers see the old set at once)
  zeta-provision rollback --volume /provisioning

  # the same with the ConfigMaps of that payload re-applied (the same config and cluster as run)
  zeta-provision rollback --config /etc/zeta-provision/config.yaml --volume /provisioning

  # back to a specific kept generation (names from "zeta-provision status")
  zeta-provision rollback --volume /provisioning --to ..2026_01_31_12_00_00.1a2b3c4d

The ConfigMaps come from the generation (each keeps its payload's non-secret objects); a rollback that
would need other Secret data is refused before anything changes, naming what it cannot restore.
The rollback holds until a new payload digest or config arrives, or until "run --force".
${ENV_RULES}
Exit codes:
  0 rolled back   2 usage: unknown generation, no previous payload to restore, or a target missing
  4 the volume directory does not exist   5 a target cannot be restored, or the swap failed (locked, not writable)
`;

export const PIPELINE =
  'resolve → [up to date? stop] → verify image signature → unpack → verify files (.manifest, CMS, Authenticode) → downgrade check → derive (TSL, TPM store, policy signer, roots.json) → plan → publish';

const VERIFY_EXAMPLES = `
The same checks as "run --dry-run", in the same order, minus the targets:
  resolve → verify image signature → unpack → verify files → downgrade check (against --volume's
  record, when given) → derive (TSL signature and NextUpdate, roots.json, policy signer, TPM store)
Nothing is written: no volume, no ConfigMaps, no status record.

Examples:
  # CI: check a freshly built payload before it ships; the report as JSON for the pipeline
  zeta-provision verify --config zeta-provision.yaml --source oci-layout:build/payload:latest -o json

  # gematik's image against its pinned chain, with gematik's profile (TSL checked up to GEM.RCA)
  TRUST_CERTCHAIN_FILE=chain.pem zeta-provision verify --profile gematik --source registry.example.org/zeta/provisioning:latest
${ENV_RULES}
Exit codes:
  0 every required check passed   1 internal error   2 usage or configuration
  3 verification failed           4 source unavailable
`;

const RUN_EXAMPLES = `
Pipeline: ${PIPELINE}

Examples:
  # one pass of the hourly CronJob (paths as mounted in the pod)
  zeta-provision run --config /etc/zeta-provision/config.yaml --volume /provisioning -o json

  # the bundled example payload, ConfigMaps written as manifests
  zeta-provision run --config fixtures/example/zeta-provision.yaml --volume demo-out/volume --kube-out demo-out/manifests

  # CI: validate a freshly built payload; exit 3 if a signature fails, 10 if it would change anything
  zeta-provision run --source oci-layout:build/payload:latest --dry-run --detailed-exitcode -o json
${ENV_RULES}  gematik's processor names are accepted too: TRUSTSTORE_PASS, *_RESULT_FILENAME,
  PROVISIONING_CONTAINER_REGISTRY_USERNAME, PROVISIONING_CONTAINER_REGISTRY_TOKEN.

Exit codes:
  0 applied or already up to date   1 internal error      2 usage or configuration
  3 verification failed             4 source unavailable  5 publish failed
  10 changes pending (only with --dry-run --detailed-exitcode)
`;

const WATCH_EXAMPLES = `
It reacts to the atomic ..data swap of kubelet's ConfigMap volumes and of "zeta-provision run",
waits until changes settle (--debounce-ms), validates, then runs exactly one action. Each reload is
logged with the content hash of the directory; a failed validation is logged and not retried until
the content changes again. SIGTERM ends it with exit 0.

Examples:
  # nginx sidecar (pod with shareProcessNamespace: true; nginx -t needs nginx in the sidecar's image)
  zeta-provision watch --dir /etc/nginx/conf.d --validate "nginx -t" --signal HUP --process-name nginx

  # nginx writing its PID to a shared emptyDir
  zeta-provision watch --dir /provisioning --signal HUP --pid-file /run/nginx/nginx.pid

  # OPA sidecar: push the policy at start and after every change
  zeta-provision watch --dir /policies --on-start \\
    --http PUT http://127.0.0.1:8181/v1/policies/zeta --body-file /policies/policy.rego

  # anything else
  zeta-provision watch --dir /provisioning --exec "curl -fsS -X POST http://127.0.0.1:9000/-/reload"
`;

/** status and rollback take the same --volume/--output as run: same table, same env twins. */
const VOLUME_SPECS = RUN_OPTIONS.filter((s) => s.key === 'volume' || s.key === 'output' || s.key === 'logFormat');
/** rollback --to (its twin ZETA_PROVISION_TO, as every flag's); the key is unused: it is read apart. */
const TO_SPEC: OptionSpec = { key: 'source', flags: '--to <generation>', kind: 'string', description: 'generation to restore (default: the previous one)' };

const COMMANDS = ['run', 'verify', 'status', 'rollback', 'watch', 'version'];

export function parseCommandLine(argv: string[], env: NodeJS.ProcessEnv, version: string): ParsedCommand {
  let result: ParsedCommand | undefined;
  let helpText = '';
  // Hints name the help of the command being parsed: that is where the option it lacks is listed.
  const commandName = argv.find((a) => COMMANDS.includes(a));
  const helpHint = `see zeta-provision ${commandName ? `${commandName} ` : ''}--help`;
  const program = new Command('zeta-provision')
    .description("Provision ZETA Guard with gematik's signed trust data and configuration: pull, verify, publish atomically.")
    .version(version, '-v, --version', 'print the version')
    .exitOverride()
    .configureOutput({ writeOut: (s) => (helpText += s), writeErr: (s) => (helpText += s) })
    .showSuggestionAfterError(true)
    .configureHelp({ helpWidth: 100 })
    .addHelpText('after', '\nRun "zeta-provision <command> --help" for the options of a command.\n');

  /** A subcommand whose help and errors go to helpText (printed by the caller, exit code decided there). */
  const subcommand = (name: string, description: string, examples: string): Command =>
    program
      .command(name)
      .description(description)
      .exitOverride()
      .configureOutput({ writeOut: (s) => (helpText += s), writeErr: (s) => (helpText += s) })
      .configureHelp({ helpWidth: 100 })
      .addHelpText('after', examples);
  /** The options of `specs` given on the command line, parsed strictly (same rules as their env twins). */
  const flagsFromCli = (specs: readonly OptionSpec[], opts: Record<string, unknown>): RunFlags => {
    const fromCli: Record<string, unknown> = {};
    for (const spec of specs) {
      if (opts[spec.key] !== undefined) fromCli[spec.key] = parseOptionValue(spec, opts[spec.key], longFlag(spec));
    }
    return fromCli as RunFlags;
  };
  const addOptions = (cmd: Command, specs: readonly OptionSpec[]): void => {
    for (const spec of specs) cmd.addOption(new Option(spec.flags, `${spec.description} ${envHelp(envNames(spec))}`));
  };

  const run = subcommand('run', 'one provisioning pass (what the CronJob runs): resolve, verify, derive, plan, publish', RUN_EXAMPLES);
  addOptions(run, RUN_OPTIONS);
  run.action((opts: Record<string, unknown>) => {
    result = { name: 'run', flags: mergeFlags(flagsFromEnv(env), flagsFromCli(RUN_OPTIONS, opts)) };
  });

  const verify = subcommand(
    'verify',
    'run every check a run would (run --dry-run minus the targets) and print the report; writes nothing (for CI)',
    VERIFY_EXAMPLES,
  );
  addOptions(verify, VERIFY_OPTIONS);
  verify.action((opts: Record<string, unknown>) => {
    // Only the options verify has are read from env: a ZETA_PROVISION_DRY_RUN in a CI job means nothing here.
    result = { name: 'verify', flags: mergeFlags(flagsFromEnv(env, [], VERIFY_OPTIONS, 'verify'), flagsFromCli(VERIFY_OPTIONS, opts)) };
  });

  const volumeCommand = (name: 'status' | 'rollback', description: string, examples: string, extra: OptionSpec[] = []): Command => {
    const cmd = subcommand(name, description, examples);
    addOptions(cmd, [...VOLUME_SPECS, ...extra]);
    return cmd;
  };
  const volumeFlags = (opts: Record<string, unknown>, command: string): { volume: string; output: OutputFormat } => {
    const flags = mergeFlags(flagsFromEnv(env, [envNameOfFlag(longFlag(TO_SPEC))], VOLUME_SPECS, command), flagsFromCli(VOLUME_SPECS, opts));
    if (!flags.volume)
      throw new UsageError('no volume directory given', `pass --volume DIR (or ZETA_PROVISION_VOLUME, RESULT_DIR); see zeta-provision ${command} --help`);
    return { volume: flags.volume, output: flags.output ?? 'text' };
  };
  volumeCommand('status', 'show the current and kept generations of a volume and what they hold (read-only)', STATUS_EXAMPLES).action(
    (opts: Record<string, unknown>) => {
      result = { name: 'status', ...volumeFlags(opts, 'status') };
    },
  );
  // Rollback takes the run's target options (config, cluster, --kube-out) too: every target goes back together.
  const rollback = subcommand(
    'rollback',
    'move every target (volume, ConfigMaps, manifests) back to the previous (or a kept) payload, or refuse before changing any',
    ROLLBACK_EXAMPLES,
  );
  addOptions(rollback, [...RUN_OPTIONS, TO_SPEC]);
  rollback.action((opts: Record<string, unknown>) => {
    const toName = envNameOfFlag(longFlag(TO_SPEC));
    const flags = mergeFlags(flagsFromEnv(env, [toName], RUN_OPTIONS, 'rollback'), flagsFromCli(RUN_OPTIONS, opts));
    if (!flags.volume)
      throw new UsageError('no volume directory given', 'pass --volume DIR (or ZETA_PROVISION_VOLUME, RESULT_DIR); see zeta-provision rollback --help');
    const toEnv = env[toName];
    const to = typeof opts.to === 'string' ? opts.to : toEnv !== undefined && toEnv !== '' ? toEnv : undefined;
    result = { name: 'rollback', volume: flags.volume, output: flags.output ?? 'text', to, flags };
  });

  const watch = subcommand(
    'watch',
    'reload sidecar: on each change of a mounted directory, validate and reload the consumer (signal, command or HTTP)',
    WATCH_EXAMPLES + ENV_RULES,
  );
  const watchOption = (key: keyof RawWatchCommand, args: string, description: string): void => {
    watch.addOption(new Option(`${WATCH_FLAGS[key]}${args ? ` ${args}` : ''}`, `${description} ${envHelp([envNameOfFlag(WATCH_FLAGS[key])])}`));
  };
  watchOption(
    'dir',
    '<dir>',
    'directory to watch: the root of a mounted ConfigMap or of the provisioning volume (where ..data is; mounted whole, never a subPath)',
  );
  watchOption('validate', '<command>', 'shell command that must exit 0 before reloading (e.g. "nginx -t"); on failure nothing is reloaded');
  watchOption('signal', '<name>', 'action: send this signal (HUP, USR1 …) to --pid, --pid-file or --process-name');
  watchOption('pid', '<pid>', 'signal target: a process ID');
  watchOption('pidFile', '<file>', 'signal target: the process ID in this file, read at each reload');
  watchOption('processName', '<name>', 'signal target: the process with this name, found in /proc (needs shareProcessNamespace: true)');
  watchOption('exec', '<command>', 'action: run this shell command');
  watchOption('http', '<method-url...>', 'action: send an HTTP request, METHOD URL (e.g. PUT http://127.0.0.1:8181/v1/policies/zeta)');
  watchOption('bodyFile', '<file>', 'with --http: request body, read at each reload (e.g. the policy in the watched directory)');
  watchOption(
    'onStart',
    '[when]',
    'validate and act at start: auto (default: unless the consumer started after the current content), always (bare --on-start), never',
  );
  watchOption('debounceMs', '<ms>', `quiet time after the last change before reloading (default: ${WATCH_DEFAULTS.debounceMs})`);
  watchOption('pollSeconds', '<seconds>', `content-hash poll, for filesystems without change events (default: ${WATCH_DEFAULTS.pollSeconds})`);
  watchOption('logFormat', '<format>', 'log format on stderr: text | json (default: text on a terminal, else json)');
  watchOption('debug', '', 'log every check, also when nothing changed');
  watch.action((cli: RawWatchCommand) => {
    const opts: RawWatchCommand = { ...watchCommandFromEnv(env) };
    for (const [k, v] of Object.entries(cli)) if (v !== undefined) (opts as Record<string, unknown>)[k] = v;
    if (opts.logFormat !== undefined && opts.logFormat !== 'text' && opts.logFormat !== 'json')
      throw new UsageError(`--log-format must be text or json, got ${JSON.stringify(opts.logFormat)}`, helpHint);
    result = { name: 'watch', options: parseWatchOptions(opts), logFormat: opts.logFormat, debug: opts.debug === true };
  });

  const versionSpec: OptionSpec = { ...RUN_OPTIONS.find((s) => s.key === 'output')!, description: 'text | json | yaml (default text)' };
  const versionCmd = subcommand('version', 'print the version of zeta-provision and of the Node.js runtime', '');
  addOptions(versionCmd, [versionSpec]);
  versionCmd.action((opts: Record<string, unknown>) => {
    result = { name: 'version', output: mergeFlags(flagsFromEnv(env, [], [versionSpec], 'version'), flagsFromCli([versionSpec], opts)).output ?? 'text' };
  });

  try {
    program.parse(argv, { from: 'user' });
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.code === 'commander.helpDisplayed' || err.code === 'commander.help' || err.code === 'commander.version') {
        return { name: 'help', text: helpText };
      }
      throw new UsageError(err.message.replace(/^error: /, ''), helpHint);
    }
    if (err instanceof UsageError && !err.hint) throw new UsageError(err.message, helpHint, { cause: err });
    throw err;
  }
  if (!result) {
    // No command: show the overview, as `git` does, instead of guessing.
    return { name: 'help', text: program.helpInformation() };
  }
  return result;
}
