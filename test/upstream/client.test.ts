// UpstreamClient against in-process HTTP servers for faults only a fake can make (resets, injected
// statuses, cross-origin redirects, token endpoint behaviour), and one real docker-registry behind
// htpasswd Basic auth.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { text } from 'node:stream/consumers';
import { after, afterEach, before, describe, test } from 'node:test';
import type { UpstreamConfig } from '../../src/config/schema.js';
import { upstreamBytes, upstreamErrors, upstreamRequests } from '../../src/ops/metrics.js';
import { silentLogger } from '../../src/ops/log.js';
import { UpstreamClient, type UpstreamClientOptions } from '../../src/upstream/client.js';
import { createUpstreamClients } from '../../src/upstream/index.js';
import { UpstreamError, type UpstreamResponse } from '../../src/upstream/types.js';
import { freePort, skipUnlessTools } from '../helpers/proc.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';

interface SeenRequest {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
}

interface TestServer {
  url: string;
  host: string;
  requests: SeenRequest[];
  close(): Promise<void>;
}

type Handler = (req: IncomingMessage, res: ServerResponse, n: number) => void;

const servers: TestServer[] = [];
const clients: UpstreamClient[] = [];

async function serve(handler: Handler): Promise<TestServer> {
  const requests: SeenRequest[] = [];
  const server: Server = createServer((req, res) => {
    requests.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers });
    handler(req, res, requests.length);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  const s: TestServer = {
    url: `http://127.0.0.1:${port}`,
    host: `127.0.0.1:${port}`,
    requests,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  servers.push(s);
  return s;
}

function configFor(url: string, extra: Partial<UpstreamConfig> = {}): UpstreamConfig {
  return { name: new URL(url).host, url, insecure: false, tagTtl: 300_000, timeout: 5_000, retries: 2, connections: 4, ...extra };
}

/** Delays between retries are recorded instead of waited for. */
function clientFor(config: UpstreamConfig, options: UpstreamClientOptions = {}): { client: UpstreamClient; sleeps: number[] } {
  const sleeps: number[] = [];
  const client = new UpstreamClient(config, silentLogger(), {
    sleep: async (ms) => {
      sleeps.push(ms);
    },
    ...options,
  });
  clients.push(client);
  return { client, sleeps };
}

afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()));
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

async function counterValue(counter: typeof upstreamRequests | typeof upstreamBytes | typeof upstreamErrors, labels: Record<string, string>): Promise<number> {
  const { values } = await counter.get();
  return values.filter((v) => Object.entries(labels).every(([k, want]) => v.labels[k as keyof typeof v.labels] === want)).reduce((a, v) => a + v.value, 0);
}

const json = (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void => {
  res.writeHead(status, { 'content-type': 'application/json', ...headers }).end(JSON.stringify(body));
};

const basic = (user: string, pass: string): string => 'Basic ' + Buffer.from(`${user}:${pass}`).toString('base64');

function assertNoSecrets(err: unknown, secrets: readonly string[]): void {
  const e = err as Error;
  const shown = `${e.message}\n${e.stack}\n${JSON.stringify(e)}`;
  for (const s of secrets) assert.ok(!shown.includes(s), `secret in error: ${e.message}`);
}

/** A registry that wants bearer tokens from its own /token endpoint (Basic-authenticated). */
async function tokenRegistry(opts: { user?: string; pass?: string; expiresIn?: number; blob?: (res: ServerResponse, req: IncomingMessage) => void } = {}) {
  const user = opts.user ?? 'robot';
  const pass = opts.pass ?? 'hunter2-secret';
  let issued = 0;
  const valid = new Set<string>();
  const tokenRequests: SeenRequest[] = [];
  const server = await serve((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    if (url.pathname === '/token') {
      tokenRequests.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers });
      if (req.headers.authorization !== basic(user, pass)) return json(res, 401, { details: 'bad credentials' });
      const token = `tok-${++issued}`;
      valid.add(token);
      // Answered a little later so that concurrent requests really overlap.
      setTimeout(() => json(res, 200, { token, ...(opts.expiresIn !== undefined ? { expires_in: opts.expiresIn } : {}) }), 20);
      return;
    }
    const presented = req.headers.authorization?.replace(/^Bearer /, '');
    if (!presented || !valid.has(presented)) {
      const repo = /^\/v2\/(.+)\/(?:manifests|blobs)\//.exec(url.pathname)?.[1];
      const scope = repo ? `,scope="repository:${repo}:pull"` : '';
      res.writeHead(401, { 'www-authenticate': `Bearer realm="${server.url}/token",service="fake"${scope}`, 'content-type': 'application/json' });
      res.end('{"errors":[{"code":"UNAUTHORIZED"}]}');
      return;
    }
    if (url.pathname.includes('/blobs/') && opts.blob) return opts.blob(res, req);
    json(res, 200, { presented });
  });
  return {
    server,
    tokenRequests,
    user,
    pass,
    revokeAll: () => valid.clear(),
    get issued() {
      return issued;
    },
  };
}

