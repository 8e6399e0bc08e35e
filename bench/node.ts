// Node.js Box start (issue 13): a Node Box under `boxproxy run` against the same program run by node natively:
// time to the first line of output, time to exit and peak RSS, per run a whole process from spawn to exit.
// The Boxes are made by the real pipeline (node strategy: QuickJS for WASI + the Node layer, bytecode).
import { spawn } from 'node:child_process';
import { cp, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { convertImage, writeBoxToOciLayout } from '../src/convert/pipeline.js';
import { OciLayoutSource } from '../src/image/oci-layout.js';
import { ensureBuiltRuntime } from '../src/runtimes/build.js';
import { dir, elf, file, writeLayout, type Entry } from '../test/convert/helpers.js';
import type { BenchSection, Comparison } from './report.js';

export interface NodeBenchOptions {
  /** Measured runs per program and runner (after one unmeasured run that fills caches). */
  runs: number;
  dir: string;
  log: (line: string) => void;
}

interface RunSample {
  firstLineMs: number;
  exitMs: number;
  peakRssKiB: number;
  exitCode: number;
  stdout: string;
}

export interface NodeProgramResult {
  program: string;
  native: RunSample[];
  boxproxy: RunSample[];
}

// dist/bench/node.js -> dist/src/cli/main.js
const BOXPROXY_MAIN = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));
const REPO = fileURLToPath(new URL(import.meta.url.includes('/dist/') ? '../../' : '../', import.meta.url));

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}

/** One process under GNU time (its peak RSS from wait4), timing its first stdout line and its exit. */
async function sample(cmd: string, args: readonly string[], cwd: string, rssFile: string): Promise<RunSample> {
  const t0 = process.hrtime.bigint();
  const ms = (): number => Number(process.hrtime.bigint() - t0) / 1e6;
  const child = spawn('/usr/bin/time', ['-f', '%M', '-o', rssFile, cmd, ...args], { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  let firstLineMs = -1;
  child.stdout.setEncoding('utf8').on('data', (d: string) => {
    if (firstLineMs < 0 && d.includes('\n')) firstLineMs = ms();
    stdout += d;
  });
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const exitCode = await new Promise<number>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code) => resolve(code ?? -1));
  });
  const exitMs = ms();
  const peakRssKiB = Number((await readFile(rssFile, 'utf8')).trim().split('\n').pop());
  if (firstLineMs < 0) throw new Error(`${cmd} ${args.join(' ')} printed no line (exit ${exitCode}): ${stderr.slice(-500)}`);
  return { firstLineMs, exitMs, peakRssKiB, exitCode, stdout };
}

interface Program {
  name: string;
  /** App files under /app. */
  files: Record<string, string>;
  /** Packages copied from boxproxy's own node_modules into /app/node_modules. */
  packages: string[];
  cmd: string[];
}

const PROGRAMS: readonly Program[] = [
  { name: 'Node.js hello world', files: { 'hello.js': "console.log('hello world', process.argv.slice(2));\n" }, packages: [], cmd: ['node', 'hello.js', 'arg'] },
  {
    name: 'Node.js CLI (commander + yaml from npm, fs, path)',
    files: {
      'cli.js': `const fs = require('fs');
const path = require('path');
const { Command } = require('commander');
const YAML = require('yaml');
const program = new Command().option('-n, --name <name>', 'who', 'Box').argument('[file]', 'data', path.join(__dirname, 'data.yaml'));
program.parse(process.argv);
const doc = YAML.parse(fs.readFileSync(program.args[0] || path.join(__dirname, 'data.yaml'), 'utf8'));
console.log('hello', program.opts().name, doc.items.length, 'items');
console.log(YAML.stringify({ total: doc.items.reduce((n, i) => n + i.count, 0) }).trim());
`,
      'data.yaml': 'items:\n  - {name: a, count: 1}\n  - {name: b, count: 2}\n',
      'package.json': '{"name":"cli","version":"1.0.0"}\n',
    },
    packages: ['commander', 'yaml'],
    cmd: ['node', 'cli.js', '--name', 'bench'],
  },
];

async function appDir(p: Program, at: string): Promise<void> {
  await mkdir(at, { recursive: true });
  for (const [name, text] of Object.entries(p.files)) await writeFile(join(at, name), text);
  for (const pkg of p.packages) await cp(join(REPO, 'node_modules', pkg), join(at, 'node_modules', pkg), { recursive: true });
}

async function imageEntries(root: string, rel = ''): Promise<Entry[]> {
  const { readdir } = await import('node:fs/promises');
  const out: Entry[] = [];
  for (const e of (await readdir(join(root, rel), { withFileTypes: true })).sort((a, b) => (a.name < b.name ? -1 : 1))) {
    const p = rel ? `${rel}/${e.name}` : e.name;
    if (e.isDirectory()) out.push(dir(`app/${p}/`), ...(await imageEntries(root, p)));
    else if (e.isFile()) out.push(file(`app/${p}`, await readFile(join(root, p))));
  }
  return out;
}

