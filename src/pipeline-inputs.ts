/**
 * What the run's stages take from the settings: the source reference and its options, and the check
 * that every output the config produces has a target. Pure translations; src/pipeline.ts uses them.
 */
import { ConfigError, UsageError } from './errors.js';
import type { Settings } from './config/index.js';
import type { Logger } from './log.js';
import type { Target } from './publish/index.js';
import { layerReporter, parsePlatform, parseSourceReference, type SourceOptions } from './source/index.js';
import type { SourceReference } from './source/types.js';

export function sourceReference(settings: Settings): SourceReference {
  if (!settings.source) {
    throw new UsageError('no source given', 'pass --source REF, set ZETA_PROVISION_SOURCE or PROVISIONING_CONTAINER_NAME, or put source: in the config');
  }
  return parseSourceReference(settings.source, settings.sourceBaseDir);
}

export /** Registry access from the settings; every token the client obtains is redacted from all output. */
function sourceOptionsFrom(settings: Settings, log: Logger): SourceOptions {
  const { registryUsername: username, registryToken: password } = settings.gematik;
  const cap = settings.maxPayloadBytes;
  return {
    ...(settings.platform ? { platform: parsePlatform(settings.platform, '--platform') } : {}),
    ...(cap === undefined ? {} : { limits: { maxTotalBytes: cap, maxFileBytes: cap } }),
    onLayer: layerReporter(log, process.stderr.isTTY ? process.stderr : undefined),
    registry: {
      credentials: username && password ? { username, password } : undefined,
      insecureHosts: settings.insecureRegistries,
      transport: { caFile: settings.registryCaFile },
      authFile: settings.registryAuthFile,
      onSecret: (secret) => log.redactor.add(secret),
    },
  };
}

/** Outputs the config produces need somewhere to go; say exactly which setting is missing. */
export function requireTargets(settings: Settings, targets: Target[]): void {
  if (publishesToVolume(settings) && !settings.volumeDir) {
    throw new ConfigError(
      `${settings.config.origin} publishes files to a volume, but no volume directory is set`,
      'pass --volume DIR (or ZETA_PROVISION_VOLUME, RESULT_DIR, volume.dir in the config)',
    );
  }
  if (settings.config.configMaps.length > 0 && !targets.some((t) => t.id === 'kube' || t.id === 'kube-out')) {
    throw new ConfigError(
      `${settings.config.origin} defines ConfigMaps, but no target for them is set`,
      'pass --kube-out DIR to write them as manifests (or ZETA_PROVISION_KUBE_OUT), or give a cluster (--kubeconfig, KUBECONFIG, in-cluster)',
    );
  }
}

function publishesToVolume(settings: Settings): boolean {
  return settings.config.volume.files.length > 0 || settings.config.volume.outputs.length > 0;
}
