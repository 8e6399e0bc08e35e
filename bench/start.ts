// Box start benchmark: start-to-exit time of a Box's process against the same program as a native process,
// for `boxproxy run` (node:wasi), wasmtime (the PyPI wheel: the engine runwasi's wasmtime shim embeds) and wazero.
// Each run is a whole process, exec to exit, as a container start would be.
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cp, mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { convertImage, writeBoxToOciLayout } from '../src/convert/pipeline.js';
import { OciLayoutSource } from '../src/image/oci-layout.js';
import { ensureBuiltRuntime } from '../src/runtimes/build.js';
import { dir, elf, file, symlink, writeLayout, type ImageSpec } from '../test/convert/helpers.js';
import { engineRunSpec, readEngineBox } from '../test/helpers/engines/box.js';
import { nodeWasiCommand } from '../test/helpers/engines/node-wasi.js';
import { splitEnv, type EngineCommand, type WasiRunSpec } from '../test/helpers/engines/types.js';
import { wasmtimeCommand } from '../test/helpers/engines/wasmtime.js';
import { wazeroCommand } from '../test/helpers/engines/wazero.js';
import { repoFile, requireTestTools, toolSpec } from '../test/helpers/tools.js';
import type { BenchSection, Comparison } from './report.js';

export interface StartBenchOptions {
  /** Measured runs per program and runner (after one unmeasured run that fills caches). */
  runs: number;
  dir: string;
  log: (line: string) => void;
}

type Runner = 'native' | 'boxproxy' | 'wasmtime' | 'wazero';
const RUNNERS: readonly Runner[] = ['native', 'boxproxy', 'wasmtime', 'wazero'];

interface Timing {
  wallMs: number[];
  /** User + system CPU of the process and what it waited for, per run (total over the runs / runs). */
  cpuMsPerRun: number;
  exitCode: number;
  stdout: string;
}

interface ProgramResult {
  program: string;
  timings: Record<Runner, Timing>;
}

// dist/bench/start.js -> dist/src/cli/main.js
const BOXPROXY_MAIN = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));
const CLOCK_TICKS = 100;

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}

/** cutime + cstime of this process (its waited-for children), in seconds. */
function childrenCpuSeconds(): number {
  const fields = readFileSync('/proc/self/stat', 'utf8').split(') ')[1]?.split(' ') ?? [];
  return (Number(fields[13]) + Number(fields[14])) / CLOCK_TICKS;
}

