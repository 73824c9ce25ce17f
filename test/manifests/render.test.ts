import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { execa } from 'execa';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { parseConfigText } from '../../src/config/index.js';
import { REPO_ROOT } from '../support/cli.js';
import { requireProgram } from '../support/programs.js';

describe('manifests/base', () => {
  it('renders with kubectl kustomize into a restricted, hourly, non-overlapping CronJob with a valid config', async () => {
    await requireProgram('kubectl', 'kubectl (preinstalled on the node machine image)');
    const { stdout } = await execa('kubectl', ['kustomize', path.join(REPO_ROOT, 'manifests', 'base')]);
    const objects = parseAllDocuments(stdout).map((d) => d.toJS());
    const cronJob = objects.find((o) => o.kind === 'CronJob');
    expect(cronJob.spec.concurrencyPolicy).toBe('Forbid');
    const pod = cronJob.spec.jobTemplate.spec.template.spec;
    expect(pod.securityContext).toMatchObject({ runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } });
    const container = pod.containers[0];
    expect(container.securityContext).toMatchObject({ allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] } });
    // subPath mounts never see the ..data swap.
    expect(stdout).not.toContain('subPath');
    expect(pod.volumes.find((v: { name: string }) => v.name === 'tmp').emptyDir.medium).toBe('Memory');
    // The generated config ConfigMap is what the container mounts, and it is a valid config.
    const config = objects.find((o) => o.kind === 'ConfigMap');
    expect(pod.volumes.find((v: { name: string }) => v.name === 'config').configMap.name).toBe(config.metadata.name);
    expect(() => parseConfigText(config.data['config.yaml'], 'manifests config', '/')).not.toThrow();
  });
});

describe('Containerfile', () => {
  it('runs as a numeric non-root user and copies only files that exist after a build', async () => {
    const text = await readFile(path.join(REPO_ROOT, 'Containerfile'), 'utf8');
    const user = /^USER (\d+):(\d+)$/m.exec(text);
    expect(user && Number(user[1])).toBeGreaterThan(0);
    expect(text).toMatch(/^ENTRYPOINT \["zeta-provision"\]$/m);
    for (const [, args] of text.matchAll(/^COPY (?!--from)(.+)$/gm)) {
      for (const src of args!.trim().split(/\s+/).slice(0, -1)) {
        await expect(stat(path.join(REPO_ROOT, src)), src).resolves.toBeTruthy();
      }
    }
    await expect(stat(path.join(REPO_ROOT, 'dist', 'main.js'))).resolves.toBeTruthy();
  });
});
