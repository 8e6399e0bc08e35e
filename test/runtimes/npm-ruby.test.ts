import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { describe, test } from 'node:test';
import { NpmRuntimeCatalog } from '../../src/runtimes/npm-ruby.js';
import { nearestVersion, parseMajorMinor } from '../../src/runtimes/versions.js';

describe('ruby runtime catalog', () => {
  test('nearest version: same major, closest minor, newer on a tie, newest when unknown', () => {
    const have: Array<[number, number]> = [
      [3, 3],
      [3, 4],
    ];
    assert.deepEqual(nearestVersion(have, parseMajorMinor('3.3.5')), [3, 3]);
    assert.deepEqual(nearestVersion(have, parseMajorMinor('3.1.2')), [3, 3]);
    assert.deepEqual(nearestVersion(have, parseMajorMinor('3.5')), [3, 4]);
    assert.deepEqual(nearestVersion([[3, 2], [3, 4]], [3, 3]), [3, 4]);
    assert.deepEqual(nearestVersion(have, undefined), [3, 4]);
    assert.deepEqual(nearestVersion([], [3, 3]), undefined);
  });

  test('finds the installed @ruby/<maj.min>-wasm-wasi packages', async () => {
    const catalog = new NpmRuntimeCatalog();
    const r33 = await catalog.ruby('3.3.5');
    const r34 = await catalog.ruby('3.4.1');
    assert.equal(r33?.version, '3.3');
    assert.equal(r34?.version, '3.4');
    assert.ok(r33 && existsSync(r33.wasmPath) && r33.wasmPath.endsWith('ruby+stdlib.wasm'));
    assert.match(r33?.package ?? '', /^@ruby\/3\.3-wasm-wasi@\d+\.\d+\.\d+$/);
    assert.equal(await new NpmRuntimeCatalog(['/nonexistent']).ruby('3.3'), undefined);
  });
});