describe('UpstreamClient', () => {
  test('GET passes status, headers and body through; bytes and requests are counted', async () => {
    const s = await serve((_req, res) => res.writeHead(200, { 'content-type': 'text/plain', 'docker-content-digest': 'sha256:x' }).end('hello upstream'));
    const { client } = clientFor(configFor(s.url));
    assert.equal(client.name, s.host);
    const bytesBefore = await counterValue(upstreamBytes, { upstream: s.host });
    const res = await client.request({ method: 'GET', path: '/v2/a/b/blobs/sha256:x', repository: 'a/b', headers: { Accept: 'text/plain' } });
    assert.equal(res.status, 200);
    assert.equal(res.headers['docker-content-digest'], 'sha256:x');
    assert.equal(await text(res.body), 'hello upstream');
    assert.equal(await counterValue(upstreamBytes, { upstream: s.host }), bytesBefore + 'hello upstream'.length);
    assert.equal(await counterValue(upstreamRequests, { upstream: s.host, method: 'GET', status: '200' }), 1);
    assert.equal(s.requests[0]?.url, '/v2/a/b/blobs/sha256:x');
    assert.equal(s.requests[0]?.headers.accept, 'text/plain');
  });

  test('404 and other statuses under 500 are returned, not thrown', async () => {
    const s = await serve((_req, res) => json(res, 404, { errors: [{ code: 'MANIFEST_UNKNOWN' }] }));
    const { client } = clientFor(configFor(s.url));
    const res = await client.request({ method: 'GET', path: '/v2/a/manifests/nope', repository: 'a' });
    assert.equal(res.status, 404);
    assert.match(await text(res.body), /MANIFEST_UNKNOWN/);
    assert.equal(s.requests.length, 1, 'not retried');
  });

  test('HEAD returns headers and an empty body', async () => {
    const s = await serve((_req, res) => res.writeHead(200, { 'content-length': '1234', 'docker-content-digest': 'sha256:abc' }).end());
    const { client } = clientFor(configFor(s.url));
    const res = await client.request({ method: 'HEAD', path: '/v2/a/manifests/v1', repository: 'a' });
    assert.equal(res.status, 200);
    assert.equal(res.headers['content-length'], '1234');
    assert.equal(await text(res.body), '');
    assert.equal(s.requests[0]?.method, 'HEAD');
  });

  test("a caller's Authorization header is never forwarded", async () => {
    const s = await serve((_req, res) => json(res, 200, {}));
    const { client } = clientFor(configFor(s.url));
    const res = await client.request({ method: 'GET', path: '/v2/', headers: { Authorization: basic('intruder', 'guess'), authorization: 'Bearer x' } });
    await text(res.body);
    assert.equal(s.requests[0]?.headers.authorization, undefined);
  });

  test('a path prefix in the configured URL is kept', async () => {
    const s = await serve((_req, res) => json(res, 200, {}));
    const { client } = clientFor(configFor(`${s.url}/mirror/`));
    await text((await client.request({ method: 'GET', path: '/v2/a/tags/list', repository: 'a' })).body);
    assert.equal(s.requests[0]?.url, '/mirror/v2/a/tags/list');
  });

  test('503 then 200: retried with backoff, the 200 is returned', async () => {
    const s = await serve((_req, res, n) => (n < 3 ? json(res, 503, { errors: [] }) : res.end('finally')));
    const { client, sleeps } = clientFor(configFor(s.url, { retries: 2 }), { retryTiming: { baseDelayMs: 100, maxDelayMs: 1_000 } });
    const res = await client.request({ method: 'GET', path: '/v2/a/manifests/v1', repository: 'a' });
    assert.equal(res.status, 200);
    assert.equal(await text(res.body), 'finally');
    assert.equal(s.requests.length, 3);
    assert.equal(sleeps.length, 2);
    assert.ok(sleeps[0] !== undefined && sleeps[0] >= 50 && sleeps[0] <= 100, `first delay ${sleeps[0]}`);
    assert.ok(sleeps[1] !== undefined && sleeps[1] >= 100 && sleeps[1] <= 200, `second delay ${sleeps[1]}`);
  });

  test('5xx after all retries: UpstreamError kind status with the status', async () => {
    const s = await serve((_req, res) => json(res, 502, {}));
    const { client } = clientFor(configFor(s.url, { retries: 1 }));
    const errorsBefore = await counterValue(upstreamErrors, { upstream: s.host, kind: 'status' });
    await assert.rejects(client.request({ method: 'GET', path: '/v2/a/blobs/sha256:1', repository: 'a' }), (err: unknown) => {
      assert.ok(err instanceof UpstreamError);
      assert.equal(err.kind, 'status');
      assert.equal(err.status, 502);
      assert.equal(err.upstream, s.host);
      assert.match(err.message, new RegExp(`upstream ${s.host} answered 502`));
      return true;
    });
    assert.equal(s.requests.length, 2);
    assert.equal(await counterValue(upstreamErrors, { upstream: s.host, kind: 'status' }), errorsBefore + 1);
  });

  test('429 with Retry-After: waits as told, then succeeds', async () => {
    const s = await serve((_req, res, n) => (n === 1 ? json(res, 429, {}, { 'retry-after': '2' }) : res.end('ok')));
    const { client, sleeps } = clientFor(configFor(s.url));
    const res = await client.request({ method: 'GET', path: '/v2/a/manifests/v1', repository: 'a' });
    assert.equal(res.status, 200);
    await text(res.body);
    assert.deepEqual(sleeps, [2_000]);
  });

  test('429 with a Retry-After beyond the cap: thrown at once, status 429', async () => {
    const s = await serve((_req, res) => json(res, 429, {}, { 'retry-after': '3600' }));
    const { client, sleeps } = clientFor(configFor(s.url, { retries: 3 }));
    await assert.rejects(client.request({ method: 'GET', path: '/v2/a/manifests/v1', repository: 'a' }), { name: 'UpstreamError', kind: 'status', status: 429 });
    assert.equal(s.requests.length, 1);
    assert.deepEqual(sleeps, []);
  });

  test('connection refused: unreachable, naming the upstream and the errno', async () => {
    const port = await freePort();
    const { client, sleeps } = clientFor(configFor(`http://127.0.0.1:${port}`, { retries: 1 }));
    await assert.rejects(client.request({ method: 'GET', path: '/v2/' }), (err: unknown) => {
      assert.ok(err instanceof UpstreamError);
      assert.equal(err.kind, 'unreachable');
      assert.equal(err.message, `upstream 127.0.0.1:${port} unreachable: ECONNREFUSED`);
      return true;
    });
    assert.equal(sleeps.length, 1, 'connection errors are retried');
  });

  test('connection reset before the response: retried, then unreachable', async () => {
    const s = await serve((req) => req.socket.destroy());
    const { client } = clientFor(configFor(s.url, { retries: 2 }));
    await assert.rejects(client.request({ method: 'GET', path: '/v2/a/manifests/v1', repository: 'a' }), { name: 'UpstreamError', kind: 'unreachable' });
    assert.equal(s.requests.length, 3);
  });

  test('connection reset mid-response: the body fails with an UpstreamError, not a clean end', async () => {
    const s = await serve((_req, res) => {
      res.writeHead(200, { 'content-length': '100000' });
      res.write(Buffer.alloc(1000, 1), () => res.destroy());
    });
    const { client } = clientFor(configFor(s.url));
    const errorsBefore = await counterValue(upstreamErrors, { upstream: s.host, kind: 'unreachable' });
    const res = await client.request({ method: 'GET', path: '/v2/a/blobs/sha256:1', repository: 'a' });
    assert.equal(res.status, 200);
    let received = 0;
    await assert.rejects(
      (async () => {
        for await (const chunk of res.body as AsyncIterable<Buffer>) received += chunk.length;
      })(),
      (err: unknown) => {
        assert.ok(err instanceof UpstreamError, String(err));
        assert.equal(err.kind, 'unreachable');
        assert.match(err.message, new RegExp(`upstream ${s.host} unreachable: .*while reading the body`));
        return true;
      },
    );
    assert.ok(received < 100000);
    assert.equal(await counterValue(upstreamErrors, { upstream: s.host, kind: 'unreachable' }), errorsBefore + 1);
  });

  test('no response in time: kind timeout', async () => {
    const s = await serve(() => {
      // never answers; closed by afterEach
    });
    const { client } = clientFor(configFor(s.url, { timeout: 200, retries: 1 }));
    await assert.rejects(client.request({ method: 'GET', path: '/v2/' }), (err: unknown) => {
      assert.ok(err instanceof UpstreamError);
      assert.equal(err.kind, 'timeout');
      assert.match(err.message, new RegExp(`upstream ${s.host} timed out`));
      return true;
    });
    assert.equal(s.requests.length, 2, 'timeouts are retried');
  });

  test('the caller can abort; that is not an upstream failure and not retried', async () => {
    const s = await serve(() => {});
    const { client, sleeps } = clientFor(configFor(s.url));
    const controller = new AbortController();
    const pending = client.request({ method: 'GET', path: '/v2/', signal: controller.signal });
    while (s.requests.length === 0) await new Promise((r) => setImmediate(r));
    controller.abort();
    await assert.rejects(pending, (err: unknown) => !(err instanceof UpstreamError));
    assert.deepEqual(sleeps, []);
  });

  test('a caller that destroys the body ends the upstream exchange', async () => {
    let closed: () => void = () => {};
    const serverSawClose = new Promise<void>((r) => (closed = r));
    const s = await serve((req, res) => {
      res.writeHead(200, { 'content-length': String(1 << 24) });
      res.write(Buffer.alloc(65536));
      req.socket.on('close', () => closed());
    });
    const { client } = clientFor(configFor(s.url));
    const res = await client.request({ method: 'GET', path: '/v2/a/blobs/sha256:1', repository: 'a' });
    res.body.destroy();
    await serverSawClose;
  });

  describe('redirects', () => {
    test('to another origin: followed without Authorization, and the query reaches it', async () => {
      const storage = await serve((_req, res) => res.writeHead(200, { 'content-type': 'application/octet-stream' }).end('blob bytes'));
      const reg = await tokenRegistry({
        blob: (res) => res.writeHead(307, { location: `${storage.url}/bucket/blob?X-Amz-Signature=sig123` }).end(),
      });
      const { client } = clientFor(configFor(reg.server.url, { username: reg.user, password: reg.pass }));
      const res = await client.request({ method: 'GET', path: '/v2/team/app/blobs/sha256:1', repository: 'team/app' });
      assert.equal(res.status, 200);
      assert.equal(await text(res.body), 'blob bytes');
      assert.equal(storage.requests.length, 1);
      assert.equal(storage.requests[0]?.url, '/bucket/blob?X-Amz-Signature=sig123');
      assert.equal(storage.requests[0]?.headers.authorization, undefined, 'no Authorization to blob storage');
      assert.ok(reg.server.requests.some((r) => r.headers.authorization?.startsWith('Bearer ')), 'the registry itself got the token');
    });

    test('relative and same-origin redirects keep Authorization; 301/302/303/308 all followed', async () => {
      const seen: Array<string | undefined> = [];
      const reg = await tokenRegistry({
        blob: (res, req) => {
          seen.push(req.headers.authorization);
          const hop = Number(/hop=(\d)/.exec(req.url ?? '')?.[1] ?? '0');
          const status = [301, 302, 303, 308][hop];
          if (status) res.writeHead(status, { location: `/v2/team/app/blobs/sha256:1?hop=${hop + 1}` }).end();
          else res.end('arrived');
        },
      });
      const { client } = clientFor(configFor(reg.server.url, { username: reg.user, password: reg.pass }));
      const res = await client.request({ method: 'GET', path: '/v2/team/app/blobs/sha256:1', repository: 'team/app' });
      assert.equal(await text(res.body), 'arrived');
      assert.equal(seen.length, 5);
      assert.ok(seen.every((a) => a === seen[0] && a?.startsWith('Bearer ')));
    });

    test('more than 5 hops: kind redirect', async () => {
      const s = await serve((req, res) => res.writeHead(302, { location: `${req.url}x` }).end());
      const { client } = clientFor(configFor(s.url));
      await assert.rejects(client.request({ method: 'GET', path: '/v2/a/blobs/sha256:1', repository: 'a' }), { name: 'UpstreamError', kind: 'redirect' });
      assert.equal(s.requests.length, 6);
    });

    test('a redirect without Location is returned as is', async () => {
      const s = await serve((_req, res) => res.writeHead(302).end());
      const { client } = clientFor(configFor(s.url));
      const res = await client.request({ method: 'GET', path: '/v2/a/blobs/sha256:1', repository: 'a' });
      assert.equal(res.status, 302);
      await text(res.body);
    });

    test('a failing redirect target names its host, never its signed query', async () => {
      const port = await freePort();
      const s = await serve((_req, res) => res.writeHead(307, { location: `http://127.0.0.1:${port}/b?X-Amz-Signature=topsecret` }).end());
      const { client } = clientFor(configFor(s.url, { retries: 0 }));
      await assert.rejects(client.request({ method: 'GET', path: '/v2/a/blobs/sha256:1', repository: 'a' }), (err: unknown) => {
        assert.ok(err instanceof UpstreamError);
        assert.equal(err.kind, 'unreachable');
        assert.match(err.message, new RegExp(`redirect target 127\\.0\\.0\\.1:${port}`));
        assertNoSecrets(err, ['topsecret']);
        return true;
      });
    });
  });

  describe('bearer tokens', () => {
    test('401 challenge -> token fetched with Basic credentials -> resent once with the token', async () => {
      const reg = await tokenRegistry();
      const { client } = clientFor(configFor(reg.server.url, { username: reg.user, password: reg.pass }));
      const res = await client.request({ method: 'GET', path: '/v2/team/app/manifests/v1', repository: 'team/app' });
      assert.equal(res.status, 200);
      assert.deepEqual(JSON.parse(await text(res.body)), { presented: 'tok-1' });
      const tokenUrl = new URL(reg.tokenRequests[0]?.url ?? '', 'http://x');
      assert.equal(tokenUrl.searchParams.get('service'), 'fake');
      assert.equal(tokenUrl.searchParams.get('scope'), 'repository:team/app:pull');
      // Cached: the next request for the scope goes straight through.
      const before = reg.server.requests.length;
      await text((await client.request({ method: 'GET', path: '/v2/team/app/manifests/v2', repository: 'team/app' })).body);
      assert.equal(reg.server.requests.length, before + 1);
      assert.equal(reg.issued, 1);
    });

    test('concurrent requests share one token fetch', async () => {
      const reg = await tokenRegistry();
      const { client } = clientFor(configFor(reg.server.url, { username: reg.user, password: reg.pass }));
      const responses = await Promise.all(
        Array.from({ length: 6 }, (_, i) => client.request({ method: 'GET', path: `/v2/team/app/manifests/t${i}`, repository: 'team/app' })),
      );
      for (const r of responses) {
        assert.equal(r.status, 200);
        await text(r.body);
      }
      assert.equal(reg.tokenRequests.length, 1);
    });

    test('an expired token is fetched again', async () => {
      const clock = { t: 1_000_000 };
      const reg = await tokenRegistry({ expiresIn: 60 });
      const { client } = clientFor(configFor(reg.server.url, { username: reg.user, password: reg.pass }), { now: () => clock.t });
      const get = async () => JSON.parse(await text((await client.request({ method: 'GET', path: '/v2/team/app/manifests/v1', repository: 'team/app' })).body)) as { presented: string };
      assert.equal((await get()).presented, 'tok-1');
      clock.t += 30_000;
      assert.equal((await get()).presented, 'tok-1');
      clock.t += 60_000;
      assert.equal((await get()).presented, 'tok-2');
      assert.equal(reg.tokenRequests.length, 2);
    });

    test('a cached token the upstream no longer accepts is replaced, and the request resent once', async () => {
      const reg = await tokenRegistry();
      const { client } = clientFor(configFor(reg.server.url, { username: reg.user, password: reg.pass }));
      await text((await client.request({ method: 'GET', path: '/v2/team/app/manifests/v1', repository: 'team/app' })).body);
      reg.revokeAll();
      const res = await client.request({ method: 'GET', path: '/v2/team/app/manifests/v1', repository: 'team/app' });
      assert.deepEqual(JSON.parse(await text(res.body)), { presented: 'tok-2' });
    });

    test('token endpoint 401 for bad credentials: kind auth, credentials in no message', async () => {
      const reg = await tokenRegistry();
      const badPassword = 'wrong-Pa55word';
      const { client } = clientFor(configFor(reg.server.url, { username: reg.user, password: badPassword }));
      const errorsBefore = await counterValue(upstreamErrors, { upstream: reg.server.host, kind: 'auth' });
      await assert.rejects(client.request({ method: 'GET', path: '/v2/team/app/manifests/v1', repository: 'team/app' }), (err: unknown) => {
        assert.ok(err instanceof UpstreamError);
        assert.equal(err.kind, 'auth');
        assert.equal(err.status, 401);
        assert.match(err.message, /token endpoint .*\/token answered 401/);
        assertNoSecrets(err, [badPassword, reg.pass, Buffer.from(`${reg.user}:${badPassword}`).toString('base64')]);
        return true;
      });
      assert.equal(await counterValue(upstreamErrors, { upstream: reg.server.host, kind: 'auth' }), errorsBefore + 1);
      assert.equal(reg.tokenRequests.length, 1, 'auth failures are not retried');
    });

    test('without credentials: anonymous token', async () => {
      const s = await serve((req, res) => {
        if (req.url?.startsWith('/token')) return json(res, req.headers.authorization ? 400 : 200, { access_token: 'anon' });
        if (req.headers.authorization !== 'Bearer anon') {
          return res.writeHead(401, { 'www-authenticate': `Bearer realm="http://${req.headers.host}/token",service="s"` }).end();
        }
        res.end('public');
      });
      const { client } = clientFor(configFor(s.url));
      assert.equal(await text((await client.request({ method: 'GET', path: '/v2/lib/x/manifests/1', repository: 'lib/x' })).body), 'public');
    });
  });

  describe('Basic upstreams', () => {
    test('Basic once challenged, then pre-emptively; a refusal of the credentials is passed through', async () => {
      const s = await serve((req, res) => {
        if (req.headers.authorization === basic('u', 'p@ss')) return res.end('in');
        res.writeHead(401, { 'www-authenticate': 'Basic realm="reg"' }).end('no');
      });
      const { client } = clientFor(configFor(s.url, { username: 'u', password: 'p@ss' }));
      assert.equal(await text((await client.request({ method: 'GET', path: '/v2/' })).body), 'in');
      assert.equal(s.requests.length, 2);
      assert.equal(await text((await client.request({ method: 'GET', path: '/v2/a/manifests/1', repository: 'a' })).body), 'in');
      assert.equal(s.requests.length, 3, 'sent pre-emptively');

      const { client: wrong } = clientFor(configFor(s.url, { username: 'u', password: 'nope' }));
      const refused = await wrong.request({ method: 'GET', path: '/v2/' });
      assert.equal(refused.status, 401);
      assert.equal(await text(refused.body), 'no');
    });

    test('no credentials: the 401 is returned as is', async () => {
      const s = await serve((_req, res) => res.writeHead(401, { 'www-authenticate': 'Basic realm="reg"' }).end('{"errors":[]}'));
      const { client } = clientFor(configFor(s.url));
      const res = await client.request({ method: 'GET', path: '/v2/' });
      assert.equal(res.status, 401);
      assert.equal(res.headers['www-authenticate'], 'Basic realm="reg"');
      assert.equal(await text(res.body), '{"errors":[]}');
      assert.equal(s.requests.length, 1);
    });
  });

  test('createUpstreamClients builds one client per upstream, by name', async () => {
    const map = createUpstreamClients([configFor('http://127.0.0.1:1'), configFor('https://registry.example', { insecure: true })], silentLogger());
    assert.deepEqual([...map.keys()], ['127.0.0.1:1', 'registry.example']);
    clients.push(...map.values());
  });
});

