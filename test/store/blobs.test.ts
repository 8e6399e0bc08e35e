import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { text } from 'node:stream/consumers';
import { BlobStore } from '../../src/store/blobs.js';
import { DigestMismatchError, sha256 } from '../../src/oci/digest.js';
import { silentLogger } from '../../src/ops/log.js';

const logger = silentLogger();
const fresh = () => mkdtempSync(join(tmpdir(), 'boxproxy-store-'));

test('content is stored under its digest and read back', async () => {
  const root = fresh();
  const store = new BlobStore(root, { logger });
  await store.init();
  const d = sha256('hello');
  await store.putStream(d, Readable.from([Buffer.from('hel'), Buffer.from('lo')]));
  assert.deepEqual(store.stat(d), { size: 5 });
  assert.equal(await text(store.openRead(d, { start: 1, end: 3 }) as Readable), 'ell');
  assert.equal((await store.readBuffer(d))?.toString(), 'hello');
});

test('a digest mismatch is never stored and leaves no temp file', async () => {
  const root = fresh();
  const store = new BlobStore(root, { logger });
  await store.init();
  const d = sha256('expected');
  await assert.rejects(store.putStream(d, Readable.from([Buffer.from('corrupt')])), DigestMismatchError);
  await assert.rejects(store.putBuffer(d, Buffer.from('corrupt')), DigestMismatchError);
  assert.equal(store.has(d), false);
  assert.equal(existsSync(store.pathOf(d)), false);
  assert.deepEqual(readdirSync(join(root, 'tmp')), []);
});

test('restart: leftovers of interrupted writes are removed, cached blobs are indexed again', async () => {
  const root = fresh();
  const a = new BlobStore(root, { logger });
  await a.init();
  const d = sha256('kept');
  await a.putBuffer(d, Buffer.from('kept'));
  writeFileSync(join(root, 'tmp', 'half-written'), 'xx');
  mkdirSync(join(root, 'blobs', 'sha256', 'zz'), { recursive: true });
  writeFileSync(join(root, 'blobs', 'sha256', 'zz', 'not-a-digest'), 'junk');
  const b = new BlobStore(root, { logger });
  await b.init();
  assert.deepEqual(readdirSync(join(root, 'tmp')), []);
  assert.deepEqual(b.stat(d), { size: 4 });
  assert.equal(b.size, 4);
});

test('maxBytes evicts least recently used blobs, never a pinned one', async () => {
  const root = fresh();
  const store = new BlobStore(root, { logger, maxBytes: 25 });
  await store.init();
  const blobs = ['a'.repeat(10), 'b'.repeat(10), 'c'.repeat(10)].map((s) => ({ s, d: sha256(s) }));
  const [a, b, c] = blobs as [{ s: string; d: string }, { s: string; d: string }, { s: string; d: string }];
  await store.putBuffer(a.d, Buffer.from(a.s));
  await store.putBuffer(b.d, Buffer.from(b.s));
  const reading = store.openRead(a.d) as Readable; // pins a and makes it most recent
  await store.putBuffer(c.d, Buffer.from(c.s));
  assert.ok(store.has(a.d), 'a is being read and was used last');
  assert.ok(!store.has(b.d), 'b was least recently used');
  assert.ok(store.has(c.d));
  assert.equal(await text(reading), a.s);
  // With a released, the next write may evict it.
  store.pin(c.d);
  const d = 'd'.repeat(10);
  await store.putBuffer(sha256(d), Buffer.from(d));
  assert.ok(!store.has(a.d));
  assert.ok(store.has(c.d));
  assert.ok(store.size <= 25);
});
