import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import request from 'supertest';
import { createApp } from '../../src/http/app.js';
import { parseV2Path } from '../../src/http/v2.js';
import { silentLogger } from '../../src/ops/log.js';
import { PullThroughRegistry } from '../../src/registry/registry.js';
import { UpstreamRouter, type Upstream } from '../../src/registry/upstreams.js';
import { BlobStore } from '../../src/store/blobs.js';
import { RecordStore } from '../../src/store/records.js';
import type { UpstreamRequest } from '../../src/upstream/types.js';
import { UpstreamClient } from '../../src/upstream/client.js';
import { upstreamSchema } from '../../src/config/schema.js';
import { freePort } from '../helpers/proc.js';
import { sha256 } from '../../src/oci/digest.js';

test('paths are split from the end: names keep their slashes', () => {
  assert.deepEqual(parseV2Path('/v2/'), { id: 'base' });
  assert.deepEqual(parseV2Path('/v2/a/b/manifests/latest'), { id: 'manifest', name: 'a/b', reference: 'latest' });
  assert.deepEqual(parseV2Path('/v2/ghcr.io/o/app/blobs/sha256:x'), { id: 'blob', name: 'ghcr.io/o/app', digest: 'sha256:x' });
  assert.deepEqual(parseV2Path('/v2/a/tags/list'), { id: 'tags', name: 'a' });
  assert.deepEqual(parseV2Path('/v2/a/referrers/sha256:x'), { id: 'referrers', name: 'a', digest: 'sha256:x' });
  assert.deepEqual(parseV2Path('/v2/a/blobs/uploads/'), { id: 'upload', name: 'a' });
  assert.deepEqual(parseV2Path('/v2/a/blobs/uploads/123'), { id: 'upload-session', name: 'a' });
  assert.deepEqual(parseV2Path('/v2/manifests/manifests/x'), { id: 'manifest', name: 'manifests', reference: 'x' });
  assert.deepEqual(parseV2Path('/v2/a/manifests/sha256%3Aab'), { id: 'manifest', name: 'a', reference: 'sha256:ab' });
  assert.deepEqual(parseV2Path('/v2/a%2Fb/blobs/sha256%3Aab'), { id: 'blob', name: 'a%2Fb', digest: 'sha256:ab' });
  assert.equal(parseV2Path('/v2/a/x/y'), undefined);
  assert.equal(parseV2Path('/v3/a/manifests/x'), undefined);
});

/** Bad input must be refused before anything reaches an upstream. */
function appWithoutUpstream() {
  const calls: UpstreamRequest[] = [];
  const upstream: Upstream = {
    name: 'up.example',
    request: async (req) => {
      calls.push(req);
      throw new Error('bad input reached the upstream');
    },
  };
  const root = mkdtempSync(join(tmpdir(), 'boxproxy-http-'));
  const logger = silentLogger();
  const store = new BlobStore(root, { logger });
  const router = new UpstreamRouter([{ upstream, tagTtl: 1000, dockerHub: false }], 'up.example');
  const registry = new PullThroughRegistry(router, store, new RecordStore(root), { maxManifestBytes: 1 << 20, logger });
  return { app: createApp({ registry, logger }), calls, store };
}

test('GET /v2/ answers 200 with the API version header', async () => {
  const { app } = appWithoutUpstream();
  const res = await request(app).get('/v2/').expect(200);
  assert.equal(res.headers['docker-distribution-api-version'], 'registry/2.0');
});