describe('UpstreamClient against a real docker-registry (htpasswd Basic)', { skip: skipUnlessTools('docker-registry', 'htpasswd') }, () => {
  let registry: TestRegistry;
  const password = 'Real-Registry-Pa55';

  before(async () => {
    registry = await startRegistry({ auth: 'basic', credentials: { username: 'tester', password } });
  });

  after(async () => {
    await registry?.stop();
  });

  async function get(client: UpstreamClient, path: string, repository?: string): Promise<UpstreamResponse & { text: string }> {
    const res = await client.request({ method: 'GET', path, ...(repository ? { repository } : {}) });
    return { ...res, text: await text(res.body) };
  }

  test('GET /v2/ works with the right credentials', async () => {
    const { client } = clientFor(configFor(registry.url, { username: 'tester', password }));
    const ping = await get(client, '/v2/');
    assert.equal(ping.status, 200);
    assert.equal(ping.headers['docker-distribution-api-version'], 'registry/2.0');
    const missing = await get(client, '/v2/no/such/manifests/v1', 'no/such');
    assert.equal(missing.status, 404, missing.text);
    assert.match(missing.text, /NAME_UNKNOWN|MANIFEST_UNKNOWN/);
  });

  test('wrong credentials: the 401 is passed through, and no error or body carries them', async () => {
    const wrongPassword = 'Wrong-Pa55-word';
    const { client } = clientFor(configFor(registry.url, { username: 'tester', password: wrongPassword }));
    const res = await get(client, '/v2/');
    assert.equal(res.status, 401);
    assert.match(String(res.headers['www-authenticate']), /^Basic /);
    for (const s of [wrongPassword, password, Buffer.from(`tester:${wrongPassword}`).toString('base64')]) {
      assert.ok(!res.text.includes(s));
    }
  });

  test('no credentials: 401 passed through', async () => {
    const { client } = clientFor(configFor(registry.url));
    assert.equal((await get(client, '/v2/')).status, 401);
  });
});
