import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createCipheriv, createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { list, type ReadEntry } from 'tar';
import { IGZIP_LEVEL, igzipCodec, igzipVersion, ZLIB_LEVEL, zlibCodec, type GzipCodec } from '../../src/convert/gzip/index.js';
import { BLOCK_BYTES, GzipLayerWriter } from '../../src/convert/layer-writer.js';
import { TAR_END, tarHeader } from '../../src/convert/tar-writer.js';
import { skipUnlessTools } from '../helpers/proc.js';
import { tempDir } from './helpers.js';

let root: string;
let cleanup: () => Promise<void>;
before(async () => {
  ({ path: root, cleanup } = await tempDir());
});
after(async () => cleanup());

const noise = (size: number): Buffer => createCipheriv('aes-128-ctr', Buffer.alloc(16), Buffer.alloc(16)).update(Buffer.alloc(size));
const text = (size: number): Buffer =>
  Buffer.from('the quick brown fox jumps over the lazy dog, again and again\n'.repeat(Math.ceil(size / 61)).slice(0, size));
const sha = (b: Buffer): string => 'sha256:' + createHash('sha256').update(b).digest('hex');

/** A tar of a few files spanning several blocks: text, noise, and pieces across block boundaries. */
function sampleTar(bigBytes = BLOCK_BYTES): { tar: Buffer; files: Map<string, Buffer> } {
  const files = new Map<string, Buffer>([
    ['text.txt', text(bigBytes + 12345)],
    ['noise.bin', noise(2 * bigBytes + 777)],
    ['small', Buffer.from('small file')],
  ]);
  const parts: Buffer[] = [];
  for (const [path, data] of files) {
    parts.push(tarHeader({ path, type: 'File', mode: 0o644, size: data.length, mtime: new Date(0) }), data, Buffer.alloc((512 - (data.length % 512)) % 512));
  }
  parts.push(TAR_END);
  return { tar: Buffer.concat(parts), files };
}

async function writeAll(codec: GzipCodec, path: string, tar: Buffer, pieces: number): Promise<Awaited<ReturnType<GzipLayerWriter['finish']>>> {
  const writer = await GzipLayerWriter.create(path, codec);
  const step = Math.ceil(tar.length / pieces);
  for (let i = 0; i < tar.length; i += step) await writer.write(tar.subarray(i, i + step));
  return writer.finish();
}

const igzipSkip = skipUnlessTools('igzip');
const codecs: Array<{ name: string; skip: string | false; codec: () => Promise<GzipCodec> }> = [
  { name: 'zlib', skip: false, codec: async () => zlibCodec(ZLIB_LEVEL) },
  { name: 'igzip', skip: igzipSkip, codec: async () => igzipCodec('igzip', (await igzipVersion()) ?? '?', IGZIP_LEVEL) },
];

for (const c of codecs) {
  describe(`GzipLayerWriter with ${c.name}`, { skip: c.skip }, () => {
    test('writes a gzip that gunzip, GNU gzip and the tar package read as one tar; digests match the bytes', async () => {
      // Big enough for several igzip chunks (members) too.
      const { tar, files } = sampleTar(c.name === 'igzip' ? 16 * 1024 * 1024 : BLOCK_BYTES);
      const path = join(root, `${c.name}-a.tar.gz`);
      const written = await writeAll(await c.codec(), path, tar, 7);
      const gz = await readFile(path);
      assert.equal(written.size, gz.length);
      assert.equal(written.digest, sha(gz));
      assert.equal(written.diffId, sha(tar));
      assert.equal(written.tarBytes, tar.length);
      assert.ok(gz.length < tar.length, 'text is compressed');
      assert.deepEqual(gunzipSync(gz), tar);
      assert.deepEqual(execFileSync('gzip', ['-dc', path], { maxBuffer: 256 * 1024 * 1024 }), tar);
      const seen = new Map<string, Buffer>();
      await list({
        file: path,
        onReadEntry: (e: ReadEntry) => {
          const chunks: Buffer[] = [];
          e.on('data', (chunk: Buffer) => chunks.push(chunk));
          e.on('end', () => seen.set(e.path, Buffer.concat(chunks)));
        },
      });
      assert.deepEqual(seen, files);
      assert.deepEqual((await readdir(root)).filter((f) => f.startsWith(`${c.name}-a.tar.gz.`)), [], 'no scratch files are left');
    });

    test('the bytes depend only on the content, not on how it was written', async () => {
      const { tar } = sampleTar();
      const codec = await c.codec();
      const a = await writeAll(codec, join(root, `${c.name}-b1.tar.gz`), tar, 1);
      const b = await writeAll(codec, join(root, `${c.name}-b2.tar.gz`), tar, 997);
      assert.equal(a.digest, b.digest);
      assert.deepEqual(await readFile(join(root, `${c.name}-b1.tar.gz`)), await readFile(join(root, `${c.name}-b2.tar.gz`)));
    });

    test('an empty tar is a valid empty gzip', async () => {
      const path = join(root, `${c.name}-empty.tar.gz`);
      const written = await (await GzipLayerWriter.create(path, await c.codec())).finish();
      assert.equal(written.tarBytes, 0);
      assert.equal(gunzipSync(await readFile(path)).length, 0);
    });
  });
}
