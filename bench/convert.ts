// Conversion benchmark (issue 3, "Benchmark"): converts a generated ~100 MiB multi-layer image and compares the
// time with the floor of reading and gunzipping its layers once, records peak RSS and Box size / image size.
//
// Each measured run is a fresh child process (this file with --child): it times the floor, then the conversion,
// and waits while the parent reads its VmHWM from /proc/<pid>/status. Standalone:
//   node --import tsx bench/convert.ts [--quick] [--runs n] [--profile]      prints the result as JSON
import { fork } from 'node:child_process';
import { createCipheriv } from 'node:crypto';
import { createReadStream, existsSync, readFileSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { availableParallelism } from 'node:os';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { createGunzip } from 'node:zlib';
import { convertImage, writeBoxToOciLayout, type ConversionReport } from '../src/convert/pipeline.js';
import { OciLayoutSource } from '../src/convert/sources/oci-layout.js';
import type { ImageManifest } from '../src/oci/types.js';
import { hexOf } from '../src/oci/digest.js';
import { dir, elf, file, hardlink, symlink, wasmModule, writeLayout, type Entry, type ImageSpec } from '../test/convert/helpers.js';

export interface ConvertBenchOptions {
  /** Where the generated image and scratch space live (default .bench/convert). */
  dir?: string;
  /** Measured conversions, each in its own child process; the median is reported (default 3). */
  runs?: number;
  /** A ~10 MiB image: checks the harness, numbers are not meaningful. */
  quick?: boolean;
  /** Extra node flags for the children (e.g. --cpu-prof). */
  childNodeArgs?: string[];
  log?: (line: string) => void;
}

export interface ConvertRun {
  floorMs: number;
  convertMs: number;
  /** CPU time of the whole process (main thread and thread pool): comparable when the machine is busy. */
  floorCpuMs: number;
  convertCpuMs: number;
  peakRssBytes: number;
  stages: ConversionReport['timings'];
}

export interface ConvertBenchResult {
  image: {
    layers: number;
    files: number;
    compressedBytes: number;
    uncompressedBytes: number;
  };
  box: { digest: string; compressedBytes: number; uncompressedBytes: number; fileBytes: number; identicalAcrossRuns: boolean };
  /** Medians over the runs. */
  floorMs: number;
  convertMs: number;
  /** convertMs / floorMs; the goal is <= 1.5. */
  ratio: number;
  /** Medians of CPU time (user + system, all threads) and their ratio. */
  floorCpuMs: number;
  convertCpuMs: number;
  cpuRatio: number;
  /** Highest VmHWM of the conversion children. */
  peakRssBytes: number;
  /** Box compressed bytes / image compressed bytes. */
  sizeRatio: number;
  runs: ConvertRun[];
  machine: { cpus: number; node: string };
  method: string[];
}

/** Bump when the generated image changes, so a cached copy is rebuilt. */
const IMAGE_VERSION = 1;
const MiB = 1024 * 1024;

/** Deterministic bytes that do not compress: AES-CTR keystream over zeros, seeded by `seed`. */
function noise(seed: number, size: number): Buffer {
  const key = Buffer.alloc(16);
  key.writeUInt32BE(seed >>> 0, 0);
  return createCipheriv('aes-128-ctr', key, Buffer.alloc(16)).update(Buffer.alloc(size));
}

/** A small deterministic PRNG (mulberry32): file sizes, word choices. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Source-code-like text that deflates about 3-4x, like the scripts, configs and assets of real images. */
class TextGen {
  private readonly lines: string[] = [];
  private readonly rand: () => number;
  constructor(seed: number) {
    this.rand = prng(seed);
    const alphabet = 'abcdefghijklmnopqrstuvwxyz_';
    const words: string[] = [];
    for (let i = 0; i < 3000; i++) {
      let w = '';
      const len = 2 + Math.floor(this.rand() * 10);
      for (let j = 0; j < len; j++) w += alphabet[Math.floor(this.rand() * alphabet.length)];
      words.push(w);
    }
    const punct = [' = ', '(', ') ', ', ', '.', ' { ', ' } ', '; ', ' + ', ' '];
    for (let i = 0; i < 20000; i++) {
      let line = '  '.repeat(Math.floor(this.rand() * 4));
      const n = 2 + Math.floor(this.rand() * 9);
      for (let j = 0; j < n; j++) {
        line += words[Math.floor(this.rand() ** 2 * words.length)] as string;
        line += punct[Math.floor(this.rand() * punct.length)] as string;
        if (this.rand() < 0.1) line += String(Math.floor(this.rand() * 100000));
      }
      this.lines.push(line + '\n');
    }
  }
  text(size: number): Buffer {
    const parts: string[] = [];
    let have = 0;
    while (have < size) {
      const line = this.lines[Math.floor(this.rand() * this.lines.length)] as string;
      parts.push(line);
      have += line.length;
    }
    return Buffer.from(parts.join('').slice(0, size), 'latin1');
  }
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.rand() * (hi - lo + 1));
  }
}