function time(c: EngineCommand, runs: number): Timing {
  const once = () => {
    const t0 = process.hrtime.bigint();
    const r = spawnSync(c.cmd, c.args, { env: c.env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    if (r.error) throw r.error;
    return { ms, code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
  };
  const warm = once();
  if (warm.code !== 0 && warm.stderr) throw new Error(`${c.cmd} ${c.args.slice(0, 3).join(' ')}… exited ${warm.code}: ${warm.stderr.slice(0, 500)}`);
  const wallMs: number[] = [];
  const cpu0 = childrenCpuSeconds();
  for (let i = 0; i < runs; i++) wallMs.push(once().ms);
  return { wallMs, cpuMsPerRun: ((childrenCpuSeconds() - cpu0) * 1000) / runs, exitCode: warm.code, stdout: warm.stdout };
}

/** Converts an image spec into a Box layout with the real pipeline. */
async function makeBox(spec: ImageSpec, base: string): Promise<string> {
  await writeLayout(join(base, 'image'), spec);
  // One catalog holds both: QuickJS for the Node Box, CPython for the Python one.
  await ensureBuiltRuntime('quickjs');
  const runtimes = await ensureBuiltRuntime('python');
  const result = await convertImage(new OciLayoutSource(join(base, 'image')), '', { workDir: join(base, 'work'), runtimes });
  if (result.kind !== 'box') throw new Error(`not converted: ${result.reason}`);
  await writeBoxToOciLayout(result.box, join(base, 'box'));
  return join(base, 'box');
}

async function commandsFor(box: string, spec: WasiRunSpec, native: EngineCommand, cache: string): Promise<Record<Runner, EngineCommand>> {
  return {
    native,
    // The Box's own Cmd: the other runners' argv is Entrypoint + Cmd, which `run -- args` would put in Cmd's place.
    boxproxy: { cmd: process.execPath, args: [BOXPROXY_MAIN, 'run', '--cache', cache, box], env: process.env },
    wasmtime: await wasmtimeCommand(spec),
    wazero: wazeroCommand(spec),
  };
}

/** hello.c, the fixture's WASI program, built for this machine (static) and run chrooted in a copy of the Box's rootfs. */
async function helloProgram(opts: StartBenchOptions): Promise<ProgramResult> {
  const base = join(opts.dir, 'hello');
  const wasm = repoFile('test/fixtures/wasm/hello.wasm');
  const spec: ImageSpec = {
    created: '2024-05-01T12:00:00Z',
    layers: [{ entries: [dir('etc/'), file('etc/greeting', 'hello\n'), dir('app/'), file('app/hello.wasm', readFileSync(wasm), 0o755), dir('work/'), file('work/message.txt', 'relative\n')] }],
    config: { Entrypoint: ['/app/hello.wasm'], Cmd: ['cat:message.txt', 'env:GREETING_NAME'], Env: ['GREETING_NAME=Box'], WorkingDir: '/work' },
  };
  const box = await makeBox(spec, base);
  const engineBox = await readEngineBox(box);
  const run = await engineRunSpec(engineBox);
  const nativeRoot = join(base, 'native-rootfs');
  await cp(engineBox.rootfs, nativeRoot, { recursive: true });
  const built = spawnSync('clang', ['-O2', '-static', repoFile('test/fixtures/wasm/hello.c'), '-o', join(nativeRoot, 'app', 'hello')], { encoding: 'utf8' });
  if (built.status !== 0) throw new Error(`clang -static hello.c: ${built.stderr}`);
  const native: EngineCommand = { cmd: '/usr/sbin/chroot', args: [nativeRoot, '/app/hello', ...run.args.slice(1)], env: Object.fromEntries(run.env.map(splitEnv)) };
  const commands = await commandsFor(box, run, native, join(base, 'cache'));
  return { program: 'hello (C, wasi-libc)', timings: timeAll(commands, opts) };
}

/** A Python hello world: the Box carries CPython for WASI; natively, Debian's python3.11. */
async function pythonProgram(opts: StartBenchOptions): Promise<ProgramResult> {
  const base = join(opts.dir, 'python');
  const app = 'import sys\nprint("hello world", sys.argv[1:])\n';
  const spec: ImageSpec = {
    created: '2024-05-01T12:00:00Z',
    layers: [
      { entries: [dir('usr/'), dir('usr/local/'), dir('usr/local/bin/'), file('usr/local/bin/python3.11', elf({ interpreter: '/lib64/ld-linux-x86-64.so.2' }), 0o755), symlink('usr/local/bin/python3', 'python3.11')] },
      { entries: [dir('app/'), file('app/hello.py', app)] },
    ],
    config: { Env: ['PYTHON_VERSION=3.11.2'], WorkingDir: '/app', Cmd: ['python3', 'hello.py', 'arg'] },
  };
  const box = await makeBox(spec, base);
  const run = await engineRunSpec(await readEngineBox(box));
  await mkdir(join(base, 'native'), { recursive: true });
  const script = join(base, 'native', 'hello.py');
  writeFileSync(script, app);
  const native: EngineCommand = { cmd: '/usr/bin/python3.11', args: [script, 'arg'], env: { PATH: process.env.PATH } };
  const commands = await commandsFor(box, run, native, join(base, 'cache'));
  return { program: 'Python hello world (CPython 3.11)', timings: timeAll(commands, opts) };
}

/** A Node.js hello world: the Box carries QuickJS for WASI and the Node layer; natively, this machine's node. */
async function nodeProgram(opts: StartBenchOptions): Promise<ProgramResult> {
  const base = join(opts.dir, 'node');
  const app = "console.log('hello world', process.argv.slice(2));\n";
  const spec: ImageSpec = {
    created: '2024-05-01T12:00:00Z',
    layers: [
      { entries: [dir('usr/'), dir('usr/bin/'), file('usr/bin/node', elf({ interpreter: '/lib64/ld-linux-x86-64.so.2' }), 0o755)] },
      { entries: [dir('app/'), file('app/hello.js', app)] },
    ],
    config: { Env: [`NODE_VERSION=${process.version}`], WorkingDir: '/app', Cmd: ['node', 'hello.js', 'arg'] },
  };
  const box = await makeBox(spec, base);
  const run = await engineRunSpec(await readEngineBox(box));
  await mkdir(join(base, 'native'), { recursive: true });
  const script = join(base, 'native', 'hello.js');
  writeFileSync(script, app);
  const native: EngineCommand = { cmd: process.execPath, args: [script, 'arg'], env: { PATH: process.env.PATH } };
  const commands = await commandsFor(box, run, native, join(base, 'cache'));
  return { program: 'Node.js hello world (QuickJS + Node layer)', timings: timeAll(commands, opts) };
}

function timeAll(commands: Record<Runner, EngineCommand>, opts: StartBenchOptions): Record<Runner, Timing> {
  const out = {} as Record<Runner, Timing>;
  for (const runner of RUNNERS) {
    out[runner] = time(commands[runner], opts.runs);
    opts.log(`start: ${runner}: median ${median(out[runner].wallMs).toFixed(1)} ms, CPU ${out[runner].cpuMsPerRun.toFixed(1)} ms per run`);
  }
  return out;
}

export async function runStartBench(opts: StartBenchOptions): Promise<{ section: BenchSection; raw: unknown }> {
  requireTestTools('wasmtime', 'wazero');
  if (process.getuid?.() !== 0) throw new Error('the start benchmark chroots the native hello into its rootfs: it needs root');
  await rm(opts.dir, { recursive: true, force: true });
  mkdirSync(opts.dir, { recursive: true });
  const hello = await helloProgram(opts);
  const python = await pythonProgram(opts);
  const nodejs = await nodeProgram(opts);
  const programs = [hello, python, nodejs];
  for (const p of programs) {
    const box = p.timings.boxproxy;
    for (const r of ['wasmtime', 'wazero'] as const) {
      if (p.timings[r].exitCode !== box.exitCode) throw new Error(`${p.program}: ${r} exited ${p.timings[r].exitCode}, boxproxy run ${box.exitCode}`);
    }
  }
  return { section: toSection(programs, opts), raw: programs };
}

function toSection(programs: ProgramResult[], opts: StartBenchOptions): BenchSection {
  const comparisons: Comparison[] = [];
  for (const p of programs) {
    const t = p.timings;
    const wall = (r: Runner) => median(t[r].wallMs);
    comparisons.push(
      { metric: `${p.program}: start to exit (median of ${opts.runs})`, unit: 'ms', better: 'lower', reference: wall('native'), boxproxy: wall('boxproxy'), extra: [wall('wasmtime'), wall('wazero')] },
      { metric: `${p.program}: CPU time per run`, unit: 'ms', better: 'lower', reference: t.native.cpuMsPerRun, boxproxy: t.boxproxy.cpuMsPerRun, extra: [t.wasmtime.cpuMsPerRun, t.wazero.cpuMsPerRun] },
    );
  }
  const wasmtime = toolSpec('wasmtime').version;
  const wazero = toolSpec('wazero').version;
  return {
    id: 'start',
    title: 'Box start (process start to exit)',
    reference: 'the same program as a native process',
    columns: { reference: 'native process', boxproxy: '`boxproxy run` (node:wasi)' },
    extraColumns: [`wasmtime ${wasmtime} (PyPI wheel)`, `wazero ${wazero} CLI`],
    comparisons,
    method: [
      `Each number is a whole process from spawn to exit, timed in the benchmark process; one unmeasured run first (it fills boxproxy's unpack cache and the engines' compilation caches), then ${opts.runs} measured runs per program and runner, one runner after the other. CPU time: cutime + cstime of the benchmark process (user + system time of the finished children and what they waited for) over the measured runs, divided by the runs (10 ms ticks).`,
      'The Boxes are made by the real conversion pipeline; every runner gets the same argv, env (PWD = WorkingDir) and the Box rootfs as "/" (test/helpers/engines builds the wasmtime and wazero command lines the tests use).',
      '`boxproxy run`: `node dist/src/cli/main.js run --cache <dir> <layout> -- args` (Node start-up, reading the layout, the WASI run).',
      `wasmtime: \`python3 test/helpers/engines/wasmtime-run.py\` with the wasmtime ${wasmtime} wheel (CPython start-up and loading libwasmtime are in the number; runwasi's shim embeds the same engine without them), Wasmtime's compilation cache on. wazero: \`wazero run -cachedir …\` (compiled code cached).`,
      'hello: test/fixtures/wasm/hello.c; natively built with `clang -O2 -static` and run with `chroot` in a copy of the Box rootfs, so it reads the same files. Python: the Box carries CPython 3.11 for WASI (scripts/runtimes/python); natively Debian\'s /usr/bin/python3.11 runs the same script. Node.js: the Box carries QuickJS for WASI and the Node layer, the script as bytecode (scripts/runtimes/quickjs, src/convert/node); natively this machine\'s node runs the same script.',
    ],
  };
}
