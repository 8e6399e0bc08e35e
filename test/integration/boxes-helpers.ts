// Shared by the Box and signing integration tests: fixture images (test/fixtures/images.ts) pushed to a real
// docker-registry, boxproxy with conversion settings, conversion status polling, and
// running a pulled Box with the Box runner.
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ConfigInput } from '../../src/config/schema.js';
import { readBoxLayout, unpackBox } from '../../src/box/layout.js';
import { planRun, runPlanIsolated, type IsolatedRunResult } from '../../src/box/runner.js';
import type { Descriptor } from '../../src/oci/types.js';
import { writeLayout, type ImageSpec } from '../convert/helpers.js';
import { assertBoxRunsAlikeInEngines, type BoxRunOptions } from '../helpers/engines/index.js';
import { skopeo } from '../helpers/images.js';
import { makeTempDir, removeTempDir, run, tail, waitUntil, type RunResult } from '../helpers/proc.js';
import { startTestProxy, upstreamOf, type StartTestProxyOptions, type TestProxy } from '../helpers/proxy.js';
import type { TestRegistry } from '../helpers/registry.js';

export const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));

export interface PushedImage {
  /** Digest of the pushed (single-platform) image manifest: what is converted. */
  digest: string;
  descriptor: Descriptor;
  layout: string;
}

/** Writes `spec` as an OCI layout and pushes it (digests preserved) to `<registry>/<repo>:<tag>`. */
export async function pushSpec(registry: TestRegistry, repo: string, tag: string, spec: ImageSpec): Promise<PushedImage> {
  const layout = await makeTempDir('box-source');
  const descriptor = await writeLayout(layout, spec, { tag });
  await skopeo(['copy', '--preserve-digests', '--quiet', '--dest-tls-verify=false', '--dest-no-creds', `oci:${layout}:${tag}`, `docker://${registry.host}/${repo}:${tag}`]);
  return { digest: descriptor.digest, descriptor, layout };
}

export interface BoxProxyOptions {
  registry: TestRegistry;
  /** Overrides of the upstream entry (e.g. its name, for containerd's `?ns=`). */
  upstream?: Parameters<typeof upstreamOf>[1];
  conversion?: ConfigInput['conversion'];
  storagePath?: string;
  runtimeProvisioner?: StartTestProxyOptions['runtimeProvisioner'];
}

/** boxproxy in front of one registry with conversion on (two workers unless told otherwise). */
export function startBoxProxy(opts: BoxProxyOptions): Promise<TestProxy> {
  return startTestProxy({
    upstreams: [upstreamOf(opts.registry, opts.upstream)],
    conversion: { workers: 2, ...opts.conversion },
    ...(opts.storagePath ? { storagePath: opts.storagePath } : {}),
    ...(opts.runtimeProvisioner ? { runtimeProvisioner: opts.runtimeProvisioner } : {}),
  });
}

/** What GET /boxproxy/v1/conversions/{digest} answers. */
export interface ConversionStatus {
  source: string;
  state: 'pending' | 'running' | 'waiting-runtime' | 'done' | 'failed' | 'unconvertible';
  waiting?: { runtime: { name: string; version: string }; action?: string; detail?: string; since?: string };
  reason?: string;
  box?: string;
  strategy?: string;
  attempts: number;
  boxDescriptor?: Descriptor;
  signatures?: { cosign: { tag: string; descriptor: Descriptor }; bundle: { descriptor: Descriptor } };
  report: unknown;
}

export async function conversionStatus(proxyUrl: string, digest: string): Promise<ConversionStatus | undefined> {
  const res = await fetch(`${proxyUrl}/boxproxy/v1/conversions/${digest}`);
  if (res.status === 404) {
    await res.arrayBuffer();
    return undefined;
  }
  if (res.status !== 200) throw new Error(`status API answered ${res.status}: ${await res.text()}`);
  return (await res.json()) as ConversionStatus;
}