/**
 * The benchmark image: 4 layers, many small files (sizes skewed small, like a language runtime's library tree),
 * a few big ones (compressible and not), ELF binaries and docs the Box drops, symlinks, hard links, whiteouts and
 * an opaque directory, and a WASI module as the entrypoint. `scale` 1 gives about 100 MiB of gzip layers.
 */
export function benchImage(scale = 1): { spec: ImageSpec; files: number } {
  const gen = new TextGen(42);
  let files = 0;
  const add = (entries: Entry[], e: Entry): void => {
    if (e.type === 'File') files++;
    entries.push(e);
  };
  const smallFiles = (entries: Entry[], root: string, count: number, seed: number): void => {
    const perDir = 40;
    for (let i = 0; i < count; i++) {
      if (i % perDir === 0) entries.push(dir(`${root}/pkg${Math.floor(i / perDir)}`));
      const path = `${root}/pkg${Math.floor(i / perDir)}/mod${i}.rb`;
      // Mostly a few KiB, some tens of KiB; one in 16 holds binary data.
      const size = Math.floor(gen.int(64, 4096) * (gen.int(0, 9) === 0 ? 12 : 1));
      add(entries, file(path, i % 16 === 7 ? noise(seed * 100000 + i, size) : gen.text(size)));
    }
  };
  const count = (n: number): number => Math.max(1, Math.round(n * scale));
  const big = (n: number): number => Math.max(64 * 1024, Math.round(n * scale));

  const base: Entry[] = [dir('usr'), dir('usr/bin'), dir('usr/lib'), dir('usr/share'), dir('usr/share/doc'), dir('etc'), dir('app')];
  for (let i = 0; i < count(120); i++) add(base, file(`usr/bin/tool${i}`, Buffer.concat([elf(), noise(900 + i, 24 * 1024)]), 0o755));
  for (let i = 0; i < count(200); i++) add(base, file(`usr/share/doc/pkg${i}.txt`, gen.text(gen.int(500, 6000))));
  for (let i = 0; i < count(100); i++) base.push(symlink(`usr/bin/alias${i}`, `tool${i % count(120)}`));
  smallFiles(base, 'usr/lib/ruby', count(4000), 1);
  add(base, file('usr/lib/libbig.so', Buffer.concat([elf({ type: 3 }), noise(7, big(6 * MiB))]), 0o755));
  add(base, file('etc/old.conf', 'old\n'));
  base.push(dir('var'), dir('var/cache'));
  for (let i = 0; i < count(50); i++) add(base, file(`var/cache/c${i}`, gen.text(2000)));

  const deps: Entry[] = [dir('usr/lib/gems')];
  smallFiles(deps, 'usr/lib/gems', count(5000), 2);
  add(deps, file('usr/lib/gems/vendor.bin', noise(11, big(16 * MiB))));
  add(deps, file('usr/lib/gems/data.json', gen.text(big(12 * MiB))));
  for (let i = 0; i < count(200); i++) deps.push(hardlink(`usr/lib/gems/link${i}.rb`, `usr/lib/gems/pkg0/mod${i % 40}.rb`));

  const assets: Entry[] = [dir('srv'), dir('srv/assets')];
  add(assets, file('srv/assets/media.bin', noise(13, big(26 * MiB))));
  add(assets, file('srv/assets/corpus.txt', gen.text(big(40 * MiB))));
  smallFiles(assets, 'srv/assets/static', count(2000), 3);

  const app: Entry[] = [dir('app'), file('app/main.wasm', wasmModule(), 0o755), file('etc/.wh.old.conf', ''), dir('var/cache'), file('var/cache/.wh..wh..opq', '')];
  files++;
  smallFiles(app, 'app/src', count(1000), 4);
  for (let i = 0; i < count(100); i++) add(app, file(`usr/lib/ruby/pkg${i % 10}/mod${i}.rb`, gen.text(gen.int(100, 3000))));

  return {
    spec: {
      created: '2025-01-02T03:04:05Z',
      config: { Entrypoint: ['/app/main.wasm'], Cmd: ['--serve'], WorkingDir: '/app', Env: ['PATH=/usr/local/bin:/usr/bin:/bin', 'MODE=bench'] },
      layers: [{ entries: base }, { entries: deps }, { entries: assets }, { entries: app }],
    },
    files,
  };
}

