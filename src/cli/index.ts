/**
 * Command line (commander): argv + env → a command and its options. Only explicitly given flags are
 * returned, so the config layer can apply flags > env > file > defaults.
 */
import { Command, CommanderError, Option } from 'commander';
import { UsageError } from '../errors.js';
import { parseWatchOptions, WATCH_DEFAULTS, WATCH_FLAGS, watchCommandFromEnv, type RawWatchCommand, type WatchOptions } from '../watch/options.js';
import { RUN_OPTIONS, envName, envNameOfFlag, flagsFromEnv, mergeFlags, parseOptionValue, type OptionSpec, type RunFlags } from './options.js';

export type ParsedCommand =
  | { name: 'run'; flags: RunFlags }
  | { name: 'verify'; flags: RunFlags }
  | { name: 'status'; volume: string; json: boolean }
  | { name: 'rollback'; volume: string; to?: string; json: boolean; flags: RunFlags }
  | { name: 'version'; json: boolean }
  | { name: 'watch'; options: WatchOptions; logFormat?: 'text' | 'json'; debug: boolean }
  | { name: 'help'; text: string };

const STATUS_EXAMPLES = `
Examples:
  # what the volume holds now, and what a rollback would restore
  zeta-provision status --volume /provisioning

  # the same for scripts; RESULT_DIR or ZETA_PROVISION_VOLUME work instead of --volume
  RESULT_DIR=/provisioning zeta-provision status --output json
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
Exit codes: 0 rolled back, 2 unknown generation or bad usage, 5 a target cannot be restored, locked or not writable.
`;

/** verify takes run's source, trust and output options (same table, same env twins), nothing about targets. */
const VERIFY_KEYS: (keyof RunFlags)[] = ['config', 'source', 'insecureRegistry', 'registryCa', 'registryAuthFile', 'imageTrustChain', 'imageIdentity', 'imageSignature', 'output', 'logFormat', 'debug'];
const VERIFY_SPECS = RUN_OPTIONS.filter((s) => VERIFY_KEYS.includes(s.key));

const VERIFY_EXAMPLES = `
Examples:
  # CI: check a freshly built payload (image signature, every signed file, .manifest) before it ships
  zeta-provision verify --config zeta-provision.yaml --source oci-layout:build/payload:latest

  # gematik's image against its pinned chain; the report as JSON for the pipeline log
  TRUST_CERTCHAIN_FILE=chain.pem zeta-provision verify --source registry.example.org/zeta/provisioning:latest --output json

  # a payload directory, no image signature to check
  zeta-provision verify --config zeta-provision.yaml --source dir:./payload --image-signature off

Nothing is written: no volume, no ConfigMaps, no status record (so no downgrade check either).

Exit codes:
  0 every required check passed   2 usage or configuration   3 verification failed
  4 source unavailable            1 internal error
`;

/** status and rollback take the same --volume/--output as run: same table, same env twins. */
const VOLUME_SPECS = RUN_OPTIONS.filter((s) => s.key === 'volume' || s.key === 'output');

