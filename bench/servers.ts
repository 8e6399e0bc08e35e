// The processes a benchmark compares: Debian's docker-registry (as upstream
// and in proxy mode, the reference), distribution v3 in proxy mode, and boxproxy as its own child process, so
// each has its own peak RSS. test/helpers/registry.ts starts docker-registry
// for the tests with its access log on (the tests count requests from it);
// here logging is off in every process so the reference is not slowed by it.
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify as toYaml } from 'yaml';
import type { ConfigInput } from '../src/config/schema.js';
import { requireTestTools, toolBin, toolSpec } from '../test/helpers/tools.js';
import { freePort, makeTempDir, removeTempDir, startProcess, waitUntil, type ManagedProcess } from '../test/helpers/proc.js';

/** A registry process under measurement. */
export interface BenchServer {
  readonly label: string;
  readonly url: string;
  readonly pid: number;
  /** Peak resident set size so far (VmHWM), in bytes. */
  peakRss(): Promise<number>;
  /** CPU time used so far (user + system, all threads), in seconds: robust to other load on the machine. */
  cpuSeconds(): Promise<number>;
  /** Resolves once background work (boxproxy's Box conversions) is finished; the seconds it took. */
  settle(): Promise<number>;
  stop(): Promise<void>;
}

// dist/bench/servers.js -> dist/src/cli/main.js
const BOXPROXY_MAIN = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));

export async function peakRssOf(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const m = /^VmHWM:\s+(\d+) kB$/m.exec(status);
  if (!m) throw new Error(`no VmHWM for pid ${pid}`);
  return Number(m[1]) * 1024;
}

async function pollOk(url: string): Promise<boolean> {
  const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
  await res.arrayBuffer();
  return res.ok;
}

interface ConversionList {
  conversions: Array<{ state: string }>;
}

/** Polls boxproxy's status API until no conversion is pending or running (none when conversion is off). */
async function conversionsSettled(url: string): Promise<number> {
  const t0 = Date.now();
  const deadline = t0 + 600_000;
  for (;;) {
    const res = await fetch(`${url}/boxproxy/v1/conversions`);
    if (res.status === 404) {
      await res.arrayBuffer();
      return 0;
    }
    const list = (await res.json()) as ConversionList;
    if (!list.conversions.some((c) => c.state === 'pending' || c.state === 'running')) return (Date.now() - t0) / 1000;
    if (Date.now() > deadline) throw new Error('boxproxy conversions still running after 600 s');
    await new Promise((r) => setTimeout(r, 200));
  }
}

const CLOCK_TICKS = 100; // USER_HZ on Linux

export async function cpuSecondsOf(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
}

function managed(label: string, url: string, proc: ManagedProcess, dir: string, settle: () => Promise<number>): BenchServer {
  const pid = proc.child.pid;
  if (pid === undefined) throw new Error(`${label} has no pid`);
  return {
    label,
    url,
    pid,
    peakRss: () => peakRssOf(pid),
    cpuSeconds: () => cpuSecondsOf(pid),
    settle,
    async stop() {
      await proc.stop();
      await removeTempDir(dir);
    },
  };
}

/**
 * docker-registry 2.8 with filesystem storage on a free loopback port; in
 * proxy mode when `remoteUrl` is given. Access logs are off, as for boxproxy,
 * so neither pays for logging under load.
 */
export async function startDockerRegistry(label: string, remoteUrl?: string, bin = 'docker-registry'): Promise<BenchServer> {
  const dir = await makeTempDir('bench-registry');
  const port = await freePort();
  const config: Record<string, unknown> = {
    version: 0.1,
    log: { level: 'error', accesslog: { disabled: true } },
    storage: { filesystem: { rootdirectory: join(dir, 'storage') }, cache: { blobdescriptor: 'inmemory' } },
    http: { addr: `127.0.0.1:${port}`, secret: 'bench-only-secret' },
  };
  if (remoteUrl !== undefined) config.proxy = { remoteurl: remoteUrl };
  const configFile = join(dir, 'config.yml');
  await writeFile(configFile, toYaml(config));
  const proc = await startProcess(label, bin, ['serve', configFile], { logFile: join(dir, 'registry.log') });
  const url = `http://127.0.0.1:${port}`;
  await waitUntil(`${label} to answer /v2/`, () => pollOk(`${url}/v2/`), { proc });
  return managed(label, url, proc, dir, async () => 0);
}

export const DISTRIBUTION3_LABEL = `distribution ${toolSpec('distribution').version}`;

/** distribution v3 (test/setup/tools.sh builds it with `go install`), configured as startDockerRegistry does. */
export async function startDistribution3(label: string, remoteUrl?: string): Promise<BenchServer> {
  requireTestTools('distribution');
  return startDockerRegistry(label, remoteUrl, toolBin('distribution'));
}

/**
 * boxproxy (`node dist/src/cli/main.js serve`) with one upstream, which is also
 * the default. `nodeArgs` go before the script (e.g. --cpu-prof for profiling);
 * `conversion` is the config's conversion section (defaults when absent).
 */
export async function startBoxproxy(
  label: string,
  upstreamUrl: string,
  nodeArgs: readonly string[] = [],
  conversion?: ConfigInput['conversion'],
): Promise<BenchServer> {
  const dir = await makeTempDir('bench-boxproxy');
  const port = await freePort();
  const upstreamHost = new URL(upstreamUrl).host;
  const config = {
    listen: `127.0.0.1:${port}`,
    storage: { path: join(dir, 'data') },
    defaultUpstream: upstreamHost,
    upstreams: [{ name: upstreamHost, url: upstreamUrl }],
    log: { level: 'warn' },
    ...(conversion ? { conversion } : {}),
  } satisfies ConfigInput;
  const configFile = join(dir, 'boxproxy.yaml');
  await writeFile(configFile, toYaml(config));
  const proc = await startProcess(label, process.execPath, [...nodeArgs, BOXPROXY_MAIN, 'serve', '--config', configFile], {
    logFile: join(dir, 'boxproxy.log'),
  });
  const url = `http://127.0.0.1:${port}`;
  await waitUntil(`${label} to be ready`, () => pollOk(`${url}/readyz`), { proc });
  return managed(label, url, proc, dir, () => conversionsSettled(url));
}
