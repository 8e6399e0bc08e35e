// Python Box benchmark (issue 6): start-to-exit time of a hello-world Python Box in boxproxy's runner, the Box's
// compressed size against a python:3.11-slim-like source image, and conversion time. Prints JSON.
//
// The source image is an APPROXIMATION (python:3.11-slim cannot be pulled here): this machine's Debian python3.11
// files (/usr/lib/python3.11 and /usr/bin/python3.11) plus a hello-world app, in one gzip layer. The real slim
// image also carries a Debian base (~29 MB compressed), so the real Box/source ratio is lower than printed here.
//   node --import tsx bench/python.ts [--runs n]
import { readdir, readFile, readlink, rm, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { loadBox } from '../src/box/layout.js';
import { planRun, runPlanInProcess, runPlanIsolated, type RunPlan } from '../src/box/runner.js';
import { convertImage, writeBoxToOciLayout, type ConversionReport } from '../src/convert/pipeline.js';
import { OciLayoutSource } from '../src/image/oci-layout.js';
import { buildRuntime } from '../src/runtimes/build.js';
import { ensureBuiltRuntime } from '../src/runtimes/build.js';
import { dir, file, symlink, writeLayout, type Entry } from '../test/convert/helpers.js';

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}

/** Entries for a host directory tree, placed at `at` inside the image (symlinks kept as symlinks). */
async function hostTree(hostDir: string, at: string): Promise<Entry[]> {
  const out: Entry[] = [dir(at + '/')];
  for (const e of (await readdir(hostDir, { withFileTypes: true })).sort((a, b) => (a.name < b.name ? -1 : 1))) {
    const h = join(hostDir, e.name);
    const p = `${at}/${e.name}`;
    if (e.isSymbolicLink()) out.push(symlink(p, await readlink(h)));
    else if (e.isDirectory()) out.push(...(await hostTree(h, p)));
    else if (e.isFile()) out.push(file(p, await readFile(h), (await stat(h)).mode & 0o777));
  }
  return out;
}

/** Child mode: runs a RunPlan in this process and reports the module's start-to-exit time on stderr. */
async function childRun(planJson: string): Promise<void> {
  const plan = JSON.parse(planJson) as RunPlan;
  const t0 = performance.now();
  const code = await runPlanInProcess(plan);
  process.stderr.write(`\nBENCH ${JSON.stringify({ code, ms: performance.now() - t0 })}\n`);
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { runs: { type: 'string', default: '5' }, 'child-run': { type: 'string' } } });
  if (values['child-run']) return childRun(values['child-run']);
  const runs = Number(values.runs);
  const scratch = resolve('.bench/python');
  await rm(scratch, { recursive: true, force: true });
  const log = (line: string): void => void process.stderr.write(`bench: ${line}\n`);

  log('building (or finding in the cache) CPython for WASI');
  const t0 = performance.now();
  const built = await buildRuntime('python');
  const runtimes = await ensureBuiltRuntime('python');
  const runtimeReadyMs = performance.now() - t0;

  log('writing the python:3.11-slim-like source image (Debian python3.11 files + hello world)');
  const entries: Entry[] = [
    dir('usr/'),
    dir('usr/bin/'),
    file('usr/bin/python3.11', await readFile('/usr/bin/python3.11'), 0o755),
    symlink('usr/bin/python3', 'python3.11'),
    dir('usr/lib/'),
    ...(await hostTree('/usr/lib/python3.11', 'usr/lib/python3.11')),
    dir('app/'),
    file('app/hello.py', 'print("hello world")\n'),
  ];
  const layout = join(scratch, 'source');
  await writeLayout(layout, {
    created: '2024-01-01T00:00:00Z',
    layers: [{ entries }],
    config: { Env: ['PATH=/usr/local/bin:/usr/bin:/bin', 'PYTHON_VERSION=3.11.2'], WorkingDir: '/app', Cmd: ['python3', 'hello.py'] },
  });

  log(`converting ${runs} times`);
  const convertMs: number[] = [];
  let report: ConversionReport | undefined;
  let boxDigest = '';
  for (let i = 0; i < runs; i++) {
    const work = join(scratch, `work-${i}`);
    const c0 = performance.now();
    const result = await convertImage(new OciLayoutSource(layout), '', { workDir: work, runtimes });
    convertMs.push(performance.now() - c0);
    if (result.kind !== 'box') throw new Error(`not converted: ${result.reason}`);
    if (boxDigest && boxDigest !== result.box.manifest.digest) throw new Error('conversion is not deterministic');
    boxDigest = result.box.manifest.digest;
    report = result.report;
    if (i === 0) await writeBoxToOciLayout(result.box, join(scratch, 'box'));
    await rm(work, { recursive: true, force: true });
  }
  if (!report) throw new Error('no conversion');

  log(`running the Box ${runs} times`);
  const unpacked = await loadBox(new OciLayoutSource(join(scratch, 'box')), '', { cacheDir: join(scratch, 'box-cache') });
  const plan = await planRun(unpacked);
  const isolatedMs: number[] = [];
  const moduleMs: number[] = [];
  let output = '';
  for (let i = 0; i < runs; i++) {
    // End to end: a fresh Node process loads the runner, compiles python.wasm and runs the Box (`boxproxy run`).
    const r0 = performance.now();
    const run = await runPlanIsolated(plan, { stdio: 'pipe' });
    isolatedMs.push(performance.now() - r0);
    if (run.exitCode !== 0) throw new Error(`Box exited ${run.exitCode}: ${run.stderr}`);
    output = run.stdout;
    // The module alone (compile + instantiate + CPython start-up + script + exit), inside an already-started Node.
    const { spawnSync } = await import('node:child_process');
    const child = spawnSync(process.execPath, [...process.execArgv, new URL(import.meta.url).pathname, '--child-run', JSON.stringify(plan)], {
      encoding: 'utf8',
    });
    const m = /BENCH (\{.*\})/.exec(child.stderr);
    if (!m) throw new Error(`child run failed: ${child.stderr}`);
    moduleMs.push((JSON.parse(m[1] as string) as { ms: number }).ms);
  }

  const sizes = report.sizes;
  const result = {
    note:
      'source image approximated by Debian python3.11 files from this machine (/usr/lib/python3.11 + /usr/bin/python3.11) + hello.py, one gzip layer; the real python:3.11-slim adds a Debian base (~29 MB compressed)',
    runtime: { version: built.manifest.version, pythonWasmBytes: built.manifest.interpreter.size, readyMs: Math.round(runtimeReadyMs) },
    output: output.trim(),
    startToExit: {
      runnerIsolatedMedianMs: Math.round(median(isolatedMs)),
      runnerIsolatedMs: isolatedMs.map(Math.round),
      moduleInProcessMedianMs: Math.round(median(moduleMs)),
      moduleInProcessMs: moduleMs.map(Math.round),
      goalMs: 500,
    },
    size: {
      sourceCompressedBytes: sizes.sourceCompressed,
      sourceUncompressedBytes: sizes.sourceUncompressed,
      boxCompressedBytes: sizes.boxCompressed,
      boxUncompressedBytes: sizes.boxUncompressed,
      boxToSourceCompressed: Number(((sizes.boxCompressed ?? 0) / sizes.sourceCompressed).toFixed(3)),
      goalRatio: 0.25,
    },
    conversion: { medianMs: Math.round(median(convertMs)), runsMs: convertMs.map(Math.round), stages: report.timings },
    boxDigest,
  };
  process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
}

await main();
