import assert from 'node:assert/strict';
import { createCipheriv } from 'node:crypto';
import { describe, test } from 'node:test';
import { looksIncompressible } from '../../../src/convert/gzip/zlib.js';
import { BLOCK_BYTES } from '../../../src/convert/layer-writer.js';

const noise = (size: number): Buffer => createCipheriv('aes-128-ctr', Buffer.alloc(16), Buffer.alloc(16)).update(Buffer.alloc(size));
const text = (size: number): Buffer => Buffer.from('the quick brown fox jumps over the lazy dog\n'.repeat(Math.ceil(size / 44)).slice(0, size));

describe('zlib codec', () => {
  test('already-compressed blocks are recognised (stored, not deflated); text and zeros are not', () => {
    assert.equal(looksIncompressible(noise(BLOCK_BYTES)), true);
    assert.equal(looksIncompressible(text(BLOCK_BYTES)), false);
    assert.equal(looksIncompressible(Buffer.alloc(BLOCK_BYTES)), false);
    const mixed = Buffer.concat([noise(BLOCK_BYTES / 2), text(BLOCK_BYTES / 2)]);
    assert.equal(looksIncompressible(mixed), false, 'a block that is partly text is deflated');
  });
});
