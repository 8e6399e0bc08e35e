import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { gzipSync, createGzip } from 'node:zlib';
import { boxMtime } from '../../src/convert/assemble.js';
import { ZLIB_LEVEL } from '../../src/convert/gzip/index.js';
import { containedSymlinkTarget as boxSymlinkTarget } from '../../src/oci/rootfs.js';

describe('assemble helpers', () => {
  test('symlink targets stay inside the root', () => {
    assert.equal(boxSymlinkTarget('/usr/bin/ruby', 'ruby3.1'), 'ruby3.1');
    assert.equal(boxSymlinkTarget('/usr/bin/ruby', '/usr/bin/ruby3.1'), 'ruby3.1');
    assert.equal(boxSymlinkTarget('/etc/alternatives/x', '/usr/lib/x'), '../../usr/lib/x');
    assert.equal(boxSymlinkTarget('/a/link', '../../../../etc/passwd'), '../etc/passwd');
    assert.equal(boxSymlinkTarget('/a/b/link', '../c'), '../c');
    assert.equal(boxSymlinkTarget('/link', '/'), '.');
    assert.equal(boxSymlinkTarget('/a/link', '/a'), '.');
  });

  test('mtime: created in whole seconds, else the epoch', () => {
    assert.equal(boxMtime('2024-05-06T07:08:09.999Z').toISOString(), '2024-05-06T07:08:09.000Z');
    assert.equal(boxMtime(undefined).getTime(), 0);
    assert.equal(boxMtime('garbage').getTime(), 0);
  });

  test("Node's gzip header is fixed: no name, mtime 0, same bytes every time", async () => {
    const data = Buffer.from('same input, same output '.repeat(1000));
    const a = gzipSync(data, { level: ZLIB_LEVEL });
    const chunks: Buffer[] = [];
    const gz = createGzip({ level: ZLIB_LEVEL });
    gz.on('data', (c: Buffer) => chunks.push(c));
    const done = new Promise((r) => gz.on('end', r));
    for (let i = 0; i < data.length; i += 1000) gz.write(data.subarray(i, i + 1000));
    gz.end();
    await done;
    const b = Buffer.concat(chunks);
    assert.deepEqual(a, b, 'chunking does not change the output');
    assert.deepEqual([...a.subarray(0, 10)].slice(0, 8), [0x1f, 0x8b, 8, 0, 0, 0, 0, 0]);
  });
});
