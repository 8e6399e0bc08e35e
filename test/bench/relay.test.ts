import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { connect } from 'node:net';
import { Agent, request } from 'undici';
import { CountingRelay } from '../../bench/relay.js';

test('the relay forwards both ways and counts every request line, on reused connections too', async () => {
  const body = Buffer.alloc(300_000, 7);
  const server = createServer((req, res) => {
    res.setHeader('Content-Length', req.method === 'HEAD' ? 0 : body.length);
    res.end(req.method === 'HEAD' ? undefined : body);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const relay = await CountingRelay.start({ host: '127.0.0.1', port: (server.address() as AddressInfo).port });
  const agent = new Agent({ connections: 2 });
  try {
    for (let i = 0; i < 5; i++) {
      const res = await request(`${relay.url}/v2/a/blobs/sha256:${i}`, { dispatcher: agent });
      assert.equal((await res.body.arrayBuffer()).byteLength, body.length);
    }
    const head = await request(`${relay.url}/v2/a/manifests/v1`, { method: 'HEAD', dispatcher: agent });
    await head.body.dump();
    assert.equal(relay.count('GET', '/blobs/'), 5);
    assert.equal(relay.count('HEAD', '/manifests/v1'), 1);
    assert.equal(relay.requests.length, 6);
    assert.ok(relay.bytesFromUpstream >= 5 * body.length);
    relay.reset();
    assert.equal(relay.requests.length, 0);
  } finally {
    await agent.close();
    await relay.close();
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
});

test('a request line split across TCP writes is counted once', async () => {
  const seen: string[] = [];
  const server = createServer((req, res) => {
    seen.push(req.url ?? '');
    res.end('ok');
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const relay = await CountingRelay.start({ host: '127.0.0.1', port: (server.address() as AddressInfo).port });
  try {
    const socket = connect(relay.port, '127.0.0.1');
    await once(socket, 'connect');
    const raw = 'GET /v2/split/blobs/sha256:abc HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n';
    // Write in pieces, letting each reach the relay before the next.
    for (const piece of [raw.slice(0, 7), raw.slice(7, 30), raw.slice(30)]) {
      socket.write(piece);
      await new Promise((r) => setTimeout(r, 20));
    }
    let reply = '';
    socket.on('data', (c: Buffer) => (reply += c.toString()));
    await once(socket, 'close');
    assert.match(reply, /^HTTP\/1\.1 200/);
    assert.deepEqual(seen, ['/v2/split/blobs/sha256:abc']);
    assert.deepEqual(relay.requests, [{ method: 'GET', path: '/v2/split/blobs/sha256:abc' }]);
  } finally {
    await relay.close();
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
});
