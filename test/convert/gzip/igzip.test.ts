import assert from 'node:assert/strict';
import { chmod, mkdir, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { gzipCodec, igzipCodec, pickGzip } from '../../../src/convert/gzip/index.js';
import { GzipLayerWriter } from '../../../src/convert/layer-writer.js';
import { skipUnlessTools } from '../../helpers/proc.js';
import { tempDir } from '../helpers.js';

let root: string;
let cleanup: () => Promise<void>;
before(async () => {
  ({ path: root, cleanup } = await tempDir());
});
after(async () => cleanup());

describe('picking the gzip', () => {
  test('auto takes igzip when it runs, zlib when it does not; igzip by name must exist', { skip: skipUnlessTools('igzip') }, async () => {
    assert.match((await pickGzip('auto')).name, /^igzip \d+\.\d+\.\d+ level 2$/);
    assert.match((await pickGzip('auto', join(root, 'no-such-igzip'))).name, /^zlib .* level 1$/);
    assert.match((await pickGzip('zlib')).name, /^zlib /);
    await assert.rejects(pickGzip('igzip', join(root, 'no-such-igzip')), /cannot be run \(Debian: apt-get install isal\)/);
  });

  test('a codec travels to a worker as its spec and comes back the same', { skip: skipUnlessTools('igzip') }, async () => {
    for (const codec of [await pickGzip('igzip'), await pickGzip('zlib')]) {
      const again = gzipCodec(structuredClone(codec.spec));
      assert.equal(again.name, codec.name);
      assert.deepEqual(again.spec, codec.spec);
    }
  });
});

describe('igzip failures', () => {
  test("a failing igzip fails the layer with igzip's own words and leaves no scratch files", async () => {
    const fake = join(root, 'broken-igzip');
    await writeFile(fake, '#!/bin/sh\necho "igzip: disk on fire" >&2\nexit 2\n');
    await chmod(fake, 0o755);
    const dir = join(root, 'out');
    await mkdir(dir);
    const writer = await GzipLayerWriter.create(join(dir, 'layer.tar.gz'), igzipCodec(fake, '0', 1));
    await writer.write(Buffer.alloc(3 * 1024 * 1024, 1));
    await assert.rejects(writer.finish(), /broken-igzip exited with 2: igzip: disk on fire/);
    const left = (await readdir(dir)).filter((f) => f !== 'layer.tar.gz');
    assert.deepEqual(left, []);
  });

  test('a missing igzip binary is an error, not a hang', async () => {
    const writer = await GzipLayerWriter.create(join(root, 'missing.tar.gz'), igzipCodec(join(root, 'nope'), '0', 1));
    await writer.write(Buffer.from('x'));
    await assert.rejects(writer.finish(), /nope: spawn .*ENOENT/);
  });
});
