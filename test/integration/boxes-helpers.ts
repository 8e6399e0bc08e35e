// Shared by the Box and signing integration tests: source images (a WASI hello command and a native ELF
// program) pushed to a real docker-registry, boxproxy with conversion settings, conversion status polling, and
// running a pulled Box with the Box runner.
import { createWriteStream } from 'node:fs';
import { once } from 'node:events';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseConfig } from '../../src/config/load.js';
import type { ConfigInput } from '../../src/config/schema.js';
import { startProxy } from '../../src/cli/serve.js';
import { readBoxLayout, unpackBox } from '../../src/box/layout.js';
import { planRun, runPlanIsolated, type IsolatedRunResult } from '../../src/box/runner.js';
import { createLogger } from '../../src/ops/log.js';
import type { Descriptor } from '../../src/oci/types.js';
import { dir, elf, file, writeLayout, type ImageSpec } from '../convert/helpers.js';
import { skopeo } from '../helpers/images.js';
import { makeTempDir, removeTempDir, run, tail, waitUntil, type RunResult } from '../helpers/proc.js';
import { upstreamOf, type TestProxy } from '../helpers/proxy.js';
import type { TestRegistry } from '../helpers/registry.js';

export const HELLO_WASM = fileURLToPath(new URL('../fixtures/wasm/hello.wasm', import.meta.url));
export const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** The WASI hello program as a linux/amd64 image: Entrypoint is the module, /etc/greeting a file it prints. */
export async function helloSpec(seed: string): Promise<ImageSpec> {
  return {
    layers: [
      {
        entries: [
          dir('etc/'),
          file('etc/greeting', `hello from a Box (${seed})\n`),
          dir('app/'),
          file('app/hello.wasm', await readFile(HELLO_WASM), 0o755),
        ],
      },
    ],
    config: { Entrypoint: ['/app/hello.wasm'], Env: ['PATH=/usr/bin:/bin', 'GREETING_NAME=boxproxy'], WorkingDir: '/' },
  };
}

/** A native x86-64 ELF program: never a Box, the status says why. */
export function nativeSpec(seed: string): ImageSpec {
  return {
    layers: [{ entries: [dir('bin/'), file('bin/app', elf({ interpreter: '/lib64/ld-linux-x86-64.so.2' }), 0o755), file('etc/seed', seed)] }],
    config: { Entrypoint: ['/bin/app'] },
  };
}

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
  signing?: ConfigInput['signing'];
  storagePath?: string;
}

/**
 * boxproxy with conversion settings, in this process (helpers/proxy.ts's startTestProxy takes no conversion
 * or signing settings); same shape as its TestProxy.
 */
export async function startBoxProxy(opts: BoxProxyOptions): Promise<TestProxy> {
  const tmp = await makeTempDir('box-proxy');
  const storagePath = opts.storagePath ?? join(tmp, 'storage');
  const logFile = join(tmp, 'boxproxy.log');
  const logStream = createWriteStream(logFile, { flags: 'a' });
  logStream.on('error', () => undefined);
  const config = parseConfig({
    listen: '127.0.0.1:0',
    storage: { path: storagePath },
    upstreams: [upstreamOf(opts.registry, opts.upstream)],
    log: { level: 'debug' },
    conversion: { workers: 2, ...opts.conversion },
    ...(opts.signing ? { signing: opts.signing } : {}),
  });
  const running = await startProxy(config, { logger: createLogger('debug', logStream) });
  let closed = false;
  const close = async (): Promise<void> => {
    if (closed) return;
    closed = true;
    await running.close();
  };
  return {
    url: running.url,
    host: `127.0.0.1:${running.port}`,
    port: running.port,
    storagePath,
    running,
    log: () => readFile(logFile, 'utf8').catch(() => ''),
    close,
    async stop() {
      await close();
      if (!logStream.closed) {
        logStream.end();
        await once(logStream, 'close');
      }
      await removeTempDir(tmp);
    },
  };
}

/** What GET /boxproxy/v1/conversions/{digest} answers. */
export interface ConversionStatus {
  source: string;
  state: 'pending' | 'running' | 'done' | 'failed' | 'unconvertible';
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

/** Unpacks the Box in an OCI layout (its only image, or `reference`) and runs it in a child process. */
export async function runBoxLayout(layout: string, opts: { reference?: string; args?: string[]; cacheDir: string }): Promise<IsolatedRunResult> {
  const { source, box } = await readBoxLayout(layout, opts.reference ?? '');
  const unpacked = await unpackBox(source, box, { cacheDir: opts.cacheDir });
  const plan = await planRun(unpacked, opts.args ? { args: opts.args } : {});
  return runPlanIsolated(plan, { stdio: 'pipe' });
}

/** `boxproxy <args>` as a user runs it (through tsx from the sources), never throwing on a non-zero exit. */
export async function boxproxyCli(args: readonly string[], env: NodeJS.ProcessEnv = {}): Promise<RunResult> {
  return run(process.execPath, ['--import', 'tsx', join(REPO_ROOT, 'src/cli/main.ts'), ...args], {
    allowFailure: true,
    env: { ...process.env, ...env },
    timeoutMs: 60_000,
  });
}
