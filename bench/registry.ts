// Registry benchmark: boxproxy against docker-registry 2.8 in proxy mode (the
// reference) and distribution v3 in proxy mode, all in front of the same docker-registry
// upstream, each through its own counting relay so upstream traffic is attributed exactly.
import { execFile } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { MANIFEST_ACCEPT, loadTest, seedImage, timedGet, type LoadResult, type SeededImage } from './http.js';
import { CountingRelay } from './relay.js';
import type { BenchSection, Comparison } from './report.js';
import { DISTRIBUTION3_LABEL, startBoxproxy, startDistribution3, startDockerRegistry, type BenchServer } from './servers.js';

export interface RegistryBenchOptions {
  blobMiB: number;
  /** Timed warm downloads of the blob per client (after warm-up), interleaved between the proxies. */
  warmRuns: number;
  /** Cold downloads, each on fresh proxies. */
  coldRuns: number;
  /** Seconds per manifest load run. */
  loadSeconds: number;
  connections: number;
  herd: number;
  /** Extra node flags for the boxproxy process, e.g. --cpu-prof. */
  boxproxyNodeArgs: string[];
  log: (line: string) => void;
}

export const DEFAULT_REGISTRY_OPTIONS: Omit<RegistryBenchOptions, 'log'> = {
  blobMiB: 256,
  warmRuns: 11,
  coldRuns: 3,
  loadSeconds: 10,
  connections: 64,
  herd: 20,
  boxproxyNodeArgs: [],
};

type Kind = 'reference' | 'distribution3' | 'boxproxy';
const KINDS: readonly Kind[] = ['reference', 'distribution3', 'boxproxy'];

interface KindResult {
  coldCpu: number[];
  warmCpu: number;
  manifestCpuPer1000: number;
  coldTtfb: number[];
  coldTotal: number[];
  coldUpstreamBlobGets: number[];
  /** Warm throughput with curl, and with undici in the benchmark process. */
  warmMBps: number[];
  warmUndiciMBps: number[];
  manifestByTag: LoadResult;
  manifestByDigest: LoadResult;
  upstreamRequestsDuringTagLoad: number;
  /** Seconds from the first tag request until background work (boxproxy's conversion of the image) settled. */
  settleSeconds: number;
  upstreamRequestsDuringDigestLoad: number;
  peakRss: number;
  herdUpstreamBlobGets: number;
  herdUpstreamMiB: number;
  herdSeconds: number;
  herdPeakRss: number;
}

export type RegistryBenchRaw = Record<Kind, KindResult> & { image: SeededImage; options: Omit<RegistryBenchOptions, 'log'> };

interface Instance {
  relay: CountingRelay;
  proxy: BenchServer;
  stop(): Promise<void>;
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}

const MiB = 2 ** 20;
const execFileAsync = promisify(execFile);

/** A warm download with curl into /dev/null: a client light enough not to be what is measured. */
async function curlGet(url: string, expectBytes: number): Promise<number> {
  const { stdout } = await execFileAsync('curl', ['-sS', '--fail', '-o', '/dev/null', '-w', '%{size_download} %{time_total}', url]);
  const [size, seconds] = stdout.trim().split(' ').map(Number);
  if (size !== expectBytes || !seconds) throw new Error(`curl ${url}: ${stdout}`);
  return size / seconds / 1e6;
}

