// Bad input over plain HTTP against the real server and a real upstream: malformed names, references and
// digests, `..` paths, unknown ns values, push attempts, oversized manifests -> the right OCI error, and
// nothing malformed ever reaches the upstream.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { buildImage, pushImage, skopeo, type BuiltImage } from '../helpers/images.js';
import { assertOciError, rawRequest } from '../helpers/http.js';
import { skipUnlessTools } from '../helpers/proc.js';
import { startTestProxy, upstreamOf, type TestProxy } from '../helpers/proxy.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';

const UNKNOWN_DIGEST = `sha256:${'0'.repeat(64)}`;

describe('bad input through the real server', { skip: skipUnlessTools('docker-registry', 'skopeo') }, () => {
  let registry: TestRegistry;
  let proxy: TestProxy;
  let tiny: TestProxy;
  let image: BuiltImage;
  let wide: BuiltImage;
  let setupRequests = 0;

  before(async () => {
    registry = await startRegistry();
    image = await buildImage({ tag: 'v1' });
    // An index with many platforms: a manifest bigger than the small proxy's limit.
    const arches = ['amd64', 'arm64', '386', 'ppc64le', 's390x', 'riscv64', 'mips64le', 'loong64'];
    wide = await buildImage({ tag: 'v1', platforms: arches.map((architecture) => ({ os: 'linux', architecture })) });
    await pushImage(image, registry, 'good/app');
    await pushImage(wide, registry, 'good/wide');
    proxy = await startTestProxy({ upstreams: [upstreamOf(registry)] });
    tiny = await startTestProxy({ upstreams: [upstreamOf(registry)], limits: { maxManifestBytes: 1024 } });
    setupRequests = (await registry.accessLog()).length;
  });

  after(async () => {
    await proxy?.stop();
    await tiny?.stop();
    await registry?.stop();
    await image?.remove();
    await wide?.remove();
  });

  const cases: Array<[method: string, path: string, status: number, code: string | string[]]> = [
    ['GET', '/v2/Upper/app/manifests/v1', 400, 'NAME_INVALID'],
    ['GET', '/v2/a..b/manifests/v1', 400, 'NAME_INVALID'],
    ['GET', '/v2/-dash/manifests/v1', 400, 'NAME_INVALID'],
    ['GET', '/v2/good/../app/manifests/v1', 400, 'NAME_INVALID'],
    ['GET', '/v2/good/app/../../../etc/manifests/v1', 400, 'NAME_INVALID'],
    ['GET', '/v2/%2e%2e/good/app/manifests/v1', 400, 'NAME_INVALID'],
    ['GET', '/v2/good%2f..%2fapp/manifests/v1', 400, 'NAME_INVALID'],
    ['GET', `/v2/${'a'.repeat(300)}/manifests/v1`, 400, 'NAME_INVALID'],
    ['GET', `/v2/good//app/blobs/${UNKNOWN_DIGEST}`, 400, 'NAME_INVALID'],
    ['GET', '/v2/good/app/manifests/bad!tag', 400, 'MANIFEST_INVALID'],
    ['GET', '/v2/good/app/manifests/..', 400, 'MANIFEST_INVALID'],
    ['GET', `/v2/good/app/manifests/${'t'.repeat(129)}`, 400, 'MANIFEST_INVALID'],
    ['GET', '/v2/good/app/manifests/sha256:totallywrong', 400, 'DIGEST_INVALID'],
    ['GET', `/v2/good/app/manifests/sha256:${'A'.repeat(64)}`, 400, 'DIGEST_INVALID'],
    ['GET', '/v2/good/app/blobs/latest', 400, 'DIGEST_INVALID'],
    ['GET', '/v2/good/app/blobs/sha256:abc', 400, 'DIGEST_INVALID'],
    ['GET', '/v2/good/app/blobs/md5:d41d8cd98f00b204e9800998ecf8427e', 400, 'DIGEST_INVALID'],
    ['HEAD', '/v2/good/app/blobs/sha256:..', 400, 'DIGEST_INVALID'],
    ['GET', '/v2/good/app/manifests/nope', 404, 'MANIFEST_UNKNOWN'],
    ['GET', `/v2/good/app/manifests/${UNKNOWN_DIGEST}`, 404, 'MANIFEST_UNKNOWN'],
    ['GET', `/v2/good/app/blobs/${UNKNOWN_DIGEST}`, 404, 'BLOB_UNKNOWN'],
    ['GET', '/v2/no/such/repo/manifests/v1', 404, ['MANIFEST_UNKNOWN', 'NAME_UNKNOWN']],
    ['GET', '/v2/good/app/manifests/v1?ns=evil.example', 404, 'NAME_UNKNOWN'],
    ['GET', `/v2/good/app/blobs/${UNKNOWN_DIGEST}?ns=169.254.169.254`, 404, 'NAME_UNKNOWN'],
    ['POST', '/v2/good/app/blobs/uploads/', 405, 'UNSUPPORTED'],
    ['POST', `/v2/good/app/blobs/uploads/?mount=${UNKNOWN_DIGEST}&from=other/app`, 405, 'UNSUPPORTED'],
    ['PATCH', '/v2/good/app/blobs/uploads/0b8e6c1e-1111-4222-8333-944445555666', 405, 'UNSUPPORTED'],
    ['PUT', `/v2/good/app/blobs/uploads/0b8e6c1e-1111-4222-8333-944445555666?digest=${UNKNOWN_DIGEST}`, 405, 'UNSUPPORTED'],
    ['PUT', '/v2/good/app/manifests/v1', 405, 'UNSUPPORTED'],
    ['DELETE', '/v2/good/app/manifests/v1', 405, 'UNSUPPORTED'],
    ['DELETE', `/v2/good/app/blobs/${UNKNOWN_DIGEST}`, 405, 'UNSUPPORTED'],
  ];

  test('each malformed or refused request gets its OCI error code and status', async () => {
    const failures: string[] = [];
    for (const [method, path, status, code] of cases) {
      const body = method === 'PUT' || method === 'PATCH' ? Buffer.from('{"schemaVersion":2}') : undefined;
      const res = await rawRequest(proxy.url, method, path, body ? { 'content-type': 'application/json' } : {}, body);
      if (method === 'HEAD') {
        // No body on HEAD: the status is all a client gets.
        if (res.status !== status) failures.push(`${method} ${path}: status ${res.status}, want ${status}`);
        continue;
      }
      try {
        assertOciError(res, status, code, `${method} ${path.slice(0, 80)}`);
      } catch (err) {
        failures.push((err as Error).message.split('\n')[0] as string);
      }
    }
    assert.deepEqual(failures, []);
  });

  test('a real client push through boxproxy fails', async () => {
    const res = await skopeo(['copy', '--quiet', '--dest-tls-verify=false', '--dest-no-creds', image.source, `docker://${proxy.host}/pushed/app:v1`], {
      allowFailure: true,
    });
    assert.notEqual(res.code, 0, 'push must fail');
  });

  test('nothing malformed reached the upstream, and nothing but reads', async () => {
    const sinceSetup = (await registry.accessLog()).slice(setupRequests);
    const bad = sinceSetup.filter((e) => /\.\.|%2e|Upper|evil|totallywrong|bad!tag|\/-dash|\/\//i.test(e.target));
    assert.deepEqual(bad.map((e) => `${e.method} ${e.target}`), []);
    const writes = sinceSetup.filter((e) => e.method !== 'GET' && e.method !== 'HEAD');
    assert.deepEqual(writes.map((e) => `${e.method} ${e.target}`), []);
  });

  test('an oversized manifest is refused with an OCI error and not cached', async () => {
    const res = await rawRequest(tiny.url, 'GET', '/v2/good/wide/manifests/v1', { accept: wide.mediaType });
    const body = assertOciError(res, res.status, 'MANIFEST_INVALID', 'manifest above limits.maxManifestBytes');
    assert.ok(res.status >= 400, `status ${res.status}`);
    assert.ok(body.errors[0]?.message.length);
    const again = await rawRequest(tiny.url, 'GET', `/v2/good/wide/manifests/${wide.digest}`, { accept: wide.mediaType });
    assertOciError(again, res.status, 'MANIFEST_INVALID', 'by digest as well');
    // The normal proxy serves it: the limit, not the content, refused it.
    const ok = await rawRequest(proxy.url, 'GET', '/v2/good/wide/manifests/v1', { accept: wide.mediaType });
    assert.equal(ok.status, 200);
  });

  test('/v2/, /healthz, /readyz, /metrics answer', async () => {
    const base = await fetch(`${proxy.url}/v2/`);
    assert.equal(base.status, 200);
    assert.equal(base.headers.get('docker-distribution-api-version'), 'registry/2.0');
    await base.arrayBuffer();
    for (const path of ['/healthz', '/readyz']) {
      const res = await fetch(`${proxy.url}${path}`);
      await res.arrayBuffer();
      assert.equal(res.status, 200, path);
    }
    const metrics = await (await fetch(`${proxy.url}/metrics`)).text();
    assert.match(metrics, /boxproxy_http_requests_total\{[^}]*route="manifest"/);
  });
});