interface ImageInfo {
  layout: string;
  layers: string[];
  files: number;
  compressedBytes: number;
  uncompressedBytes: number;
}

/** Generates the image once per IMAGE_VERSION and scale (cached in `dir`). */
async function ensureImage(root: string, scale: number, log: (line: string) => void): Promise<ImageInfo> {
  const layout = join(root, `image-v${IMAGE_VERSION}-x${scale}`);
  const infoFile = join(layout, 'bench-info.json');
  if (existsSync(infoFile)) return JSON.parse(readFileSync(infoFile, 'utf8')) as ImageInfo;
  log(`generating the benchmark image in ${layout}`);
  await rm(layout, { recursive: true, force: true });
  const { spec, files } = benchImage(scale);
  const top = await writeLayout(layout, spec);
  const manifest = JSON.parse(readFileSync(join(layout, 'blobs', 'sha256', hexOf(top.digest)), 'utf8')) as ImageManifest;
  const layers = manifest.layers.map((l) => join(layout, 'blobs', 'sha256', hexOf(l.digest)));
  let uncompressedBytes = 0;
  for (const layer of layers) {
    await pipeline(
      createReadStream(layer),
      createGunzip(),
      new Writable({
        write(chunk: Buffer, _enc, cb) {
          uncompressedBytes += chunk.length;
          cb();
        },
      }),
    );
  }
  const info: ImageInfo = { layout, layers, files, compressedBytes: manifest.layers.reduce((n, l) => n + l.size, 0), uncompressedBytes };
  await writeFile(infoFile, JSON.stringify(info));
  return info;
}

/** The floor: read and gunzip every layer once, in order, throwing the bytes away. */
async function floor(layers: readonly string[]): Promise<number> {
  const start = process.hrtime.bigint();
  for (const layer of layers) {
    await pipeline(
      createReadStream(layer, { highWaterMark: MiB }),
      createGunzip(),
      new Writable({
        highWaterMark: MiB,
        write(_chunk: Buffer, _enc, cb) {
          cb();
        },
      }),
    );
  }
  return Number(process.hrtime.bigint() - start) / 1e6;
}

interface ChildResult {
  floorMs: number;
  convertMs: number;
  floorCpuMs: number;
  convertCpuMs: number;
  boxDigest: string;
  report: ConversionReport;
}