const RUN_EXAMPLES = `
Examples:
  # one pass of the hourly CronJob (paths as mounted in the pod)
  zeta-provision run --config /etc/zeta-provision/config.yaml --volume /provisioning

  # the bundled example payload, ConfigMaps written as manifests
  zeta-provision run --config fixtures/example/zeta-provision.yaml --volume demo-out/volume --kube-out demo-out/manifests

  # CI: validate a freshly built payload; exit 3 if a signature fails, 10 if it would change anything
  zeta-provision run --source oci-layout:build/payload:latest --dry-run --detailed-exitcode --output json

Environment:
  Every option has a twin ZETA_PROVISION_<OPTION> (e.g. ZETA_PROVISION_SOURCE, ZETA_PROVISION_DRY_RUN=true).
  gematik's processor names are accepted too: PROVISIONING_CONTAINER_NAME (source), RESULT_DIR (volume),
  TRUST_CERTCHAIN_FILE, PROVISIONING_CONTAINER_REGISTRY_CA_FILE, PROVISIONING_CONTAINER_REGISTRY_USERNAME,
  PROVISIONING_CONTAINER_REGISTRY_TOKEN, TRUSTSTORE_PASS, *_RESULT_FILENAME.
  Precedence: flags > ZETA_PROVISION_* > gematik names > config file > defaults.

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

export function parseCommandLine(argv: string[], env: NodeJS.ProcessEnv, version: string): ParsedCommand {
  let result: ParsedCommand | undefined;
  let helpText = '';
  const program = new Command('zeta-provision')
    .description('Provision ZETA Guard with gematik\'s signed trust data and configuration: pull, verify, publish atomically.')
    .exitOverride()
    .configureOutput({ writeOut: (s) => (helpText += s), writeErr: (s) => (helpText += s) })
    .showSuggestionAfterError(true)
    .addHelpText('after', '\nRun "zeta-provision <command> --help" for the options of a command.\n');

  /** A subcommand whose help and errors go to helpText (printed by the caller, exit code decided there). */
  const subcommand = (name: string, description: string, examples: string): Command =>
    program
      .command(name)
      .description(description)
      .exitOverride()
      .configureOutput({ writeOut: (s) => (helpText += s), writeErr: (s) => (helpText += s) })
      .addHelpText('after', examples);
  /** The options of `specs` given on the command line, parsed strictly (same rules as their env twins). */
  const flagsFromCli = (specs: readonly OptionSpec[], opts: Record<string, unknown>): RunFlags => {
    const fromCli: Record<string, unknown> = {};
    for (const spec of specs) {
      if (opts[spec.key] !== undefined) fromCli[spec.key] = parseOptionValue(spec, opts[spec.key], spec.flags.split(' ')[0]!);
    }
    return fromCli as RunFlags;
  };
  const envHelp = (spec: OptionSpec): string => [envName(spec), ...(spec.gematikEnv ?? [])].join(', ');

  const run = subcommand('run', 'one provisioning pass: resolve → verify → unpack → publish (what the CronJob runs)', RUN_EXAMPLES);
  for (const spec of RUN_OPTIONS) run.addOption(new Option(spec.flags, `${spec.description} [env: ${envName(spec)}]`));
  run.action((opts: Record<string, unknown>) => {
    result = { name: 'run', flags: mergeFlags(flagsFromEnv(env), flagsFromCli(RUN_OPTIONS, opts)) };
  });

  const verify = subcommand('verify', 'resolve the source and run every signature check, print the report; writes nothing (for CI)', VERIFY_EXAMPLES);
  for (const spec of VERIFY_SPECS) verify.addOption(new Option(spec.flags, `${spec.description} [env: ${envHelp(spec)}]`));
  verify.action((opts: Record<string, unknown>) => {
    const fromCli = flagsFromCli(VERIFY_SPECS, opts);
    const fromEnv = flagsFromEnv(env) as Record<string, unknown>;
    // Only the options verify has: a RESULT_DIR or ZETA_PROVISION_DRY_RUN in a CI environment means nothing here.
    const relevant = Object.fromEntries(Object.entries(fromEnv).filter(([k]) => VERIFY_KEYS.includes(k as keyof RunFlags)));
    result = { name: 'verify', flags: mergeFlags(relevant as RunFlags, fromCli) };
  });

  const volumeCommand = (name: string, description: string, examples: string): Command => {
    const cmd = subcommand(name, description, examples);
    for (const spec of VOLUME_SPECS) cmd.addOption(new Option(spec.flags, `${spec.description} [env: ${envHelp(spec)}]`));
    return cmd;
  };
  const volumeFlags = (opts: Record<string, unknown>): { volume: string; json: boolean } => {
    const flags = mergeFlags(flagsFromEnv(env), flagsFromCli(VOLUME_SPECS, opts));
    if (!flags.volume) throw new UsageError('no volume directory given', 'pass --volume DIR (or ZETA_PROVISION_VOLUME, RESULT_DIR)');
    return { volume: flags.volume, json: flags.output === 'json' };
  };
  volumeCommand('status', 'show the current and kept generations of a volume and what they hold (read-only)', STATUS_EXAMPLES).action(
    (opts: Record<string, unknown>) => {
      result = { name: 'status', ...volumeFlags(opts) };
    },
  );
  // Rollback takes the run's target options (config, cluster, --kube-out) too: every target goes back together.
  const rollback = subcommand('rollback', 'move every target (volume, ConfigMaps, manifests) back to the previous (or a kept) payload, or refuse before changing any', ROLLBACK_EXAMPLES);
  for (const spec of RUN_OPTIONS) rollback.addOption(new Option(spec.flags, `${spec.description} [env: ${envHelp(spec)}]`));
  rollback.option('--to <generation>', 'generation to restore (default: the previous one)').action((opts: Record<string, unknown>) => {
    const flags = mergeFlags(flagsFromEnv(env), flagsFromCli(RUN_OPTIONS, opts));
    if (!flags.volume) throw new UsageError('no volume directory given', 'pass --volume DIR (or ZETA_PROVISION_VOLUME, RESULT_DIR)');
    result = { name: 'rollback', volume: flags.volume, json: flags.output === 'json', to: typeof opts.to === 'string' ? opts.to : undefined, flags };
  });

  const watch = subcommand('watch', 'reload sidecar: on each change of a mounted directory, validate and reload the consumer (signal, command or HTTP)', WATCH_EXAMPLES);
  const watchOption = (key: keyof RawWatchCommand, args: string, description: string): void => {
    watch.addOption(new Option(`${WATCH_FLAGS[key]}${args ? ` ${args}` : ''}`, `${description} [env: ${envNameOfFlag(WATCH_FLAGS[key])}]`));
  };
  watchOption('dir', '<dir>', 'directory to watch: the root of a mounted ConfigMap or of the provisioning volume (where ..data is; mounted whole, never a subPath)');
  watchOption('validate', '<command>', 'shell command that must exit 0 before reloading (e.g. "nginx -t"); on failure nothing is reloaded');
  watchOption('signal', '<name>', 'action: send this signal (HUP, USR1 …) to --pid, --pid-file or --process-name');
  watchOption('pid', '<pid>', 'signal target: a process ID');
  watchOption('pidFile', '<file>', 'signal target: the process ID in this file, read at each reload');
  watchOption('processName', '<name>', 'signal target: the process with this name, found in /proc (needs shareProcessNamespace: true)');
  watchOption('exec', '<command>', 'action: run this shell command');
  watchOption('http', '<method-url...>', 'action: send an HTTP request, METHOD URL (e.g. PUT http://127.0.0.1:8181/v1/policies/zeta)');
  watchOption('bodyFile', '<file>', 'with --http: request body, read at each reload (e.g. the policy in the watched directory)');
  watchOption('onStart', '', 'also validate and act once at start (OPA starts without the policy)');
  watchOption('debounceMs', '<ms>', `quiet time after the last change before reloading (default: ${WATCH_DEFAULTS.debounceMs})`);
  watchOption('pollSeconds', '<seconds>', `content-hash poll, for filesystems without change events (default: ${WATCH_DEFAULTS.pollSeconds})`);
  watchOption('logFormat', '<format>', 'log format on stderr: text | json (default: text on a terminal, else json)');
  watchOption('debug', '', 'log every check, also when nothing changed');
  watch.action((cli: RawWatchCommand) => {
    const opts: RawWatchCommand = { ...watchCommandFromEnv(env) };
    for (const [k, v] of Object.entries(cli)) if (v !== undefined) (opts as Record<string, unknown>)[k] = v;
    if (opts.logFormat !== undefined && opts.logFormat !== 'text' && opts.logFormat !== 'json') throw new UsageError(`--log-format must be text or json, got ${JSON.stringify(opts.logFormat)}`);
    result = { name: 'watch', options: parseWatchOptions(opts), logFormat: opts.logFormat, debug: opts.debug === true };
  });

  program
    .command('version')
    .description('print the version of zeta-provision and of the Node.js runtime')
    .option('--output <format>', 'text | json', 'text')
    .exitOverride()
    .action((opts: { output: string }) => {
      result = { name: 'version', json: opts.output === 'json' };
    });

  try {
    program.parse(argv, { from: 'user' });
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.code === 'commander.helpDisplayed' || err.code === 'commander.help' || err.code === 'commander.version') {
        return { name: 'help', text: helpText };
      }
      throw new UsageError(err.message.replace(/^error: /, ''), 'see zeta-provision --help');
    }
    throw err;
  }
  if (!result) {
    // No command: show the overview, as `git` does, instead of guessing.
    return { name: 'help', text: program.helpInformation() };
  }
  void version;
  return result;
}
