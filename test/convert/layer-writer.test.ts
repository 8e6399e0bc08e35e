import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createCipheriv, createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { list, type ReadEntry } from 'tar';
import { GzipLayerWriter, looksIncompressible, MEMBER_BYTES } from '../../src/convert/layer-writer.js';
import { TAR_END, tarHeader } from '../../src/convert/tar-writer.js';
import { tempDir } from './helpers.js';

let root: string;
let cleanup: () => Promise<void>;
before(async () => {
  ({ path: root, cleanup } = await tempDir());
});
after(async () => cleanup());

const noise = (size: number): Buffer => createCipheriv('aes-128-ctr', Buffer.alloc(16), Buffer.alloc(16)).update(Buffer.alloc(size));
const text = (size: number): Buffer => Buffer.from('the quick brown fox jumps over the lazy dog, again and again\n'.repeat(Math.ceil(size / 61)).slice(0, size));
const sha = (b: Buffer): string => 'sha256:' + createHash('sha256').update(b).digest('hex');

/** A tar of a few files spanning several members: text, noise, and pieces across member boundaries. */
function sampleTar(): { tar: Buffer; files: Map<string, Buffer> } {
  const files = new Map<string, Buffer>([
    ['text.txt', text(MEMBER_BYTES + 12345)],
    ['noise.bin', noise(2 * MEMBER_BYTES + 777)],
    ['small', Buffer.from('small file')],
  ]);
  const parts: Buffer[] = [];
  for (const [path, data] of files) {
    parts.push(tarHeader({ path, type: 'File', mode: 0o644, size: data.length, mtime: new Date(0) }), data, Buffer.alloc((512 - (data.length % 512)) % 512));
  }
  parts.push(TAR_END);
  return { tar: Buffer.concat(parts), files };
}

async function writeAll(path: string, tar: Buffer, pieces: number): Promise<Awaited<ReturnType<GzipLayerWriter['finish']>>> {
  const writer = await GzipLayerWriter.create(path, 1);
  const step = Math.ceil(tar.length / pieces);
  for (let i = 0; i < tar.length; i += step) await writer.write(tar.subarray(i, i + step));
  return writer.finish();
}

describe('GzipLayerWriter', () => {
  test('writes a multi-member gzip that gunzip, GNU gzip and the tar package read as one tar', async () => {
    const { tar, files } = sampleTar();
    const path = join(root, 'a.tar.gz');
    const written = await writeAll(path, tar, 7);
    const gz = await readFile(path);
    assert.equal(written.size, gz.length);
    assert.equal(written.digest, sha(gz));
    assert.equal(written.diffId, sha(tar));
    assert.equal(written.tarBytes, tar.length);
    assert.ok(gz.length < tar.length, 'text members are compressed');
    assert.deepEqual(gunzipSync(gz), tar);
    assert.deepEqual(execFileSync('gzip', ['-dc', path], { maxBuffer: 64 * 1024 * 1024 }), tar);
    const seen = new Map<string, Buffer>();
    await list({
      file: path,
      onReadEntry: (e: ReadEntry) => {
        const chunks: Buffer[] = [];
        e.on('data', (c: Buffer) => chunks.push(c));
        e.on('end', () => seen.set(e.path, Buffer.concat(chunks)));
      },
    });
    assert.deepEqual(seen, files);
  });

  test('the bytes depend only on the content, not on how it was written', async () => {
    const { tar } = sampleTar();
    const a = await writeAll(join(root, 'b1.tar.gz'), tar, 1);
    const b = await writeAll(join(root, 'b2.tar.gz'), tar, 997);
    assert.equal(a.digest, b.digest);
    assert.deepEqual(await readFile(join(root, 'b1.tar.gz')), await readFile(join(root, 'b2.tar.gz')));
  });

  test('already-compressed blocks are recognised, text and zeros are not', () => {
    assert.equal(looksIncompressible(noise(MEMBER_BYTES)), true);
    assert.equal(looksIncompressible(text(MEMBER_BYTES)), false);
    assert.equal(looksIncompressible(Buffer.alloc(MEMBER_BYTES)), false);
    const mixed = Buffer.concat([noise(MEMBER_BYTES / 2), text(MEMBER_BYTES / 2)]);
    assert.equal(looksIncompressible(mixed), false, 'a block that is partly text is deflated');
  });
});
