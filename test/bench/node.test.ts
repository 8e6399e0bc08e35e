import assert from 'node:assert/strict';
import { test } from 'node:test';
import { nodeSection, type NodeProgramResult } from '../../bench/node.js';

const sample = (firstLineMs: number, exitMs: number, peakRssKiB: number) => ({ firstLineMs, exitMs, peakRssKiB, exitCode: 0, stdout: 'x\n' });

test('node start section: medians of first line, exit and peak RSS against native, with the 2x goal', () => {
  const p: NodeProgramResult = {
    program: 'hello',
    native: [sample(40, 45, 40 * 1024), sample(50, 55, 42 * 1024), sample(60, 65, 44 * 1024)],
    boxproxy: [sample(90, 100, 120 * 1024), sample(150, 160, 130 * 1024), sample(100, 130, 125 * 1024)],
  };
  const s = nodeSection([p], 3);
  assert.deepEqual(
    s.comparisons.map((c) => [c.metric, c.reference, c.boxproxy, c.met]),
    [
      ['hello: to the first line of output (median of 3)', 50, 100, true],
      ['hello: to exit (median of 3)', 55, 130, false],
      ['hello: peak RSS', 42, 125, undefined],
    ],
  );
});