export async function runRegistryBench(opts: RegistryBenchOptions): Promise<{ section: BenchSection; raw: RegistryBenchRaw }> {
  const log = opts.log;
  const upstream = await startDockerRegistry('upstream registry');
  const live = new Set<Instance>();
  try {
    const upstreamAddr = new URL(upstream.url);
    log(`seeding a ${opts.blobMiB} MiB layer into ${upstream.url}`);
    const image = await seedImage(upstream.url, 'bench/app', 'v1', opts.blobMiB * MiB);

    async function fresh(kind: Kind): Promise<Instance> {
      const relay = await CountingRelay.start({ host: upstreamAddr.hostname, port: Number(upstreamAddr.port) });
      try {
        const proxy =
          kind === 'reference'
            ? await startDockerRegistry('reference proxy', relay.url)
            : kind === 'distribution3'
              ? await startDistribution3('distribution v3 proxy', relay.url)
              : await startBoxproxy('boxproxy', relay.url, opts.boxproxyNodeArgs);
        const instance: Instance = {
          relay,
          proxy,
          async stop() {
            await proxy.stop();
            await relay.close();
          },
        };
        live.add(instance);
        return instance;
      } catch (err) {
        await relay.close();
        throw err;
      }
    }
    async function retire(instance: Instance): Promise<void> {
      live.delete(instance);
      await instance.stop();
    }

    const blobPath = `/v2/${image.name}/blobs/${image.layerDigest}`;
    const results = {} as Record<Kind, KindResult>;
    const partial = {} as Record<Kind, Partial<KindResult>>;
    const warm = {} as Record<Kind, Instance>;
    for (const kind of KINDS) {
      const r: Partial<KindResult> = { coldCpu: [], coldTtfb: [], coldTotal: [], coldUpstreamBlobGets: [], warmMBps: [], warmUndiciMBps: [] };
      // Cold: every run on fresh proxies; the last instance stays for the warm measurements.
      let inst: Instance | undefined;
      for (let i = 0; i < opts.coldRuns; i++) {
        if (inst) await retire(inst);
        inst = await fresh(kind);
        // The small config blob first: "cold" means an empty cache, not a process
        // that has never served a request (first-request set-up is not measured).
        await timedGet(`${inst.proxy.url}/v2/${image.name}/blobs/${image.configDigest}`);
        const cpu0 = await inst.proxy.cpuSeconds();
        const cold = await timedGet(inst.proxy.url + blobPath, image.layerSize);
        // docker-registry stores the blob in the background; give that time to land in the CPU count.
        await sleep(500);
        r.coldCpu!.push((await inst.proxy.cpuSeconds()) - cpu0);
        r.coldTtfb!.push(cold.ttfb);
        r.coldTotal!.push(cold.total);
        r.coldUpstreamBlobGets!.push(inst.relay.count('GET', `/blobs/${image.layerDigest}`));
        log(`${kind}: cold blob ${cold.total.toFixed(2)} s (first byte ${(cold.ttfb * 1000).toFixed(1)} ms)`);
      }
      if (!inst) throw new Error('coldRuns must be at least 1');

      // Warm-up until a download causes no upstream traffic: a proxy may still be
      // storing the blob after the cold response ended (docker-registry does).
      for (let i = 0; ; i++) {
        const before = inst.relay.requests.length;
        await timedGet(inst.proxy.url + blobPath, image.layerSize);
        if (inst.relay.requests.length === before) break;
        if (i === 20) throw new Error(`${kind} still goes upstream after ${i + 1} downloads of a cached blob`);
        await sleep(250);
      }
      warm[kind] = inst;
      partial[kind] = r;
    }

    // Warm: the proxies take turns, run by run, so a change in the machine's load hits both alike.
    for (const kind of KINDS) partial[kind].warmCpu = 0;
    for (let i = 0; i < opts.warmRuns; i++) {
      for (const kind of KINDS) {
        const { proxy } = warm[kind];
        const r = partial[kind];
        const cpu0 = await proxy.cpuSeconds();
        r.warmMBps!.push(await curlGet(proxy.url + blobPath, image.layerSize));
        r.warmCpu! += ((await proxy.cpuSeconds()) - cpu0) / opts.warmRuns;
        const undici = await timedGet(proxy.url + blobPath, image.layerSize);
        r.warmUndiciMBps!.push(undici.bytes / undici.total / 1e6);
      }
    }
    for (const kind of KINDS) log(`${kind}: warm blob ${median(partial[kind].warmMBps!).toFixed(0)} MB/s with curl, ${median(partial[kind].warmUndiciMBps!).toFixed(0)} MB/s with undici (medians of ${opts.warmRuns})`);

    for (const kind of KINDS) {
      const inst = warm[kind];
      const r = partial[kind];
      let manifestCpu = 0;
      let manifestRequests = 0;
      const manifestLoad = async (reference: string): Promise<[LoadResult, number]> => {
        const url = `${inst.proxy.url}/v2/${image.name}/manifests/${reference}`;
        const headers = { Accept: MANIFEST_ACCEPT };
        await timedGet(url, undefined, headers);
        // A tag request starts boxproxy's conversion of the image; requests/s are measured
        // in the steady state after it, not while it competes for the CPU.
        r.settleSeconds = Math.max(r.settleSeconds ?? 0, await inst.proxy.settle());
        // A short unmeasured run first: JIT, connection set-up, caches.
        await loadTest(url, { connections: opts.connections, seconds: Math.min(3, opts.loadSeconds), headers });
        const before = inst.relay.requests.length;
        const cpu0 = await inst.proxy.cpuSeconds();
        const result = await loadTest(url, { connections: opts.connections, seconds: opts.loadSeconds, headers });
        manifestCpu += (await inst.proxy.cpuSeconds()) - cpu0;
        manifestRequests += result.requests;
        // A few failures are reported; many mean the number measures errors, not a registry.
        if (result.failures > result.requests * 0.01) throw new Error(`${kind}: ${result.failures} of ${result.requests} requests failed during manifest load on ${url}`);
        return [result, inst.relay.requests.length - before];
      };
      [r.manifestByTag, r.upstreamRequestsDuringTagLoad] = await manifestLoad(image.tag);
      [r.manifestByDigest, r.upstreamRequestsDuringDigestLoad] = await manifestLoad(image.manifestDigest);
      r.manifestCpuPer1000 = (manifestCpu / manifestRequests) * 1000;
      log(`${kind}: manifests ${r.manifestByTag.requestsPerSecond.toFixed(0)} req/s by tag, ${r.manifestByDigest.requestsPerSecond.toFixed(0)} req/s by digest`);
      r.peakRss = await inst.proxy.peakRss();
      await retire(inst);

      // The herd: parallel cold pulls of one blob on fresh proxies.
      const herd = await fresh(kind);
      const t0 = process.hrtime.bigint();
      await Promise.all(Array.from({ length: opts.herd }, () => timedGet(herd.proxy.url + blobPath, image.layerSize)));
      r.herdSeconds = Number(process.hrtime.bigint() - t0) / 1e9;
      r.herdUpstreamBlobGets = herd.relay.count('GET', `/blobs/${image.layerDigest}`);
      r.herdUpstreamMiB = herd.relay.bytesFromUpstream / MiB;
      r.herdPeakRss = await herd.proxy.peakRss();
      log(`${kind}: ${opts.herd} parallel cold pulls -> ${r.herdUpstreamBlobGets} upstream GETs, ${r.herdSeconds.toFixed(2)} s`);
      await retire(herd);
      results[kind] = r as KindResult;
    }

    const raw: RegistryBenchRaw = { ...results, image, options: { ...opts, log: undefined } as Omit<RegistryBenchOptions, 'log'> };
    return { section: toSection(raw, opts), raw };
  } finally {
    for (const instance of live) await instance.stop().catch(() => undefined);
    await upstream.stop();
  }
}