/** One measured run (in a child): the floor, then the conversion into a fresh work dir and output layout. */
async function childMain(layout: string, layers: string[], work: string): Promise<ChildResult> {
  await rm(work, { recursive: true, force: true });
  await mkdir(work, { recursive: true });
  const cpuMs = (): number => {
    const u = process.cpuUsage();
    return (u.user + u.system) / 1000;
  };
  const cpu0 = cpuMs();
  const floorMs = await floor(layers);
  const cpu1 = cpuMs();
  const start = process.hrtime.bigint();
  const result = await convertImage(new OciLayoutSource(layout), '', { workDir: join(work, 'scratch'), runtimes: { ruby: async () => undefined } });
  if (result.kind !== 'box') throw new Error(`benchmark image did not convert: ${result.reason}`);
  await writeBoxToOciLayout(result.box, join(work, 'out'), 'bench');
  const convertMs = Number(process.hrtime.bigint() - start) / 1e6;
  const cpu2 = cpuMs();
  return { floorMs, convertMs, floorCpuMs: cpu1 - cpu0, convertCpuMs: cpu2 - cpu1, boxDigest: result.box.manifest.digest, report: result.report };
}

function vmHwm(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const m = /^VmHWM:\s+(\d+)\s+kB/m.exec(status);
  if (!m) throw new Error(`no VmHWM in /proc/${pid}/status`);
  return Number(m[1]) * 1024;
}

