import { test } from 'node:test';
import assert from 'node:assert/strict';
import { convertSection, type ConvertBenchResult } from '../../bench/convert.js';

const MiB = 2 ** 20;

function result(scale: number, convertMs: number, peakMiB: number): ConvertBenchResult {
  const floorMs = 1000 * scale;
  return {
    gzip: 'igzip 2.30.0 level 1',
    image: { layers: 4, files: 1000, compressedBytes: 100 * MiB * scale, uncompressedBytes: 160 * MiB * scale },
    box: { digest: 'sha256:' + 'a'.repeat(64), compressedBytes: 90 * MiB * scale, uncompressedBytes: 150 * MiB * scale, fileBytes: 0, identicalAcrossRuns: true },
    floorMs,
    convertMs,
    ratio: Math.round((convertMs / floorMs) * 100) / 100,
    floorCpuMs: floorMs,
    convertCpuMs: convertMs * 1.5,
    cpuRatio: Math.round(((convertMs * 1.5) / floorMs) * 100) / 100,
    sizeRatio: 0.9,
    peakRssBytes: peakMiB * MiB,
    startRssBytes: 50 * MiB,
    scale,
    regzipMs: floorMs * 4,
    regzipCpuMs: floorMs * 5,
    runs: [{ floorMs, regzipMs: floorMs * 4, regzipCpuMs: floorMs * 5, convertMs, floorCpuMs: floorMs, convertCpuMs: convertMs * 1.5, phaseMs: { untilAssemble: convertMs / 3, assembleAndWrite: (convertMs * 2) / 3 }, phaseCpuMs: { untilAssemble: convertMs / 3, assembleAndWrite: convertMs }, peakRssBytes: peakMiB * MiB, startRssBytes: 50 * MiB, stages: { flatten: 10, assemble: 20 } }],
    machine: { cpus: 2, node: 'v20' },
    method: ['m'],
  };
}

test('convertSection judges the time goal by the wall-time ratio and says when it is not met', () => {
  const met = convertSection(result(1, 1400, 170), []);
  assert.equal(met.comparisons[0]?.met, true);
  assert.ok(!met.notes?.some((n) => n.includes('NOT met')));

  const missed = convertSection(result(1, 2600, 170), []);
  assert.equal(missed.comparisons[0]?.met, false);
  assert.ok(missed.notes?.some((n) => n.includes('NOT met') && n.includes('2.60 x by wall time')));
});

test('convertSection reports how peak RSS grows across image sizes', () => {
  const s = convertSection(result(1, 3000, 170), [result(0.1, 300, 120), result(2, 6000, 190)]);
  assert.deepEqual(s.tables?.[0]?.rows.map((r) => r[2]), ['120', '170', '190']);
  assert.equal(s.table?.rows.length, 4);
  // (190 - 120) MiB over (200 - 10) MiB of image, per 100 MiB.
  assert.ok(s.notes?.some((n) => n.includes('about 36.8 MiB per 100 MiB')), s.notes?.join('\n'));
});