function compare(
  metric: string,
  unit: string,
  better: 'higher' | 'lower',
  pick: (r: KindResult) => number,
  raw: RegistryBenchRaw,
  goal?: { text: string; met: (ref: number, box: number) => boolean },
): Comparison {
  const reference = pick(raw.reference);
  const boxproxy = pick(raw.boxproxy);
  return { metric, unit, better, reference, boxproxy, goal: goal?.text, met: goal?.met(reference, boxproxy), extra: [pick(raw.distribution3)] };
}

const atLeastEqual = { text: 'ratio >= 1.0', met: (ref: number, box: number) => box >= ref };

function toSection(raw: RegistryBenchRaw, opts: RegistryBenchOptions): BenchSection {
  const mib = (b: number): number => b / MiB;
  const comparisons: Comparison[] = [
    compare(`warm blob throughput (${opts.blobMiB} MiB, curl, median of ${opts.warmRuns})`, 'MB/s', 'higher', (r) => median(r.warmMBps), raw, atLeastEqual),
    compare(`warm blob throughput (${opts.blobMiB} MiB, undici in the benchmark process, median of ${opts.warmRuns})`, 'MB/s', 'higher', (r) => median(r.warmUndiciMBps), raw),
    compare(`manifest GET by tag, ${opts.connections} connections`, 'req/s', 'higher', (r) => r.manifestByTag.requestsPerSecond, raw, atLeastEqual),
    compare(`manifest GET by digest, ${opts.connections} connections`, 'req/s', 'higher', (r) => r.manifestByDigest.requestsPerSecond, raw, atLeastEqual),
    compare('manifest GET by tag, p99 latency', 'ms', 'lower', (r) => r.manifestByTag.latencyP99Ms, raw),
    compare('manifest GET by digest, p99 latency', 'ms', 'lower', (r) => r.manifestByDigest.latencyP99Ms, raw),
    compare(`cold blob, time to last byte (median of ${opts.coldRuns})`, 's', 'lower', (r) => median(r.coldTotal), raw),
    compare(`cold blob, time to first byte (median of ${opts.coldRuns})`, 'ms', 'lower', (r) => median(r.coldTtfb) * 1000, raw),
    compare(`proxy CPU time per cold blob (median of ${opts.coldRuns})`, 's', 'lower', (r) => median(r.coldCpu), raw),
    compare('proxy CPU time per warm blob', 's', 'lower', (r) => r.warmCpu, raw),
    compare('proxy CPU time per 1000 manifest GETs (tag and digest loads)', 's', 'lower', (r) => r.manifestCpuPer1000, raw),
    compare('upstream blob GETs for one cold pull', 'count', 'lower', (r) => median(r.coldUpstreamBlobGets), raw),
    compare(`upstream blob GETs for ${opts.herd} parallel cold pulls`, 'count', 'lower', (r) => r.herdUpstreamBlobGets, raw, {
      text: 'boxproxy 1, reference several',
      met: (ref, box) => box === 1 && ref > 1,
    }),
    compare(`bytes from upstream for ${opts.herd} parallel cold pulls`, 'MiB', 'lower', (r) => r.herdUpstreamMiB, raw),
    compare(`${opts.herd} parallel cold pulls, time to all done`, 's', 'lower', (r) => r.herdSeconds, raw),
    compare('peak RSS, cold + warm + manifest load', 'MiB', 'lower', (r) => mib(r.peakRss), raw),
    compare(`peak RSS, ${opts.herd} parallel cold pulls`, 'MiB', 'lower', (r) => mib(r.herdPeakRss), raw),
  ];
  return {
    id: 'registry',
    title: 'Pull-through registry',
    reference: `Debian docker-registry (distribution 2.8.2) in proxy mode (\`proxy.remoteurl\`); also ${DISTRIBUTION3_LABEL} in proxy mode`,
    extraColumns: [DISTRIBUTION3_LABEL],
    comparisons,
    table: {
      header: ['during the measured manifest load', 'reference', 'boxproxy', DISTRIBUTION3_LABEL],
      rows: [
        ['upstream requests, by tag', String(raw.reference.upstreamRequestsDuringTagLoad), String(raw.boxproxy.upstreamRequestsDuringTagLoad), String(raw.distribution3.upstreamRequestsDuringTagLoad)],
        ['upstream requests, by digest', String(raw.reference.upstreamRequestsDuringDigestLoad), String(raw.boxproxy.upstreamRequestsDuringDigestLoad), String(raw.distribution3.upstreamRequestsDuringDigestLoad)],
        ['failed requests (non-2xx, socket errors), by tag', String(raw.reference.manifestByTag.failures), String(raw.boxproxy.manifestByTag.failures), String(raw.distribution3.manifestByTag.failures)],
        ['failed requests (non-2xx, socket errors), by digest', String(raw.reference.manifestByDigest.failures), String(raw.boxproxy.manifestByDigest.failures), String(raw.distribution3.manifestByDigest.failures)],
        ['seconds from the first tag request until Box conversion settled (before the load)', '-', raw.boxproxy.settleSeconds.toFixed(1), '-'],
      ],
    },
    method: [
      `Upstream: docker-registry on 127.0.0.1 seeded through its upload API with one Docker schema2 image (\`${raw.image.name}:${raw.image.tag}\`) whose layer is ${opts.blobMiB} MiB of random bytes.`,
      'Each proxy instance reaches the upstream through its own counting TCP relay (bench/relay.ts) that records every request line and the bytes relayed, so upstream requests are counted at the wire.',
      'boxproxy runs as its own process (`node dist/src/cli/main.js serve --config <tmp>`), like the reference, with access logs off in both (boxproxy log level warn, docker-registry accesslog disabled) and default settings otherwise; storage on the same disk.',
      `${DISTRIBUTION3_LABEL}: \`go install github.com/distribution/distribution/v3/cmd/registry\` (test/setup/tools.sh), the same configuration as the reference (filesystem storage, in-memory blob descriptor cache, access log off, \`proxy.remoteurl\`).`,
      'The proxies never serve at the same time, so they do not compete for the CPUs: cold runs, manifest loads and the herd run one proxy after the other (reference, then distribution v3, then boxproxy); warm downloads alternate between them request by request.',
      `Cold blob: a single GET of the layer on freshly started proxies with empty storage, timed to the headers and to the last byte; ${opts.coldRuns} runs, each on new processes. Each process first fetches the image's small config blob (also uncached), so first-request set-up is not in the number.`,
      `Warm blob: downloads repeated until one causes no upstream request (the blob is served from the proxy's storage), then ${opts.warmRuns} rounds, each a timed GET per proxy with curl into /dev/null and one with undici in the benchmark process (keep-alive), alternating reference and boxproxy; the goal row is curl's. On 2 CPUs the client shares the machine with the proxy: undici spends about twice the proxy's CPU per byte, so its row measures mostly the client. MB = 10^6 bytes.`,
      `Manifests: wrk with 1 thread and ${opts.connections} connections for ${opts.loadSeconds} s per URL, after a short unmeasured run, with an Accept header listing the OCI and Docker manifest and index types; 10 s request timeout; failed requests are counted in the second table (over 1 % fails the benchmark).`,
      `Herd: ${opts.herd} concurrent GETs of the uncached layer on fresh proxies; every client must receive all bytes; upstream GETs of that blob are counted at the relay.`,
      'boxproxy runs with its default conversion settings: the first tag request starts converting the image into a Box (it is unconvertible: its layer is random bytes, not a tar). The manifest load starts once that conversion has settled, so requests/s are the steady state.',
      'CPU time: user + system time of the proxy process (all threads) from /proc/<pid>/stat around the measured requests (for warm blobs, the curl downloads); unlike wall-clock numbers it hardly changes when other work shares the machine.',
      'Peak RSS: VmHWM from /proc/<pid>/status of the proxy process before it is stopped (for boxproxy this includes its conversion worker threads).',
    ],
    notes: [
      'In proxy mode docker-registry checks every tag with the upstream (about two upstream requests, `GET /v2/` and a HEAD, per manifest request by tag); boxproxy trusts a cached tag for `tagTtl` (default 5m), so it sends none during the load. The table above shows the counts.',
      'docker-registry 2.8 fetches a cold blob twice (once to store it, once to stream it to the client) and every concurrent cold request adds another upstream fetch (distribution #1334).',
      'The machine has few cores; wrk and the proxy share them, which caps the requests/s of both. Wall-clock numbers (throughput, times) move by tens of percent when other work runs (see the load average above); the CPU-time rows are the steadier comparison.',
    ],
  };
}
