// The real boxproxy server for integration tests: startProxy() on a free loopback port, its own storage dir,
// JSON logs to a file (attached to failures, checked for leaked secrets).
import { createWriteStream, type WriteStream } from 'node:fs';
import { once } from 'node:events';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseConfig } from '../../src/config/load.js';
import type { ConfigInput } from '../../src/config/schema.js';
import { startProxy, type RunningProxy, type StartOptions } from '../../src/cli/serve.js';
import { createLogger } from '../../src/ops/log.js';
import { makeTempDir, removeTempDir, tail } from './proc.js';
import type { TestRegistry } from './registry.js';

type UpstreamInput = ConfigInput['upstreams'][number];

export interface TestProxy {
  readonly url: string;
  /** 127.0.0.1:PORT, as clients write it in image references. */
  readonly host: string;
  readonly port: number;
  readonly storagePath: string;
  readonly running: RunningProxy;
  /** Everything boxproxy logged so far. */
  log(): Promise<string>;
  /** Closes the server; storage stays (for restart tests) until stop(). */
  close(): Promise<void>;
  /** close() and remove storage and logs. */
  stop(): Promise<void>;
}

export interface StartTestProxyOptions {
  upstreams: UpstreamInput[];
  defaultUpstream?: string;
  /** Reuse a storage dir (restart tests); a fresh one otherwise. */
  storagePath?: string;
  limits?: ConfigInput['limits'];
  /**
   * Box conversion settings. Off unless given: these tests pin the pull-through registry, whose by-tag answers
   * must be the upstream's exact bytes, while conversion's `augment` exposure rewrites indexes on purpose.
   */
  conversion?: ConfigInput['conversion'];
  /** In place of the provisioner conversion.runtimes would make (tests that watch a build). */
  runtimeProvisioner?: StartOptions['runtimeProvisioner'];
}

/** The upstream entry for a test registry: named by its host, its credentials when it has some. */
export function upstreamOf(registry: TestRegistry, overrides: Partial<UpstreamInput> = {}): UpstreamInput {
  return {
    name: registry.host,
    url: registry.url,
    tagTtl: '1h',
    timeout: '10s',
    retries: 0,
    ...(registry.credentials ? { username: registry.credentials.username, password: registry.credentials.password } : {}),
    ...overrides,
  };
}

export async function startTestProxy(opts: StartTestProxyOptions): Promise<TestProxy> {
  const dir = await makeTempDir('proxy');
  const storagePath = opts.storagePath ?? join(dir, 'storage');
  const logFile = join(dir, 'boxproxy.log');
  const logStream: WriteStream = createWriteStream(logFile, { flags: 'a' });
  // A late log line after stop() must not crash the test process with a write-after-end error.
  logStream.on('error', () => undefined);
  const config = parseConfig({
    listen: '127.0.0.1:0',
    storage: { path: storagePath },
    upstreams: opts.upstreams,
    ...(opts.defaultUpstream ? { defaultUpstream: opts.defaultUpstream } : {}),
    ...(opts.limits ? { limits: opts.limits } : {}),
    conversion: opts.conversion ?? { enabled: false },
    log: { level: 'debug' },
  });
  let running: RunningProxy;
  try {
    running = await startProxy(config, {
      logger: createLogger('debug', logStream),
      ...(opts.runtimeProvisioner ? { runtimeProvisioner: opts.runtimeProvisioner } : {}),
    });
  } catch (err) {
    logStream.end();
    const log = await readFile(logFile, 'utf8').catch(() => '');
    await removeTempDir(dir);
    if (err instanceof Error && log) err.message += `\nboxproxy log:\n${tail(log)}`;
    throw err;
  }
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
      await removeTempDir(dir);
    },
  };
}

/** Reads one sample from boxproxy's /metrics (0 when absent); labels must all match. */
export async function metricValue(proxyUrl: string, name: string, labels: Record<string, string> = {}): Promise<number> {
  const text = await (await fetch(`${proxyUrl}/metrics`)).text();
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? ([0-9.eE+-]+|NaN)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const found = new Map<string, string>();
    for (const pair of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) found.set(pair[1] as string, pair[2] as string);
    if (Object.entries(labels).every(([k, v]) => found.get(k) === v)) sum += Number(m[3]);
  }
  return sum;
}
