// Writes BENCHMARKS.md. Each measured area (bench/registry.ts, later the
// conversion benchmarks) returns a BenchSection; a run replaces only the
// sections it measured and keeps the others, so areas can be re-run alone.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, loadavg, release, totalmem } from 'node:os';

/** One metric measured on boxproxy and on the reference implementation. */
export interface Comparison {
  metric: string;
  unit: string;
  reference: number;
  boxproxy: number;
  /** Which direction is good, for reading the ratio. */
  better: 'higher' | 'lower';
  /** What the issue asks for, when it asks (e.g. "ratio >= 1.0"). */
  goal?: string;
  /** Whether the goal is met; undefined when there is no goal. */
  met?: boolean;
  /** Values of the section's `extraColumns`, in their order (shown after boxproxy, each with its / reference ratio). */
  extra?: number[];
}

export interface BenchSection {
  /** Stable id: the section's markers in BENCHMARKS.md. */
  id: string;
  title: string;
  /** The reference implementation compared with, e.g. "docker-registry 2.8.2 (proxy mode)". */
  reference: string;
  /**
   * Column headings for the two measured sides when they are not "reference" and "boxproxy" (e.g. a floor and
   * the conversion, or two kinds of request to the same boxproxy).
   */
  columns?: { reference: string; boxproxy: string };
  /** More measured sides (another reference, other engines): headings of Comparison.extra's values. */
  extraColumns?: string[];
  comparisons: Comparison[];
  /** Extra rows that are not a comparison (free-form table). */
  table?: { header: string[]; rows: string[][] };
  /** More free-form tables, after `table`. */
  tables?: Array<{ header: string[]; rows: string[][] }>;
  method: string[];
  notes?: string[];
  /** The machine as this area started (its own load average); the run's when absent. */
  machine?: MachineInfo;
}

export interface MachineInfo {
  date: string;
  cpus: number;
  cpuModel: string;
  memoryGiB: number;
  node: string;
  kernel: string;
  /** 1-minute load average when the run started: other work on the machine skews the numbers. */
  loadAverage: number;
  /** 1-minute load average when the area finished, when known. */
  loadAverageEnd?: number;
  tools: Record<string, string>;
}

/** First line a tool prints for its version; some (wrk) exit non-zero after printing it. */
function versionOf(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 10_000 });
  if (r.error) return 'not found';
  return `${r.stdout}${r.stderr}`.trim().split('\n')[0] ?? '';
}

export function loadAverageNow(): number {
  return Math.round((loadavg()[0] ?? 0) * 100) / 100;
}

export function machineInfo(): MachineInfo {
  return {
    date: new Date().toISOString(),
    cpus: availableParallelism(),
    cpuModel: cpus()[0]?.model ?? 'unknown',
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    node: process.version,
    kernel: release(),
    loadAverage: loadAverageNow(),
    tools: {
      'docker-registry': versionOf('docker-registry', ['--version']).replace(/^docker-registry /, ''),
      wrk: versionOf('wrk', ['-v']).replace(/ \[.*$/, ''),
      skopeo: versionOf('skopeo', ['--version']).replace(/^skopeo version /, ''),
    },
  };
}

/** Numbers with a precision fit for a table. */
export function fmt(n: number): string {
  if (!Number.isFinite(n)) return 'n/a';
  const a = Math.abs(n);
  if (a >= 1000) return Math.round(n).toLocaleString('en-US');
  if (a >= 100) return n.toFixed(0);
  if (a >= 10) return n.toFixed(1);
  if (a >= 1) return n.toFixed(2);
  return n.toPrecision(2);
}

export function ratio(c: Comparison): number {
  return c.reference === 0 ? (c.boxproxy === 0 ? 1 : Number.POSITIVE_INFINITY) : c.boxproxy / c.reference;
}

function renderSection(s: BenchSection, run: MachineInfo): string {
  const m = s.machine ?? run;
  const out: string[] = [];
  out.push(`## ${s.title}`, '');
  const load = m.loadAverageEnd === undefined ? `${m.loadAverage} at start` : `${m.loadAverage} at start, ${m.loadAverageEnd} at end`;
  out.push(`Measured ${m.date.slice(0, 16).replace('T', ' ')} UTC on ${m.cpus} CPUs (${m.cpuModel}), ${m.memoryGiB} GiB, Node ${m.node}, Linux ${m.kernel}, load average ${load}${Object.entries(m.tools).map(([k, v]) => `; ${k}: ${v}`).join('')}.`, '');
  const cols = s.columns ?? { reference: 'reference', boxproxy: 'boxproxy' };
  const ratioText = s.columns ? `Ratio = column "${cols.boxproxy}" / column "${cols.reference}"` : 'Ratio = boxproxy / reference';
  out.push(`Reference: ${s.reference}. ${ratioText}.`, '');
  const extras = s.extraColumns ?? [];
  if (extras.length) out.push(`Columns ${extras.map((e) => `"${e}"`).join(', ')} show their value and, in parentheses, its ratio to column "${cols.reference}".`, '');
  out.push(`| metric | unit | ${cols.reference} | ${cols.boxproxy} | ${extras.map((e) => `${e} | `).join('')}ratio | better | goal |`);
  out.push(`|---|---|--:|--:|${extras.map(() => '--:|').join('')}--:|---|---|`);
  for (const c of s.comparisons) {
    const goal = c.goal === undefined ? '' : `${c.goal} ${c.met ? '(met)' : '(NOT met)'}`;
    const extraCells = extras.map((_, i) => {
      const v = c.extra?.[i];
      return v === undefined ? '- | ' : `${fmt(v)} (${fmt(ratio({ ...c, boxproxy: v }))}) | `;
    });
    out.push(`| ${c.metric} | ${c.unit} | ${fmt(c.reference)} | ${fmt(c.boxproxy)} | ${extraCells.join('')}${fmt(ratio(c))} | ${c.better} | ${goal} |`);
  }
  for (const table of [...(s.table ? [s.table] : []), ...(s.tables ?? [])]) {
    out.push('', `| ${table.header.join(' | ')} |`, `|${table.header.map(() => '---').join('|')}|`);
    for (const row of table.rows) out.push(`| ${row.join(' | ')} |`);
  }
  out.push('', '### Method', '');
  for (const line of s.method) out.push(`- ${line}`);
  if (s.notes?.length) {
    out.push('', '### Notes', '');
    for (const line of s.notes) out.push(`- ${line}`);
  }
  return out.join('\n');
}

const HEADER = `# Benchmarks

Generated by \`npm run bench\` (bench/run.ts); do not edit by hand: a run replaces the sections it measured.
Numbers are from one run on the machine named in each section; loopback only, so they measure the
proxies' own costs, not a network.
`;

const SECTION = /<!-- bench:([a-z0-9-]+) -->\n([\s\S]*?)<!-- \/bench:\1 -->/g;

/** Writes `file`, replacing the given sections and keeping any others already there. */
export function writeReport(file: string, sections: readonly BenchSection[], machine: MachineInfo): void {
  const kept = new Map<string, string>();
  if (existsSync(file)) {
    for (const m of readFileSync(file, 'utf8').matchAll(SECTION)) kept.set(m[1] as string, (m[2] as string).trimEnd());
  }
  for (const s of sections) kept.set(s.id, renderSection(s, machine));
  const body = [...kept.entries()].map(([id, text]) => `<!-- bench:${id} -->\n${text}\n<!-- /bench:${id} -->`).join('\n\n');
  writeFileSync(file, `${HEADER}\n${body}\n`);
}
