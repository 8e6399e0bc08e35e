// HTTP plumbing for the benchmarks: seeding an image into a registry through
// its upload API, timed blob downloads, and manifest load with wrk.
import { createHash, randomBytes } from 'node:crypto';
import { Agent, request } from 'undici';
import { run } from '../test/helpers/proc.js';

export interface SeededImage {
  name: string;
  tag: string;
  manifestDigest: string;
  manifestMediaType: string;
  layerDigest: string;
  layerSize: number;
  configDigest: string;
}

const DOCKER_MANIFEST = 'application/vnd.docker.distribution.manifest.v2+json';
export const MANIFEST_ACCEPT = [
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
  DOCKER_MANIFEST,
].join(', ');

function sha256(data: Buffer): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

async function pushBlob(registry: string, name: string, data: Buffer): Promise<string> {
  const digest = sha256(data);
  const start = await request(`${registry}/v2/${name}/blobs/uploads/`, { method: 'POST' });
  await start.body.dump();
  const location = start.headers.location;
  if (start.statusCode !== 202 || typeof location !== 'string') throw new Error(`upload start: ${start.statusCode}`);
  const target = new URL(location, registry);
  target.searchParams.set('digest', digest);
  const put = await request(target, { method: 'PUT', body: data, headers: { 'content-type': 'application/octet-stream' } });
  await put.body.dump();
  if (put.statusCode !== 201) throw new Error(`upload of ${digest}: ${put.statusCode}`);
  return digest;
}

/** Random bytes in 16 MiB pieces: one randomBytes call of hundreds of MiB is slow and spiky. */
function randomBlob(size: number): Buffer {
  const parts: Buffer[] = [];
  for (let left = size; left > 0; left -= 16 * 2 ** 20) parts.push(randomBytes(Math.min(left, 16 * 2 ** 20)));
  return Buffer.concat(parts, size);
}

/** Pushes a one-layer Docker schema2 image whose layer is `layerSize` random bytes. */
export async function seedImage(registry: string, name: string, tag: string, layerSize: number): Promise<SeededImage> {
  const layer = randomBlob(layerSize);
  const layerDigest = await pushBlob(registry, name, layer);
  const config = Buffer.from(
    JSON.stringify({ architecture: 'amd64', os: 'linux', config: {}, rootfs: { type: 'layers', diff_ids: [layerDigest] } }),
  );
  const configDigest = await pushBlob(registry, name, config);
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: DOCKER_MANIFEST,
      config: { mediaType: 'application/vnd.docker.container.image.v1+json', size: config.length, digest: configDigest },
      layers: [{ mediaType: 'application/vnd.docker.image.rootfs.diff.tar.gzip', size: layer.length, digest: layerDigest }],
    }),
  );
  const res = await request(`${registry}/v2/${name}/manifests/${tag}`, { method: 'PUT', body: manifest, headers: { 'content-type': DOCKER_MANIFEST } });
  await res.body.dump();
  if (res.statusCode !== 201) throw new Error(`manifest push: ${res.statusCode}`);
  return { name, tag, manifestDigest: sha256(manifest), manifestMediaType: DOCKER_MANIFEST, layerDigest, layerSize, configDigest };
}

export interface TimedDownload {
  /** Seconds to the response headers. */
  ttfb: number;
  /** Seconds to the last body byte. */
  total: number;
  bytes: number;
}

// One client for all downloads: connection reuse is what real pullers do.
const agent = new Agent({ connections: 64, bodyTimeout: 300_000, headersTimeout: 300_000 });

/** GETs a URL, reading and discarding the body; fails on a non-200 or a short body. */
export async function timedGet(url: string, expectBytes?: number, headers?: Record<string, string>): Promise<TimedDownload> {
  const t0 = process.hrtime.bigint();
  const res = await request(url, { dispatcher: agent, headers });
  const t1 = process.hrtime.bigint();
  let bytes = 0;
  for await (const chunk of res.body) bytes += (chunk as Buffer).length;
  const t2 = process.hrtime.bigint();
  if (res.statusCode !== 200) throw new Error(`GET ${url}: ${res.statusCode}`);
  if (expectBytes !== undefined && bytes !== expectBytes) throw new Error(`GET ${url}: ${bytes} bytes, expected ${expectBytes}`);
  return { ttfb: Number(t1 - t0) / 1e9, total: Number(t2 - t0) / 1e9, bytes };
}

export async function closeHttp(): Promise<void> {
  await agent.close();
}

export interface LoadResult {
  requestsPerSecond: number;
  requests: number;
  /** Responses other than 2xx/3xx, and socket errors: non-zero makes the number meaningless. */
  failures: number;
  latencyP50Ms: number;
  latencyP99Ms: number;
}

function toMs(value: string, unit: string): number {
  const n = Number(value);
  return unit === 'us' ? n / 1000 : unit === 's' ? n * 1000 : n;
}

/** Parses wrk's report (run with --latency). */
export function parseWrk(output: string): LoadResult {
  const rps = /Requests\/sec:\s+([\d.]+)/.exec(output);
  const total = /(\d+) requests in/.exec(output);
  if (!rps || !total) throw new Error(`unexpected wrk output:\n${output}`);
  const non2xx = /Non-2xx or 3xx responses:\s+(\d+)/.exec(output);
  const socket = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(output);
  const socketErrors = socket ? socket.slice(1).reduce((a, b) => a + Number(b), 0) : 0;
  const pct = (p: string): number => {
    const m = new RegExp(`^\\s+${p}%\\s+([\\d.]+)(us|ms|s)\\s*$`, 'm').exec(output);
    return m ? toMs(m[1] as string, m[2] as string) : Number.NaN;
  };
  return {
    requestsPerSecond: Number(rps[1]),
    requests: Number(total[1]),
    failures: (non2xx ? Number(non2xx[1]) : 0) + socketErrors,
    latencyP50Ms: pct('50'),
    latencyP99Ms: pct('99'),
  };
}

/** wrk, one thread (the other core is left to the server), `connections` connections. */
export async function loadTest(url: string, opts: { connections: number; seconds: number; headers?: Record<string, string> }): Promise<LoadResult> {
  // A long timeout: a slow answer is latency to report, not a socket error.
  const args = ['-t1', `-c${opts.connections}`, `-d${opts.seconds}s`, '--timeout', '10s', '--latency'];
  for (const [k, v] of Object.entries(opts.headers ?? {})) args.push('-H', `${k}: ${v}`);
  args.push(url);
  const { stdout } = await run('wrk', args, { timeoutMs: (opts.seconds + 30) * 1000 });
  return parseWrk(stdout);
}
