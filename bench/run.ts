// `npm run bench`: runs each benchmark area and writes BENCHMARKS.md.
// Areas are one file each: bench/registry.ts (pull-through registry),
// bench/convert.ts (image to Box conversion), bench/boxes.ts (serving Boxes), bench/start.ts (Box start).
// Everything runs on loopback and stops at the end.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { closeHttp } from './http.js';
import { DEFAULT_BOXES_OPTIONS, runBoxesBench } from './boxes.js';
import { runConvertBench } from './convert.js';
import { runNodeBench } from './node.js';
import { runStartBench } from './start.js';
import { DEFAULT_REGISTRY_OPTIONS, runRegistryBench } from './registry.js';
import { loadAverageNow, machineInfo, writeReport, type BenchSection, type MachineInfo } from './report.js';

const USAGE = `usage: node dist/bench/run.js [options]
  --only <areas>       run these areas, comma-separated (registry, convert, boxes, start, node; default all)
  --quick              small images and short loads: checks the harness, numbers are not meaningful
  --blob-mib <n>       registry: layer size in MiB (default ${DEFAULT_REGISTRY_OPTIONS.blobMiB})
  --seconds <n>        registry: seconds per manifest load run (default ${DEFAULT_REGISTRY_OPTIONS.loadSeconds});
                       boxes: seconds per measured tag load run (default ${DEFAULT_BOXES_OPTIONS.loadSeconds})
  --convert-runs <n>   convert: measured conversions of the ~100 MiB image (default 3)
  --out <file>         report file (default BENCHMARKS.md; --quick defaults to .bench/BENCHMARKS.quick.md)
  --profile            run boxproxy and the conversion children with --cpu-prof; profiles go to .bench/profiles/`;

const AREAS = ['registry', 'convert', 'boxes', 'start', 'node'] as const;
type Area = (typeof AREAS)[number];

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      only: { type: 'string' },
      quick: { type: 'boolean', default: false },
      'blob-mib': { type: 'string' },
      seconds: { type: 'string' },
      'convert-runs': { type: 'string' },
      out: { type: 'string' },
      profile: { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  const wanted = values.only === undefined ? [...AREAS] : values.only.split(',').map((a) => a.trim());
  const unknown = wanted.filter((a) => !(AREAS as readonly string[]).includes(a));
  if (unknown.length > 0 || wanted.length === 0) throw new Error(`unknown area ${unknown.join(', ') || '(none)'}; known: ${AREAS.join(', ')}`);
  const areas: readonly Area[] = AREAS.filter((a) => wanted.includes(a));
  const positive = (v: string | undefined, fallback: number, what: string): number => {
    if (v === undefined) return fallback;
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1) throw new Error(`${what} must be a positive integer`);
    return n;
  };

  const scratch = resolve('.bench');
  mkdirSync(scratch, { recursive: true });
  const log = (line: string): void => void process.stderr.write(`bench: ${line}\n`);
  const out = resolve(values.out ?? (values.quick ? join(scratch, 'BENCHMARKS.quick.md') : 'BENCHMARKS.md'));
  const machine = machineInfo();
  const sections: BenchSection[] = [];
  const raw: Record<string, unknown> = { machine };
  const profileDir = join(scratch, 'profiles');
  const profileArgs = values.profile ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : [];
  // Each area carries the machine's state (its load average) as it started and ended.
  const measured = async (area: Area, toolNames: readonly string[], body: () => Promise<{ section: BenchSection; raw: unknown }>): Promise<void> => {
    const now = machineInfo();
    const tools = Object.fromEntries(Object.entries(now.tools).filter(([name]) => toolNames.includes(name)));
    const started: MachineInfo = { ...now, tools };
    const t0 = Date.now();
    log(`${area}: start (load average ${started.loadAverage})`);
    const result = await body();
    sections.push({ ...result.section, machine: { ...started, loadAverageEnd: loadAverageNow() } });
    raw[area] = { machine: sections[sections.length - 1]?.machine, result: result.raw };
    // Written after every area: a later area's failure does not lose what was measured.
    writeReport(out, sections, machine);
    log(`${area}: done in ${((Date.now() - t0) / 1000).toFixed(0)} s`);
  };

  if (areas.includes('registry')) {
    const quick = values.quick ? { blobMiB: 16, warmRuns: 2, coldRuns: 1, loadSeconds: 2, herd: 5 } : {};
    await measured('registry', ['docker-registry', 'wrk'], () =>
      runRegistryBench({
        ...DEFAULT_REGISTRY_OPTIONS,
        ...quick,
        blobMiB: positive(values['blob-mib'], quick.blobMiB ?? DEFAULT_REGISTRY_OPTIONS.blobMiB, '--blob-mib'),
        loadSeconds: positive(values.seconds, quick.loadSeconds ?? DEFAULT_REGISTRY_OPTIONS.loadSeconds, '--seconds'),
        boxproxyNodeArgs: profileArgs,
        log,
      }),
    );
  }

  if (areas.includes('convert')) {
    await measured('convert', [], () =>
      runConvertBench({
        dir: join(scratch, 'convert'),
        quick: values.quick,
        runs: positive(values['convert-runs'], values.quick ? 1 : 3, '--convert-runs'),
        // Peak RSS at a tenth and at twice the image size shows whether memory grows with the image.
        sweepScales: values.quick ? [] : [0.1, 2],
        childNodeArgs: profileArgs,
        log: (line) => log(`convert: ${line}`),
      }),
    );
  }

  if (areas.includes('boxes')) {
    const quick = values.quick ? { loadSeconds: 1, rounds: 1, warmupSeconds: 1, singleSeconds: 1 } : {};
    await measured('boxes', ['docker-registry', 'wrk', 'skopeo'], () =>
      runBoxesBench({
        ...DEFAULT_BOXES_OPTIONS,
        ...quick,
        loadSeconds: positive(values.seconds, quick.loadSeconds ?? DEFAULT_BOXES_OPTIONS.loadSeconds, '--seconds'),
        boxproxyNodeArgs: profileArgs,
        log: (line) => log(`boxes: ${line}`),
      }),
    );
  }
  if (areas.includes('start')) {
    await measured('start', [], () => runStartBench({ runs: values.quick ? 2 : 11, dir: join(scratch, 'start'), log }));
  }
  if (areas.includes('node')) {
    await measured('node', [], () => runNodeBench({ dir: join(scratch, 'node'), runs: values.quick ? 2 : 10, log }));
  }
  if (values.profile) log(`CPU profiles in ${profileDir}`);

  await closeHttp();
  writeFileSync(join(scratch, 'results.json'), `${JSON.stringify(raw, null, 2)}\n`);
  log(`wrote ${out} (raw numbers: ${join(scratch, 'results.json')})`);
  for (const s of sections) {
    for (const c of s.comparisons) {
      if (c.goal !== undefined && !c.met) log(`goal not met: ${c.metric}: ${c.goal}`);
    }
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`bench: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
