// Node.js images built from Debian's packages (test/corpus/recipes/nodejs.ts), differentially: each image's own
// command run natively is the oracle, its Box must print the same and exit the same.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { corpusSkip } from './corpus.js';
import { assertRefused, assertRunsLikeNative } from './differential.js';

const skip = corpusSkip();

describe('nodejs corpus: a Box does what the native image does', { skip }, () => {
  test("Debian bookworm's nodejs 18: a CommonJS CLI with commander, js-yaml, lodash and chalk from npm", async () => {
    const d = await assertRunsLikeNative('nodejs-debian');
    assert.equal(d.native.exitCode, 2);
    assert.match(d.native.stdout, /^corpus: 4 items$/m);
    assert.match(d.native.stdout, /^args: \(none\) cwd: \/app script: inventory\.js$/m);
    assert.equal(d.conversion.report.chosen, 'node');
    // commander mentions child_process for its subcommands: kept, with a note.
    assert.match(d.conversion.report.notes.join('\n'), /node:child_process .* dependencies only .*commander/);
  });

  test('arguments replacing Cmd reach the app as docker run gives them: node, the script, its options', async () => {
    const d = await assertRunsLikeNative('nodejs-debian', { args: ['node', '/app/inventory.js', '--format', 'json', 'inventory.yaml'] });
    assert.match(d.native.stdout, /"metal": 42/);
  });

  test("Debian trixie's nodejs 20: an ES module app with top-level await, import.meta and ESM-only packages", async () => {
    const d = await assertRunsLikeNative('nodejs-esm', { args: ['two', 'args'] });
    assert.match(d.native.stdout, /^rendered 2 documents, \d+ bytes of HTML; node v20 args \["two","args"\]$/m);
  });

  test('an app whose own code serves HTTP is refused: a Box has no sockets', async () => {
    const d = await assertRefused('nodejs-server', /needs .*sockets: \/srv\/server\.js imports node:http/);
    assert.match(d.native.stdout, /^config ok$/m);
  });
});
