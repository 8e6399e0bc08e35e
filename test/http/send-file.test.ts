import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, get, type IncomingMessage } from 'node:http';
import { once } from 'node:events';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { sendFile } from '../../src/http/send-file.js';

const file = join(mkdtempSync(join(tmpdir(), 'boxproxy-sendfile-')), 'blob');
const data = randomBytes(5 * (1 << 20) + 123); // more chunks than pooled buffers, and a short last one
writeFileSync(file, data);

async function serve(range: [number, number]) {
  const outcome: { err?: unknown; done: Promise<void> } = { done: Promise.resolve() };
  const server = createServer((_req, res) => {
    res.writeHead(200, { 'content-length': range[1] - range[0] + 1 });
    outcome.done = sendFile(res, file, range[0], range[1]).catch((err: unknown) => {
      outcome.err = err;
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { server, port: (server.address() as AddressInfo).port, outcome };
}

function fetchBody(port: number): Promise<{ res: IncomingMessage; body: Promise<Buffer> }> {
  return new Promise((resolve) => {
    get({ host: '127.0.0.1', port, path: '/' }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      resolve({ res, body: once(res, 'end').then(() => Buffer.concat(chunks)) });
    });
  });
}

test('whole files and ranges arrive byte for byte through the reused buffers', async () => {
  for (const range of [[0, data.length - 1], [7, 3 * (1 << 20) + 5], [data.length - 1, data.length - 1]] as Array<[number, number]>) {
    const { server, port, outcome } = await serve(range);
    const { body } = await fetchBody(port);
    assert.ok((await body).equals(data.subarray(range[0], range[1] + 1)), `range ${range}`);
    await outcome.done;
    assert.equal(outcome.err, undefined);
    server.close();
  }
});

test('a client that goes away ends the transfer without an error', async () => {
  const { server, port, outcome } = await serve([0, data.length - 1]);
  const { res } = await fetchBody(port);
  await once(res, 'data');
  res.destroy();
  await outcome.done;
  assert.equal(outcome.err, undefined);
  server.closeAllConnections();
  server.close();
});