/** Waits until the conversion of `digest` reached a final state (it must have been started). */
export async function waitForConversion(proxy: TestProxy, digest: string, timeoutMs = 60_000): Promise<ConversionStatus> {
  let status: ConversionStatus | undefined;
  await waitUntil(`the conversion of ${digest} to finish`, async () => {
    status = await conversionStatus(proxy.url, digest);
    return status !== undefined && ['done', 'failed', 'unconvertible'].includes(status.state);
  }, { timeoutMs }).catch(async (err: Error) => {
    err.message += `\nlast status: ${JSON.stringify(status)}\nboxproxy log:\n${tail(await proxy.log(), 20)}`;
    throw err;
  });
  return status as ConversionStatus;
}

/** Starts a conversion through the status API (POST) and waits for its outcome. */
export async function convertThrough(proxy: TestProxy, reference: string, digest: string): Promise<ConversionStatus> {
  const res = await fetch(`${proxy.url}/boxproxy/v1/conversions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ reference }),
  });
  const body = await res.text();
  if (res.status !== 200 && res.status !== 202) throw new Error(`POST /boxproxy/v1/conversions answered ${res.status}: ${body}`);
  return waitForConversion(proxy, digest);
}

/**
 * Unpacks the Box in an OCI layout (its only image, or `reference`) and runs it in a child process; then checks
 * node:wasi, wasmtime and wazero run it the same.
 */
export async function runBoxLayout(layout: string, opts: { reference?: string; args?: string[]; cacheDir: string }): Promise<IsolatedRunResult> {
  const { source, box } = await readBoxLayout(layout, opts.reference ?? '');
  const unpacked = await unpackBox(source, box, { cacheDir: opts.cacheDir });
  const runOptions = opts.args ? { args: opts.args } : {};
  const result = await runPlanIsolated(await planRun(unpacked, runOptions), { stdio: 'pipe' });
  await assertBoxRunsAlikeInEngines(layout, { ...runOptions, ...(opts.reference ? { reference: opts.reference } : {}) }, result);
  return result;
}

/**
 * Copies the Box `ref` names out of a registry (skopeo, into an OCI layout) and checks that node:wasi, wasmtime
 * and wazero run it as `product` (what `boxproxy run` printed and returned) says.
 */
export async function assertPulledBoxRunsAlikeInEngines(ref: string, opts: BoxRunOptions, product: RunResult): Promise<void> {
  const dir = await makeTempDir('pulled-box');
  try {
    await skopeo(['copy', '--quiet', '--src-tls-verify=false', '--src-no-creds', `docker://${ref}`, `oci:${join(dir, 'box')}:box`]);
    await assertBoxRunsAlikeInEngines(join(dir, 'box'), opts, { stdout: product.stdout, exitCode: product.code });
  } finally {
    await removeTempDir(dir);
  }
}

/** `boxproxy <args>` as a user runs it (through tsx from the sources), never throwing on a non-zero exit. */
export async function boxproxyCli(args: readonly string[], env: NodeJS.ProcessEnv = {}): Promise<RunResult> {
  return run(process.execPath, ['--import', 'tsx', join(REPO_ROOT, 'src/cli/main.ts'), ...args], {
    allowFailure: true,
    env: { ...process.env, ...env },
    timeoutMs: 60_000,
  });
}

/**
 * `boxproxy run <args>` in a child process, through the run command's own factory (so this works whether or not
 * the command is registered in src/cli/program.ts yet).
 */
export async function boxproxyRun(args: readonly string[], env: NodeJS.ProcessEnv = {}): Promise<RunResult> {
  const entry = new URL('../../src/cli/commands/run.ts', import.meta.url).href;
  const script = `import(${JSON.stringify(entry)}).then((m) => m.runCommand().parseAsync(process.argv.slice(1), { from: 'user' }))`;
  return run(process.execPath, ['--import', 'tsx', '--disable-warning=ExperimentalWarning', '--input-type=module', '-e', script, ...args], {
    allowFailure: true,
    env: { ...process.env, ...env },
    timeoutMs: 60_000,
  });
}