async function measureProgram(p: Program, opts: NodeBenchOptions): Promise<NodeProgramResult> {
  const base = join(opts.dir, p.name.replace(/\W+/g, '-'));
  const native = join(base, 'native', 'app');
  await appDir(p, native);
  const image = join(base, 'image');
  await writeLayout(image, {
    created: '2024-05-01T12:00:00Z',
    layers: [
      { entries: [dir('usr/'), dir('usr/bin/'), file('usr/bin/node', elf({ interpreter: '/lib64/ld-linux-x86-64.so.2' }), 0o755), dir('tmp/'), dir('etc/')] },
      { entries: [dir('app/'), ...(await imageEntries(native))] },
    ],
    config: { Env: ['PATH=/usr/bin:/bin', `NODE_VERSION=${process.version}`], WorkingDir: '/app', Cmd: p.cmd },
  });
  const runtimes = await ensureBuiltRuntime('quickjs');
  const result = await convertImage(new OciLayoutSource(image), '', { workDir: join(base, 'work'), runtimes });
  if (result.kind !== 'box') throw new Error(`${p.name}: not converted: ${result.reason}`);
  const box = join(base, 'box');
  await writeBoxToOciLayout(result.box, box);
  const rss = join(base, 'rss');
  const nativeRun = (): Promise<RunSample> => sample(process.execPath, p.cmd.slice(1), native, rss);
  const boxRun = (): Promise<RunSample> => sample(process.execPath, [BOXPROXY_MAIN, 'run', '--cache', join(base, 'cache'), box], base, rss);
  const warmNative = await nativeRun();
  const warmBox = await boxRun();
  if (warmBox.stdout !== warmNative.stdout || warmBox.exitCode !== warmNative.exitCode) {
    throw new Error(`${p.name}: the Box printed ${JSON.stringify(warmBox.stdout)} (exit ${warmBox.exitCode}), node ${JSON.stringify(warmNative.stdout)} (exit ${warmNative.exitCode})`);
  }
  const out: NodeProgramResult = { program: p.name, native: [], boxproxy: [] };
  // Alternating, so both sides see the same machine.
  for (let i = 0; i < opts.runs; i++) {
    out.native.push(await nativeRun());
    out.boxproxy.push(await boxRun());
  }
  const m = (xs: RunSample[], k: keyof Omit<RunSample, 'stdout'>): number => median(xs.map((x) => x[k]));
  opts.log(`node: ${p.name}: first line ${m(out.native, 'firstLineMs').toFixed(0)} vs ${m(out.boxproxy, 'firstLineMs').toFixed(0)} ms, exit ${m(out.native, 'exitMs').toFixed(0)} vs ${m(out.boxproxy, 'exitMs').toFixed(0)} ms`);
  return out;
}

export function nodeSection(programs: readonly NodeProgramResult[], runs: number): BenchSection {
  const comparisons: Comparison[] = [];
  for (const p of programs) {
    const m = (xs: RunSample[], k: 'firstLineMs' | 'exitMs' | 'peakRssKiB'): number => median(xs.map((x) => x[k]));
    const startGoal = (k: 'firstLineMs' | 'exitMs'): Pick<Comparison, 'goal' | 'met'> => ({ goal: 'at most 2x native', met: m(p.boxproxy, k) <= 2 * m(p.native, k) });
    comparisons.push(
      { metric: `${p.program}: to the first line of output (median of ${runs})`, unit: 'ms', better: 'lower', reference: m(p.native, 'firstLineMs'), boxproxy: m(p.boxproxy, 'firstLineMs'), ...startGoal('firstLineMs') },
      { metric: `${p.program}: to exit (median of ${runs})`, unit: 'ms', better: 'lower', reference: m(p.native, 'exitMs'), boxproxy: m(p.boxproxy, 'exitMs'), ...startGoal('exitMs') },
      { metric: `${p.program}: peak RSS`, unit: 'MiB', better: 'lower', reference: m(p.native, 'peakRssKiB') / 1024, boxproxy: m(p.boxproxy, 'peakRssKiB') / 1024 },
    );
  }
  return {
    id: 'node-start',
    title: 'Node.js Box start',
    reference: `the same program run by node ${process.version}`,
    columns: { reference: `node ${process.version} (native)`, boxproxy: '`boxproxy run` (QuickJS for WASI on node:wasi)' },
    comparisons,
    method: [
      `Each number is a whole process from spawn to exit, timed in the benchmark process, under GNU time for the peak RSS (wait4's ru_maxrss): one unmeasured run of each first (it fills boxproxy's unpack cache), then ${runs} runs alternating native and Box.`,
      'The Box is made by the real pipeline from an image holding the app (and, for the CLI, commander and yaml copied from boxproxy\'s own node_modules); natively, this machine\'s node runs the same files. The first line and the output must be the same on both sides.',
      '`boxproxy run`: `node dist/src/cli/main.js run --cache <dir> <layout>` (Node start-up, the CLI, reading the layout, compiling qjs.wasm, QuickJS loading the bundle\'s bytecode, the app).',
    ],
  };
}

export async function runNodeBench(opts: NodeBenchOptions): Promise<{ section: BenchSection; raw: unknown }> {
  await rm(opts.dir, { recursive: true, force: true });
  const programs: NodeProgramResult[] = [];
  for (const p of PROGRAMS) programs.push(await measureProgram(p, opts));
  return { section: nodeSection(programs, opts.runs), raw: programs };
}
