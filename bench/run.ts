// `npm run bench`: runs each benchmark area and writes BENCHMARKS.md.
// Areas are one file each (bench/registry.ts; conversion benchmarks join
// here as they are written). Everything runs on loopback and stops at the end.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { closeHttp } from './http.js';
import { DEFAULT_REGISTRY_OPTIONS, runRegistryBench } from './registry.js';
import { machineInfo, writeReport, type BenchSection } from './report.js';

const USAGE = `usage: node dist/bench/run.js [options]
  --only <area>        run one area (registry)
  --quick              small blob and short loads: checks the harness, numbers are not meaningful
  --blob-mib <n>       layer size in MiB (default ${DEFAULT_REGISTRY_OPTIONS.blobMiB})
  --seconds <n>        seconds per manifest load run (default ${DEFAULT_REGISTRY_OPTIONS.loadSeconds})
  --out <file>         report file (default BENCHMARKS.md; --quick defaults to .bench/BENCHMARKS.quick.md)
  --profile            run boxproxy with --cpu-prof; profiles go to .bench/profiles/`;

const AREAS = ['registry'] as const;
type Area = (typeof AREAS)[number];

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      only: { type: 'string' },
      quick: { type: 'boolean', default: false },
      'blob-mib': { type: 'string' },
      seconds: { type: 'string' },
      out: { type: 'string' },
      profile: { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  const areas: readonly Area[] = values.only === undefined ? AREAS : AREAS.filter((a) => a === values.only);
  if (areas.length === 0) throw new Error(`unknown area ${values.only}; known: ${AREAS.join(', ')}`);
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

  if (areas.includes('registry')) {
    const quick = values.quick ? { blobMiB: 16, warmRuns: 2, coldRuns: 1, loadSeconds: 2, herd: 5 } : {};
    const profileDir = join(scratch, 'profiles');
    const { section, raw: registryRaw } = await runRegistryBench({
      ...DEFAULT_REGISTRY_OPTIONS,
      ...quick,
      blobMiB: positive(values['blob-mib'], quick.blobMiB ?? DEFAULT_REGISTRY_OPTIONS.blobMiB, '--blob-mib'),
      loadSeconds: positive(values.seconds, quick.loadSeconds ?? DEFAULT_REGISTRY_OPTIONS.loadSeconds, '--seconds'),
      boxproxyNodeArgs: values.profile ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : [],
      log,
    });
    sections.push(section);
    raw.registry = registryRaw;
    if (values.profile) log(`CPU profiles of boxproxy in ${profileDir}`);
  }

  await closeHttp();
  writeReport(out, sections, machine);
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