async function runChild(image: ImageInfo, work: string, nodeArgs: readonly string[]): Promise<ChildResult & { peakRssBytes: number }> {
  const self = fileURLToPath(import.meta.url);
  const child = fork(self, ['--child', JSON.stringify({ layout: image.layout, layers: image.layers, work })], {
    execArgv: [...process.execArgv, ...nodeArgs],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  try {
    return await new Promise((resolveRun, reject) => {
      child.once('error', reject);
      child.once('exit', (code) => reject(new Error(`conversion child exited with ${code} before reporting`)));
      child.once('message', (msg: { ok: true; result: ChildResult } | { ok: false; error: string }) => {
        if (!msg.ok) return reject(new Error(msg.error));
        // The child waits for "exit" so its memory high-water mark can still be read.
        const peakRssBytes = vmHwm(child.pid as number);
        child.removeAllListeners('exit');
        child.once('exit', () => resolveRun({ ...msg.result, peakRssBytes }));
        child.send('exit');
      });
    });
  } finally {
    if (child.exitCode === null && child.signalCode === null) child.kill();
  }
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}

export async function benchConvert(opts: ConvertBenchOptions = {}): Promise<ConvertBenchResult> {
  const log = opts.log ?? ((line: string) => void process.stderr.write(`bench convert: ${line}\n`));
  const root = resolve(opts.dir ?? join('.bench', 'convert'));
  const runs = opts.runs ?? 3;
  await mkdir(root, { recursive: true });
  const image = await ensureImage(root, opts.quick ? 0.1 : 1, log);
  log(`image: ${image.layers.length} layers, ${image.files} files, ${(image.compressedBytes / MiB).toFixed(1)} MiB gzip, ${(image.uncompressedBytes / MiB).toFixed(1)} MiB tar`);
  const work = join(root, 'work');
  const results: Array<ChildResult & { peakRssBytes: number }> = [];
  try {
    for (let i = 0; i < runs; i++) {
      const r = await runChild(image, work, opts.childNodeArgs ?? []);
      log(`run ${i + 1}/${runs}: floor ${r.floorMs.toFixed(0)} ms (cpu ${r.floorCpuMs.toFixed(0)}), conversion ${r.convertMs.toFixed(0)} ms (cpu ${r.convertCpuMs.toFixed(0)}), peak RSS ${(r.peakRssBytes / MiB).toFixed(0)} MiB, stages ${JSON.stringify(r.report.timings)}`);
      results.push(r);
    }
  } finally {
    await rm(work, { recursive: true, force: true });
  }
  const last = results[results.length - 1];
  if (!last) throw new Error('runs must be at least 1');
  const floorMs = median(results.map((r) => r.floorMs));
  const convertMs = median(results.map((r) => r.convertMs));
  const floorCpuMs = median(results.map((r) => r.floorCpuMs));
  const convertCpuMs = median(results.map((r) => r.convertCpuMs));
  const boxCompressed = last.report.sizes.boxCompressed ?? 0;
  return {
    image: { layers: image.layers.length, files: image.files, compressedBytes: image.compressedBytes, uncompressedBytes: image.uncompressedBytes },
    box: {
      digest: last.boxDigest,
      compressedBytes: boxCompressed,
      uncompressedBytes: last.report.sizes.boxUncompressed ?? 0,
      fileBytes: last.report.sizes.boxFiles ?? 0,
      identicalAcrossRuns: results.every((r) => r.boxDigest === last.boxDigest),
    },
    floorMs: Math.round(floorMs),
    convertMs: Math.round(convertMs),
    ratio: Math.round((convertMs / floorMs) * 100) / 100,
    floorCpuMs: Math.round(floorCpuMs),
    convertCpuMs: Math.round(convertCpuMs),
    cpuRatio: Math.round((convertCpuMs / floorCpuMs) * 100) / 100,
    peakRssBytes: Math.max(...results.map((r) => r.peakRssBytes)),
    sizeRatio: Math.round((boxCompressed / image.compressedBytes) * 1000) / 1000,
    runs: results.map((r) => ({
      floorMs: Math.round(r.floorMs),
      convertMs: Math.round(r.convertMs),
      floorCpuMs: Math.round(r.floorCpuMs),
      convertCpuMs: Math.round(r.convertCpuMs),
      peakRssBytes: r.peakRssBytes,
      stages: r.report.timings,
    })),
    machine: { cpus: availableParallelism(), node: process.version },
    method: [
      `Image: generated OCI layout, ${image.layers.length} gzip layers, ${image.files} files (many small text and binary files, ELF binaries and docs the Box drops, big compressible and incompressible files, hard links, symlinks, whiteouts, an opaque dir), WASI module entrypoint.`,
      'Floor: read and gunzip every layer once, sequentially, discarding the output (1 MiB reads), in the same child process as the conversion.',
      `Conversion: convertImage from the OCI layout (digest-verified reads) plus writing the Box as an OCI layout; median of ${runs} runs, each in a fresh child process.`,
      'Peak RSS: VmHWM of the conversion child from /proc/<pid>/status, read after the conversion and before it exits (includes the floor pass and Node itself).',
    ],
  };
}

async function childEntry(arg: string): Promise<void> {
  const { layout, layers, work } = JSON.parse(arg) as { layout: string; layers: string[]; work: string };
  const send = (msg: unknown): Promise<void> => new Promise((r) => process.send?.(msg, () => r()));
  try {
    const result = await childMain(layout, layers, work);
    await send({ ok: true, result });
  } catch (err) {
    await send({ ok: false, error: (err as Error).stack ?? String(err) });
  }
  process.once('message', () => process.exit(0));
}

const isMain = process.argv[1] !== undefined && import.meta.url === pathToFileURL(resolve(process.argv[1])).href;
if (isMain) {
  const { values } = parseArgs({
    options: {
      child: { type: 'string' },
      quick: { type: 'boolean', default: false },
      runs: { type: 'string' },
      dir: { type: 'string' },
      profile: { type: 'boolean', default: false },
    },
  });
  if (values.child !== undefined) {
    await childEntry(values.child);
  } else {
    const profileDir = resolve('.bench', 'profiles');
    const result = await benchConvert({
      quick: values.quick,
      ...(values.runs ? { runs: Number(values.runs) } : {}),
      ...(values.dir ? { dir: values.dir } : {}),
      ...(values.profile ? { childNodeArgs: ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] } : {}),
    });
    process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
  }
}
