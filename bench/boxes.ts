// Box serving benchmark (issue 4, "Benchmark"): boxproxy as its own process in front of a real docker-registry,
// with conversion on. Measures (1) the time from the first tag request to the Box being available, per fixture
// image, and (2) tag requests under load (wrk, 64 connections) for a tag whose answer is the augmented index with a
// cached Box entry, against a plain cached manifest tag of a same-size image excluded from conversion.
import { copyFileSync, existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { request } from 'undici';
import type { ImageIndex } from '../src/oci/types.js';
import type { ImageSpec } from '../test/convert/helpers.js';
import { skopeo } from '../test/helpers/images.js';
import { makeTempDir, removeTempDir } from '../test/helpers/proc.js';
import { MANIFEST_ACCEPT, loadTest, type LoadResult } from './http.js';
import { CountingRelay } from './relay.js';
import { fmt, type BenchSection, type Comparison } from './report.js';
import { startBoxproxy, startDockerRegistry, type BenchServer } from './servers.js';

export type FixtureName = 'wasi' | 'wasmtime' | 'ruby';

export interface BoxesBenchOptions {
  /** Seconds per measured wrk run. */
  loadSeconds: number;
  /** Measured runs per tag, interleaved across the tags so drift in machine load hits all of them alike. */
  rounds: number;
  /** Seconds of the unmeasured run per tag before the rounds. */
  warmupSeconds: number;
  connections: number;
  /** Seconds per single-connection run (latency without queueing), same rounds; 0 skips them. */
  singleSeconds: number;
  /** Fixture images timed from first request to Box. */
  fixtures: FixtureName[];
  boxproxyNodeArgs: string[];
  log: (line: string) => void;
}

export const DEFAULT_BOXES_OPTIONS: Omit<BoxesBenchOptions, 'log'> = {
  loadSeconds: 5,
  rounds: 5,
  warmupSeconds: 2,
  connections: 64,
  singleSeconds: 2,
  fixtures: ['wasi', 'wasmtime', 'ruby'],
  boxproxyNodeArgs: [],
};

const GOAL = 1.1;
const TAG = 'v1';
const BOX_NAMESPACE = 'wasm';
const OCI_MANIFEST_ACCEPT = 'application/vnd.oci.image.manifest.v1+json';

interface Fixtures {
  wasiAppImage(greeting?: string): ImageSpec;
  wasmtimeWrappedImage(): ImageSpec;
  rubyAppImage(): ImageSpec;
  nativeServerImage(): ImageSpec;
  GREETING: string;
  writeLayout: typeof import('../test/convert/helpers.js').writeLayout;
}

/**
 * test/fixtures/images.ts reads wasm/hello.wasm next to itself when loaded; compiled into dist/ it is not there,
 * so the committed build is copied next to the compiled module first (a no-op when run from the sources).
 */
async function loadFixtures(): Promise<Fixtures> {
  const target = new URL('../test/fixtures/wasm/hello.wasm', import.meta.url);
  if (!existsSync(target)) {
    const source = new URL('../../test/fixtures/wasm/hello.wasm', import.meta.url);
    mkdirSync(new URL('.', target), { recursive: true });
    copyFileSync(source, target);
  }
  return (await import('../test/fixtures/images.js')) as Fixtures;
}

export interface FixtureTiming {
  fixture: FixtureName;
  repo: string;
  sourceDigest: string;
  sourceCompressedBytes: number;
  /** Latency of the first tag request (cold: the proxy fetches the tag from upstream and starts converting). */
  firstTagMs: number;
  /** Whether the first tag answer already carried the Box (it may, when conversion ends within conversion.waitMs). */
  firstTagHadBox: boolean;
  /** From sending the first tag request until the Box reference answers 200. */
  toBoxSeconds: number;
  /** What the status API reports once done. */
  strategy: string;
  boxCompressedBytes: number;
  /** Sum of the conversion report's stage times (the worker's own view, without queueing and ingest). */
  reportStagesMs: number;
}

export interface TagLoad {
  label: string;
  url: string;
  /** Bytes and media type of one answer (checked before loading). */
  responseBytes: number;
  responseType: string;
  runs: Array<LoadResult & { cpuSeconds: number }>;
  /** Runs with a single connection (only for the Box and plain tags). */
  singleRuns: LoadResult[];
  warmup: LoadResult;
  upstreamRequests: number;
}

export interface BoxesBenchRaw {
  fixtures: FixtureTiming[];
  loads: { box: TagLoad; plain: TagLoad; unconvertible: TagLoad };
  options: Omit<BoxesBenchOptions, 'log'>;
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}

interface Answer {
  status: number;
  type: string;
  body: Buffer;
}

async function get(url: string, accept: string): Promise<Answer> {
  const res = await request(url, { headers: { accept }, headersTimeout: 300_000, bodyTimeout: 300_000 });
  const body = Buffer.from(await res.body.arrayBuffer());
  const type = res.headers['content-type'];
  return { status: res.statusCode, type: typeof type === 'string' ? type : '', body };
}

function hasBoxEntry(answer: Answer): boolean {
  if (!answer.type.includes('index') && !answer.type.includes('manifest.list')) return false;
  const index = JSON.parse(answer.body.toString('utf8')) as ImageIndex;
  return index.manifests.some((d) => d.platform?.os === 'wasip1' && d.platform.architecture === 'wasm');
}

interface StatusRecord {
  state: string;
  reason?: string;
  strategy?: string;
  report?: { timings?: Record<string, number>; sizes?: { boxCompressed?: number } } | null;
}

async function status(proxyUrl: string, digest: string): Promise<StatusRecord | undefined> {
  const res = await request(`${proxyUrl}/boxproxy/v1/conversions/${digest}`);
  if (res.statusCode === 404) {
    await res.body.dump();
    return undefined;
  }
  if (res.statusCode !== 200) throw new Error(`status API answered ${res.statusCode}: ${await res.body.text()}`);
  return (await res.body.json()) as StatusRecord;
}

/** First tag request, then the Box reference (which waits up to conversion.boxWaitMs) until it answers 200. */
async function timeToBox(proxy: BenchServer, fixture: FixtureName, repo: string, pushed: Pushed): Promise<FixtureTiming> {
  const t0 = performance.now();
  const first = await get(`${proxy.url}/v2/${repo}/manifests/${TAG}`, MANIFEST_ACCEPT);
  const firstTagMs = performance.now() - t0;
  if (first.status !== 200) throw new Error(`first tag request for ${repo}: ${first.status} ${first.body.toString('utf8')}`);
  const deadline = Date.now() + 300_000;
  for (;;) {
    const box = await get(`${proxy.url}/v2/${BOX_NAMESPACE}/${repo}/manifests/${TAG}`, OCI_MANIFEST_ACCEPT);
    if (box.status === 200) break;
    const text = box.body.toString('utf8');
    if (box.status !== 404 || !text.includes('converting')) throw new Error(`no Box for ${repo}: ${box.status} ${text}`);
    if (Date.now() > deadline) throw new Error(`no Box for ${repo} after 300 s`);
    // The Box reference already waited conversion.boxWaitMs; a short pause keeps a misconfigured wait from spinning.
    await sleep(20);
  }
  const toBoxSeconds = (performance.now() - t0) / 1000;
  const rec = await status(proxy.url, pushed.digest);
  if (rec?.state !== 'done') throw new Error(`status of ${repo} (${pushed.digest}) after its Box answered: ${JSON.stringify(rec)}`);
  const timings = rec.report?.timings ?? {};
  return {
    fixture,
    repo,
    sourceDigest: pushed.digest,
    sourceCompressedBytes: pushed.compressedBytes,
    firstTagMs,
    firstTagHadBox: hasBoxEntry(first),
    toBoxSeconds,
    strategy: rec.strategy ?? 'unknown',
    boxCompressedBytes: rec.report?.sizes?.boxCompressed ?? 0,
    reportStagesMs: Object.values(timings).reduce((a, b) => a + b, 0),
  };
}

interface Pushed {
  digest: string;
  compressedBytes: number;
}

async function push(fx: Fixtures, registryUrl: string, scratch: string, repo: string, spec: ImageSpec): Promise<Pushed> {
  const layout = join(scratch, repo.replace(/\//g, '_'));
  const descriptor = await fx.writeLayout(layout, spec, { tag: TAG });
  const host = new URL(registryUrl).host;
  await skopeo(['copy', '--preserve-digests', '--quiet', '--dest-tls-verify=false', '--dest-no-creds', `oci:${layout}:${TAG}`, `docker://${host}/${repo}:${TAG}`]);
  // Layer sizes from the manifest, as pushed.
  const manifest = await get(`${registryUrl}/v2/${repo}/manifests/${descriptor.digest}`, OCI_MANIFEST_ACCEPT);
  const parsed = JSON.parse(manifest.body.toString('utf8')) as { layers: Array<{ size: number }> };
  return { digest: descriptor.digest, compressedBytes: parsed.layers.reduce((n, l) => n + l.size, 0) };
}

export async function runBoxesBench(opts: BoxesBenchOptions): Promise<{ section: BenchSection; raw: BoxesBenchRaw }> {
  const log = opts.log;
  const fx = await loadFixtures();
  const scratch = await makeTempDir('bench-boxes');
  const upstream = await startDockerRegistry('upstream registry');
  let relay: CountingRelay | undefined;
  let proxy: BenchServer | undefined;
  try {
    // The plain image is the WASI app with another greeting of the same length: same layout and sizes, another
    // digest (conversion records are per source digest, so it must differ from the converted one).
    const plainGreeting = fx.GREETING.replace('image', 'plain');
    if (plainGreeting.length !== fx.GREETING.length || plainGreeting === fx.GREETING) throw new Error('plain fixture greeting must differ in content only');
    const specs: Record<string, ImageSpec> = {
      'bench/wasi': fx.wasiAppImage(),
      'bench/plain': fx.wasiAppImage(plainGreeting),
      'bench/native': fx.nativeServerImage(),
      ...(opts.fixtures.includes('wasmtime') ? { 'bench/wasmtime': fx.wasmtimeWrappedImage() } : {}),
      ...(opts.fixtures.includes('ruby') ? { 'bench/ruby': fx.rubyAppImage() } : {}),
    };
    const pushed: Record<string, Pushed> = {};
    for (const [repo, spec] of Object.entries(specs)) pushed[repo] = await push(fx, upstream.url, scratch, repo, spec);
    log(`pushed ${Object.keys(specs).join(', ')} to ${upstream.url}`);

    const upstreamAddr = new URL(upstream.url);
    relay = await CountingRelay.start({ host: upstreamAddr.hostname, port: Number(upstreamAddr.port) });
    // Upstream names are the relay's host:port; one path component, so `*` matches it.
    proxy = await startBoxproxy('boxproxy', relay.url, opts.boxproxyNodeArgs, { exclude: ['*/bench/plain'] });
    const proxyUrl = proxy.url;

    const fixtures: FixtureTiming[] = [];
    const order: FixtureName[] = ['wasi', ...opts.fixtures.filter((f) => f !== 'wasi')];
    for (const fixture of order) {
      const repo = `bench/${fixture}`;
      const t = await timeToBox(proxy, fixture, repo, pushed[repo] as Pushed);
      log(`${fixture}: Box after ${t.toBoxSeconds.toFixed(2)} s (first tag answer ${t.firstTagMs.toFixed(0)} ms, strategy ${t.strategy})`);
      fixtures.push(t);
    }

    // The loaded tags: each checked to answer what it stands for before it is measured.
    const tagUrl = (repo: string): string => `${proxyUrl}/v2/${repo}/manifests/${TAG}`;
    const check = async (repo: string, wantBox: boolean): Promise<Answer> => {
      const a = await get(tagUrl(repo), MANIFEST_ACCEPT);
      if (a.status !== 200) throw new Error(`${repo}:${TAG} answered ${a.status}`);
      if (hasBoxEntry(a) !== wantBox) throw new Error(`${repo}:${TAG} ${wantBox ? 'lacks' : 'has'} a Box entry (${a.type})`);
      return a;
    };
    await check('bench/plain', false);
    await check('bench/native', false);
    // The native image's conversion runs in a worker and ends unconvertible; the loads start after it settled.
    await proxy.settle();
    for (const [repo, want] of [['bench/plain', 'unconvertible'], ['bench/native', 'unconvertible']] as const) {
      const rec = await status(proxyUrl, (pushed[repo] as Pushed).digest);
      if (rec?.state !== want) throw new Error(`${repo}: expected a conversion record ${want}, got ${JSON.stringify(rec)}`);
    }
    const targets = {
      box: { label: 'tag with a cached Box entry (augmented index)', answer: await check('bench/wasi', true), repo: 'bench/wasi' },
      plain: { label: 'plain cached manifest tag (repository excluded from conversion)', answer: await check('bench/plain', false), repo: 'bench/plain' },
      unconvertible: { label: 'unconvertible image tag (native ELF, remembered)', answer: await check('bench/native', false), repo: 'bench/native' },
    };
    const keys = Object.keys(targets) as Array<keyof typeof targets>;
    const headers = { Accept: MANIFEST_ACCEPT };
    const loads = {} as Record<keyof typeof targets, TagLoad>;
    for (const key of keys) {
      const t = targets[key];
      const warmup = await loadTest(tagUrl(t.repo), { connections: opts.connections, seconds: opts.warmupSeconds, headers });
      loads[key] = { label: t.label, url: tagUrl(t.repo), responseBytes: t.answer.body.length, responseType: t.answer.type, runs: [], singleRuns: [], warmup, upstreamRequests: 0 };
    }
    for (let round = 0; round < opts.rounds; round++) {
      // Rotating the order spreads any trend in the machine's load over all tags.
      const rotated = keys.map((_, i) => keys[(i + round) % keys.length] as keyof typeof targets);
      for (const key of rotated) {
        const load = loads[key];
        const before = relay.requests.length;
        const cpu0 = await proxy.cpuSeconds();
        const r = await loadTest(load.url, { connections: opts.connections, seconds: opts.loadSeconds, headers });
        const cpuSeconds = (await proxy.cpuSeconds()) - cpu0;
        load.upstreamRequests += relay.requests.length - before;
        if (r.failures > r.requests * 0.01) throw new Error(`${key}: ${r.failures} of ${r.requests} requests failed`);
        load.runs.push({ ...r, cpuSeconds });
        log(`round ${round + 1}/${opts.rounds} ${key}: ${r.requestsPerSecond.toFixed(0)} req/s, p50 ${r.latencyP50Ms.toFixed(1)} ms, p99 ${r.latencyP99Ms.toFixed(1)} ms`);
      }
    }
    // One connection: each request's own service time, without the queueing that dominates at 64 connections.
    for (let round = 0; opts.singleSeconds > 0 && round < opts.rounds; round++) {
      for (const key of round % 2 ? (['plain', 'box'] as const) : (['box', 'plain'] as const)) {
        const load = loads[key];
        const before = relay.requests.length;
        const r = await loadTest(load.url, { connections: 1, seconds: opts.singleSeconds, headers });
        load.upstreamRequests += relay.requests.length - before;
        if (r.failures > r.requests * 0.01) throw new Error(`${key}: ${r.failures} of ${r.requests} single-connection requests failed`);
        load.singleRuns.push(r);
      }
    }
    if (opts.singleSeconds > 0) {
      log(`1 connection: box p50 ${median(loads.box.singleRuns.map((r) => r.latencyP50Ms)).toFixed(3)} ms, plain p50 ${median(loads.plain.singleRuns.map((r) => r.latencyP50Ms)).toFixed(3)} ms`);
    }
    const raw: BoxesBenchRaw = { fixtures, loads, options: { ...opts, log: undefined } as Omit<BoxesBenchOptions, 'log'> };
    return { section: toSection(raw), raw };
  } finally {
    await proxy?.stop().catch(() => undefined);
    await relay?.close().catch(() => undefined);
    await upstream.stop();
    await removeTempDir(scratch);
  }
}

interface LoadSummary {
  rps: number;
  p50: number;
  p99: number;
  cpuPer1000: number;
  failures: number;
}

function summarize(l: TagLoad): LoadSummary {
  const requests = l.runs.reduce((n, r) => n + r.requests, 0);
  return {
    rps: median(l.runs.map((r) => r.requestsPerSecond)),
    p50: median(l.runs.map((r) => r.latencyP50Ms)),
    p99: median(l.runs.map((r) => r.latencyP99Ms)),
    cpuPer1000: (l.runs.reduce((n, r) => n + r.cpuSeconds, 0) / requests) * 1000,
    failures: l.runs.reduce((n, r) => n + r.failures, 0),
  };
}

function single(l: TagLoad, key: 'latencyP50Ms' | 'latencyP99Ms'): number {
  return median(l.singleRuns.map((r) => r[key]));
}

const FIXTURE_LABELS: Record<FixtureName, string> = {
  wasi: 'WASI hello (`/app/hello.wasm` entrypoint)',
  wasmtime: 'hello behind `wasmtime run --dir … --env …`',
  ruby: 'Ruby app (`CMD ["ruby", "/app/main.rb"]`)',
};

function firstAnswerNote(fixtures: readonly FixtureTiming[]): string {
  const withBox = fixtures.filter((f) => f.firstTagHadBox).map((f) => f.fixture);
  const without = fixtures.filter((f) => !f.firstTagHadBox).map((f) => f.fixture);
  const seen = withBox.length === 0 ? `here it did for none of ${without.join(', ')}` : without.length === 0 ? `here it did for all of ${withBox.join(', ')}` : `here it did for ${withBox.join(', ')}, not for ${without.join(', ')}`;
  return `A tag request waits for a pending conversion at most conversion.waitMs (250 ms) counted from the conversion's start, then answers the upstream manifest while the conversion continues; so the first tag answer carries the Box only when the whole conversion (fetching layers, converting, ingesting, signing) ends within that time (${seen}). Its latency includes that wait.`;
}

/** How much p99 at high concurrency moves between runs of the same tag, so a ratio of medians is read with care. */
function p99Note(loads: BoxesBenchRaw['loads']): string {
  const span = (l: TagLoad): string => {
    const xs = l.runs.map((r) => r.latencyP99Ms);
    return `${fmt(Math.min(...xs))} to ${fmt(Math.max(...xs))} ms`;
  };
  return `p99 at 64 connections moves a lot between runs of the same tag (Box tag ${span(loads.box)}, plain tag ${span(loads.plain)}, unconvertible tag ${span(loads.unconvertible)}; the unconvertible tag runs the very same code as the plain tag: an excluded repository's image gets a remembered unconvertible record too): it is set by pauses (garbage collection, the OS scheduling wrk and the proxy on shared CPUs), so a p99 ratio above the goal is only meaningful when the ranges do not overlap. The single-connection rows and the CPU time per request compare the code paths themselves.`;
}

function toSection(raw: BoxesBenchRaw): BenchSection {
  const { options } = raw;
  const box = summarize(raw.loads.box);
  const plain = summarize(raw.loads.plain);
  const unconv = summarize(raw.loads.unconvertible);
  const c = options.connections;
  const rounds = `median of ${options.rounds} runs of ${options.loadSeconds} s`;
  const lowerGoal = (metric: string, unit: string, ref: number, val: number): Comparison => ({
    metric, unit, reference: ref, boxproxy: val, better: 'lower', goal: `ratio <= ${GOAL}`, met: val <= ref * GOAL,
  });
  const comparisons: Comparison[] = [
    lowerGoal(`tag GET p50 latency, ${c} connections (${rounds})`, 'ms', plain.p50, box.p50),
    lowerGoal(`tag GET p99 latency, ${c} connections (${rounds})`, 'ms', plain.p99, box.p99),
    {
      metric: `tag GETs per second, ${c} connections (${rounds})`, unit: 'req/s', reference: plain.rps, boxproxy: box.rps, better: 'higher',
      goal: `ratio >= ${fmt(1 / GOAL)} (1 / ${GOAL})`, met: box.rps >= plain.rps / GOAL,
    },
    ...(raw.loads.box.singleRuns.length > 0
      ? [
          { metric: `tag GET p50 latency, 1 connection (median of ${options.rounds} runs of ${options.singleSeconds} s)`, unit: 'ms', reference: single(raw.loads.plain, 'latencyP50Ms'), boxproxy: single(raw.loads.box, 'latencyP50Ms'), better: 'lower' as const },
          { metric: `tag GET p99 latency, 1 connection (median of ${options.rounds} runs of ${options.singleSeconds} s)`, unit: 'ms', reference: single(raw.loads.plain, 'latencyP99Ms'), boxproxy: single(raw.loads.box, 'latencyP99Ms'), better: 'lower' as const },
        ]
      : []),
    { metric: 'proxy CPU time per 1000 tag GETs (all rounds)', unit: 's', reference: plain.cpuPer1000, boxproxy: box.cpuPer1000, better: 'lower' },
    { metric: 'response body', unit: 'bytes', reference: raw.loads.plain.responseBytes, boxproxy: raw.loads.box.responseBytes, better: 'lower' },
  ];
  const range = (xs: number[]): string => `${fmt(Math.min(...xs))} - ${fmt(Math.max(...xs))}`;
  const loadRow = (l: TagLoad, s: LoadSummary): string[] => [
    l.label, fmt(s.rps), fmt(s.p50), fmt(s.p99), range(l.runs.map((r) => r.latencyP99Ms)), fmt(s.cpuPer1000), `${s.failures}`, `${l.upstreamRequests}`,
  ];
  const kib = (b: number): string => fmt(b / 1024);
  return {
    id: 'boxes',
    title: 'Serving Boxes (tag requests, time to Box)',
    reference: 'the same boxproxy process answering a plain cached manifest tag of a same-size image whose repository is excluded from conversion (`conversion.exclude`)',
    columns: { reference: 'plain tag', boxproxy: 'tag with Box' },
    comparisons,
    table: {
      header: ['fixture image', 'strategy', 'first tag answer (ms)', 'Box in first tag answer', 'first tag request to Box (s)', 'conversion stages in the worker (s)', 'source layers (KiB gzip)', 'Box layers (KiB gzip)'],
      rows: raw.fixtures.map((f) => [
        FIXTURE_LABELS[f.fixture], f.strategy, fmt(f.firstTagMs), f.firstTagHadBox ? 'yes' : 'no', fmt(f.toBoxSeconds), fmt(f.reportStagesMs / 1000), kib(f.sourceCompressedBytes), kib(f.boxCompressedBytes),
      ]),
    },
    tables: [
      {
        header: [`tag under load (${c} connections, ${rounds})`, 'req/s', 'p50 (ms)', 'p99 (ms)', 'p99 range over runs (ms)', 'CPU s / 1000 req', 'failed requests', 'upstream requests'],
        rows: [loadRow(raw.loads.box, box), loadRow(raw.loads.plain, plain), loadRow(raw.loads.unconvertible, unconv)],
      },
    ],
    method: [
      'Upstream: Debian docker-registry on 127.0.0.1, fixture images from test/fixtures/images.ts (hello.wasm built from test/fixtures/wasm/hello.c) pushed with `skopeo copy --preserve-digests` as OCI image manifests.',
      `boxproxy runs as its own process (\`node dist/src/cli/main.js serve --config <tmp>\`), log level warn, conversion on with default settings (workers = CPU cores, waitMs 250 ms, boxWaitMs 30 s) and \`conversion.exclude: ["*/bench/plain"]\`; it reaches the upstream through a counting TCP relay (bench/relay.ts).`,
      'Time to Box: one fixture at a time on the fresh proxy: a tag request with an Accept header listing the OCI and Docker manifest and index types (the clock starts as it is sent; the proxy fetches the tag from upstream and starts the conversion), then `GET /v2/wasm/<name>/manifests/<tag>` (the Box reference, which waits for a pending conversion up to boxWaitMs) repeated until it answers 200. "Conversion stages in the worker" is the sum of the conversion report\'s stage times, read from `GET /boxproxy/v1/conversions/{digest}`; the rest is fetching the layers into the store, starting the worker, ingesting and signing the Box.',
      `Tags under load: \`bench/wasi:${TAG}\` (its Box is done: the answer is the stored index wrapping the image manifest plus the wasip1/wasm Box entry), \`bench/plain:${TAG}\` (the same WASI app with another greeting of the same length: same layer sizes, its own digest; excluded from conversion, so the answer is the upstream manifest) and \`bench/native:${TAG}\` (converted once, unconvertible, remembered). Both the plain and the native tag have a remembered unconvertible record (exclusion is recorded as unconvertible with its reason), so they run the same code. Each answer is checked (index with or without a wasip1/wasm entry) before loading; all conversions have settled.`,
      `Load: wrk with 1 thread and ${c} connections, same Accept header, one unmeasured ${options.warmupSeconds} s run per tag, then ${options.rounds} rounds of ${options.loadSeconds} s per tag, the tags' order rotated each round; the table gives the median over rounds (CPU time: total over rounds). Then ${options.rounds} runs of ${options.singleSeconds} s with 1 connection for the Box and plain tags (alternating), for the latency of one request without queueing. More than 1 % failed requests fails the benchmark.`,
      'CPU time: user + system time of the boxproxy process (all threads) from /proc/<pid>/stat around each measured run; steadier than wall-clock numbers when other work shares the machine.',
    ],
    notes: [
      'wrk and boxproxy share the machine\'s CPUs; at 64 connections in a closed loop the latency is mostly queueing (about connections / requests per second), so p50 and req/s move together, and both move with other load on the machine (see the load average above). The CPU time per request is the steadier comparison of the two code paths.',
      firstAnswerNote(raw.fixtures),
      p99Note(raw.loads),
      `The conversion stages themselves are ${raw.fixtures.map((f) => `${fmt((f.reportStagesMs / 1000 / f.toBoxSeconds) * 100)} % (${f.fixture})`).join(', ')} of the time to Box; the rest is around them: the first request's upstream round trips, fetching the layers into the store, starting a conversion worker, ingesting and signing the Box.`,
    ],
  };
}
