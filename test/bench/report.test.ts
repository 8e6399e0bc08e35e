import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseWrk } from '../../bench/http.js';
import { fmt, ratio, writeReport, type BenchSection, type MachineInfo } from '../../bench/report.js';

const WRK_OUTPUT = `Running 10s test @ http://127.0.0.1:5000/v2/a/manifests/v1
  1 threads and 64 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     3.14ms  520.00us  20.01ms   90.00%
    Req/Sec    20.41k     1.20k   22.00k    80.00%
  Latency Distribution
     50%  850.00us
     75%    3.00ms
     90%    4.00ms
     99%    1.20s
  203456 requests in 10.00s, 150.00MB read
  Non-2xx or 3xx responses: 3
Requests/sec:  20345.60
Transfer/sec:     15.00MB
`;

test('parseWrk reads requests/s, totals, failures and latency percentiles in any unit', () => {
  const r = parseWrk(WRK_OUTPUT);
  assert.equal(r.requestsPerSecond, 20345.6);
  assert.equal(r.requests, 203456);
  assert.equal(r.failures, 3);
  assert.equal(r.latencyP50Ms, 0.85);
  assert.equal(r.latencyP99Ms, 1200);
  assert.throws(() => parseWrk('garbage'));
});

const MACHINE: MachineInfo = {
  date: '2026-11-27T00:00:00.000Z',
  cpus: 2,
  cpuModel: 'test cpu',
  memoryGiB: 24,
  node: 'v20.0.0',
  kernel: '6.0',
  loadAverage: 0.5,
  tools: { wrk: 'wrk 4' },
};

function section(id: string, boxproxy: number): BenchSection {
  return {
    id,
    title: `Area ${id}`,
    reference: 'ref',
    comparisons: [{ metric: 'speed', unit: 'MB/s', reference: 100, boxproxy, better: 'higher', goal: 'ratio >= 1.0', met: boxproxy >= 100 }],
    method: ['measured'],
  };
}

test('writeReport replaces the sections it was given and keeps the others', () => {
  const dir = mkdtempSync(join(tmpdir(), 'boxproxy-report-'));
  try {
    const file = join(dir, 'BENCHMARKS.md');
    writeReport(file, [section('registry', 150), section('convert', 50)], MACHINE);
    writeReport(file, [section('registry', 80)], MACHINE);
    const text = readFileSync(file, 'utf8');
    assert.match(text, /## Area registry[\s\S]*\| speed \| MB\/s \| 100 \| 80\.0 \| 0\.80 \| higher \| ratio >= 1\.0 \(NOT met\) \|/);
    assert.match(text, /## Area convert[\s\S]*\| speed \| MB\/s \| 100 \| 50\.0 \| 0\.50 \|/);
    assert.equal(text.match(/<!-- bench:registry -->/g)?.length, 1);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a section can name its columns, add tables and carry its own load average', () => {
  const dir = mkdtempSync(join(tmpdir(), 'boxproxy-report-'));
  try {
    const file = join(dir, 'BENCHMARKS.md');
    const s: BenchSection = {
      ...section('boxes', 90),
      columns: { reference: 'plain tag', boxproxy: 'tag with Box' },
      table: { header: ['a', 'b'], rows: [['1', '2']] },
      tables: [{ header: ['c'], rows: [['3']] }],
      machine: { ...MACHINE, loadAverage: 3.5, loadAverageEnd: 4.25, tools: {} },
    };
    writeReport(file, [s], MACHINE);
    const text = readFileSync(file, 'utf8');
    assert.match(text, /load average 3\.5 at start, 4\.25 at end\.\n/);
    assert.match(text, /Ratio = column "tag with Box" \/ column "plain tag"\./);
    assert.match(text, /\| metric \| unit \| plain tag \| tag with Box \| ratio \| better \| goal \|/);
    assert.match(text, /\| a \| b \|\n\|---\|---\|\n\| 1 \| 2 \|\n\n\| c \|\n\|---\|\n\| 3 \|/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('extra columns show their value and its ratio to the reference', () => {
  const dir = mkdtempSync(join(tmpdir(), 'boxproxy-report-'));
  try {
    const file = join(dir, 'BENCHMARKS.md');
    const base = section('registry', 150);
    const s: BenchSection = { ...base, extraColumns: ['distribution 3'], comparisons: base.comparisons.map((c) => ({ ...c, extra: [120] })) };
    writeReport(file, [s], MACHINE);
    const text = readFileSync(file, 'utf8');
    assert.match(text, /\| metric \| unit \| reference \| boxproxy \| distribution 3 \| ratio \| better \| goal \|\n\|---\|---\|--:\|--:\|--:\|--:\|---\|---\|/);
    assert.match(text, /\| speed \| MB\/s \| 100 \| 150 \| 120 \(1\.20\) \| 1\.50 \| higher \|/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('fmt and ratio', () => {
  assert.equal(fmt(12345.6), '12,346');
  assert.equal(fmt(1.234), '1.23');
  assert.equal(fmt(0.01234), '0.012');
  assert.equal(fmt(Number.NaN), 'n/a');
  assert.equal(ratio({ metric: '', unit: '', reference: 0, boxproxy: 0, better: 'lower' }), 1);
});