test('malformed names, references, digests and Accept headers get the right OCI error, upstream untouched', async () => {
  const { app, calls } = appWithoutUpstream();
  const digest = sha256('x');
  const cases: Array<{ method?: 'get' | 'head'; path: string; status: number; code: string; headers?: Record<string, string> }> = [
    { path: '/v2/UPPER/manifests/latest', status: 400, code: 'NAME_INVALID' },
    { path: '/v2/../etc/passwd/manifests/latest', status: 400, code: 'NAME_INVALID' },
    { path: '/v2/a/../../b/blobs/' + digest, status: 400, code: 'NAME_INVALID' },
    { path: '/v2/a//b/manifests/latest', status: 400, code: 'NAME_INVALID' },
    { path: '/v2/a%2fb/manifests/latest', status: 400, code: 'NAME_INVALID' },
    { path: `/v2/${'a'.repeat(300)}/manifests/latest`, status: 400, code: 'NAME_INVALID' },
    { path: '/v2/app/manifests/sha256:totallywrong', status: 400, code: 'DIGEST_INVALID' },
    { path: '/v2/app/manifests/-bad', status: 400, code: 'MANIFEST_INVALID' },
    { path: '/v2/app/manifests/' + 'a'.repeat(129), status: 400, code: 'MANIFEST_INVALID' },
    { path: '/v2/app/blobs/sha256:abc', status: 400, code: 'DIGEST_INVALID' },
    { path: '/v2/app/blobs/latest', status: 400, code: 'DIGEST_INVALID' },
    { method: 'head', path: '/v2/app/blobs/md5:abc', status: 400, code: 'DIGEST_INVALID' },
    { path: '/v2/app/referrers/nope', status: 400, code: 'DIGEST_INVALID' },
    { path: '/v2/app/manifests/latest', status: 400, code: 'UNSUPPORTED', headers: { accept: 'not a media type' } },
    { path: '/v2/app/tags/list?n=-1', status: 400, code: 'UNSUPPORTED' },
    { path: '/v2/app/manifests/latest?ns=evil.example', status: 404, code: 'NAME_UNKNOWN' },
    { path: '/v2/app/nothing/here', status: 404, code: 'UNSUPPORTED' },
  ];
  for (const c of cases) {
    const res = await request(app)[c.method ?? 'get'](c.path).set(c.headers ?? {});
    assert.equal(res.status, c.status, `${c.path}: ${res.status} ${res.text}`);
    if (c.method !== 'head') assert.equal(res.body.errors?.[0]?.code, c.code, c.path);
  }
  assert.equal(calls.length, 0);
});

test('push, delete, uploads and catalog answer 405 UNSUPPORTED without reading the body', async () => {
  const { app, calls } = appWithoutUpstream();
  const digest = sha256('x');
  const big = Buffer.alloc(8 << 20, 1); // an oversized manifest push is refused all the same
  const reqs = [
    request(app).put('/v2/app/manifests/latest').set('content-type', 'application/vnd.oci.image.manifest.v1+json').send(big),
    request(app).delete('/v2/app/manifests/' + digest),
    request(app).delete('/v2/app/blobs/' + digest),
    request(app).post('/v2/app/blobs/uploads/'),
    request(app).patch('/v2/app/blobs/uploads/abc'),
    request(app).put('/v2/app/blobs/uploads/abc?digest=' + digest),
    request(app).get('/v2/_catalog'),
  ];
  for (const r of reqs) {
    const res = await r;
    assert.equal(res.status, 405, res.text);
    assert.equal(res.body.errors[0].code, 'UNSUPPORTED');
  }
  assert.equal(calls.length, 0);
});

test('an unreachable upstream gives an OCI error naming the failure', async () => {
  // The real client against a port nothing listens on.
  const port = await freePort();
  const name = `127.0.0.1:${port}`;
  const upstream = new UpstreamClient(upstreamSchema.parse({ name, url: `http://${name}`, retries: 0 }), silentLogger());
  const root = mkdtempSync(join(tmpdir(), 'boxproxy-http-'));
  const logger = silentLogger();
  const router = new UpstreamRouter([{ upstream, tagTtl: 1000, dockerHub: false }], name);
  const registry = new PullThroughRegistry(router, new BlobStore(root, { logger }), new RecordStore(root), { maxManifestBytes: 1 << 20, logger });
  const res = await request(createApp({ registry, logger })).get('/v2/app/manifests/latest').expect(502);
  assert.equal(res.body.errors[0].code, 'UPSTREAM_UNAVAILABLE');
  assert.match(res.body.errors[0].message, new RegExp(`upstream ${name} unreachable: ECONNREFUSED`));
  await upstream.close();
});

test('health, readiness and metrics', async () => {
  const { app } = appWithoutUpstream();
  await request(app).get('/healthz').expect(200);
  await request(app).get('/readyz').expect(200);
  await request(app).get('/v2/').expect(200);
  const m = await request(app).get('/metrics').expect(200);
  assert.match(m.text, /boxproxy_http_requests_total\{route="base",method="GET",status="200"\}/);
});
