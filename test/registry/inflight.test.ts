import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { InflightBlob } from '../../src/registry/inflight.js';

async function collect(r: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of r) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

async function setup() {
  const path = join(mkdtempSync(join(tmpdir(), 'boxproxy-inflight-')), 'blob');
  const fh = await open(path, 'w+');
  const blob = new InflightBlob(path, 10);
  const sink = blob.sink(fh);
  const write = (s: string) => new Promise<void>((res, rej) => sink.write(Buffer.from(s), (e) => (e ? rej(e) : res())));
  return { blob, write, fh };
}

test('readers follow the file as it grows and end when the fetch is verified', async () => {
  const { blob, write, fh } = await setup();
  const early = collect(blob.reader());
  const ranged = collect(blob.reader({ start: 2, end: 5 }));
  await write('01234');
  const late = collect(blob.reader());
  await write('56789');
  blob.finish();
  await fh.close();
  assert.equal((await early).toString(), '0123456789');
  assert.equal((await late).toString(), '0123456789');
  assert.equal((await ranged).toString(), '2345');
});

test('the last byte is held back until verification; a failure cuts every reader', async () => {
  const { blob, write, fh } = await setup();
  const got: Buffer[] = [];
  const reader = blob.reader();
  reader.on('data', (c: Buffer) => got.push(c));
  const ended = new Promise<Error | undefined>((resolve) => {
    reader.once('error', resolve);
    reader.once('end', () => resolve(undefined));
  });
  await write('0123456789');
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(Buffer.concat(got).toString(), '012345678', 'all but the last byte');
  blob.fail(new Error('digest mismatch'));
  const err = await ended;
  await fh.close();
  assert.match(String(err?.message), /digest mismatch/);
});

test('readers at the front take fresh bytes from memory, readers behind from the file: both get every byte in order', async () => {
  const path = join(mkdtempSync(join(tmpdir(), 'boxproxy-inflight-')), 'blob');
  const fh = await open(path, 'w+');
  const chunk = (i: number): Buffer => Buffer.alloc(300 * 1024 + i, i % 251);
  const expected = Buffer.concat(Array.from({ length: 40 }, (_, i) => chunk(i)));
  const blob = new InflightBlob(path, expected.length);
  const sink = blob.sink(fh);
  const write = (b: Buffer) => new Promise<void>((res, rej) => sink.write(b, (e) => (e ? rej(e) : res())));
  const front = collect(blob.reader());
  const ranged = collect(blob.reader({ start: 1000, end: 5 * 1024 * 1024 }));
  let late: Promise<Buffer> | undefined;
  for (let i = 0; i < 40; i++) {
    await write(chunk(i));
    // Starts once more than the in-memory window has gone by: it must catch up from the file.
    if (i === 30) late = collect(blob.reader());
  }
  blob.finish();
  await fh.close();
  assert.ok((await front).equals(expected));
  assert.ok((await ranged).equals(expected.subarray(1000, 5 * 1024 * 1024 + 1)));
  assert.ok((await (late as Promise<Buffer>)).equals(expected));
});
