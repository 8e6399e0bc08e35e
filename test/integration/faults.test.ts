// Faults: the upstream goes away, answers 5xx/429, serves corrupt or truncated bytes; many clients ask for the
// same cold content at once. Real docker-registry where it can produce the situation, an in-process fake where
// only a fake can (wrong bytes, cut connections, injected statuses).
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { hexOf, sha256 } from '../../src/oci/digest.js';
import { OCI_INDEX, OCI_MANIFEST } from '../../src/oci/mediatypes.js';
import { startFakeUpstream, type FakeUpstream } from '../helpers/fake-upstream.js';
import { assertSkopeoGetsDigest, buildImage, pushImage, skopeoCopyToDir, skopeoInspectDigest, type BuiltImage } from '../helpers/images.js';
import { skipUnlessTools } from '../helpers/proc.js';
import { startTestProxy, upstreamOf, type TestProxy } from '../helpers/proxy.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';

const ACCEPT = [OCI_INDEX, OCI_MANIFEST].join(', ');

function storedBlob(proxy: TestProxy, digest: string): string {
  const hex = hexOf(digest);
  return join(proxy.storagePath, 'blobs', 'sha256', hex.slice(0, 2), hex);
}

interface ClientOutcome {
  status: number;
  /** The body arrived in full (as long as declared) without a transport error. */
  complete: boolean;
  bytes: Buffer;
  error?: string;
}

/** What a client experiences: status, and whether the body arrived whole. */
async function clientGet(url: string, headers: Record<string, string> = {}): Promise<ClientOutcome> {
  let res: Response;
  try {
    res = await fetch(url, { headers });
  } catch (err) {
    // The connection was cut before the response head: status 0.
    return { status: 0, complete: false, bytes: Buffer.alloc(0), error: String((err as Error).cause ?? err) };
  }
  try {
    const bytes = Buffer.from(await res.arrayBuffer());
    const declared = res.headers.get('content-length');
    return { status: res.status, complete: declared === null || Number(declared) === bytes.length, bytes };
  } catch (err) {
    return { status: res.status, complete: false, bytes: Buffer.alloc(0), error: (err as Error).message };
  }
}

describe('upstream down after warm-up', { skip: skipUnlessTools('docker-registry', 'skopeo') }, () => {
  let registry: TestRegistry;
  let proxy: TestProxy;
  let image: BuiltImage;
  let uncached: BuiltImage;

  before(async () => {
    registry = await startRegistry();
    image = await buildImage({ tag: 'v1', index: true });
    uncached = await buildImage({ tag: 'v1' });
    await pushImage(image, registry, 'down/app');
    await pushImage(uncached, registry, 'down/never-pulled');
    // tagTtl 0: every tag request revalidates upstream, so the outage is really hit.
    proxy = await startTestProxy({ upstreams: [upstreamOf(registry, { tagTtl: 0 })] });
  });

  after(async () => {
    await proxy?.stop();
    await registry?.stop();
    await image?.remove();
    await uncached?.remove();
  });

  test('cached tags and digests still pull; uncached content gets a clear error', async () => {
    const warm = await skopeoCopyToDir(`${proxy.host}/down/app:v1`);
    assert.equal(warm.digest, image.digest);
    await warm.remove();

    await registry.kill();

    for (const ref of [`${proxy.host}/down/app:v1`, `${proxy.host}/down/app@${image.digest}`]) {
      await assertSkopeoGetsDigest(ref, image.digest, { inspect: false });
    }
    const res = await fetch(`${proxy.url}/v2/down/never-pulled/manifests/v1`, { headers: { accept: ACCEPT } });
    const text = await res.text();
    assert.ok(res.status >= 500 && res.status < 600, `uncached tag with upstream down: ${res.status} ${text}`);
    const body = JSON.parse(text) as { errors: Array<{ code: string; message: string }> };
    assert.ok(body.errors[0]?.message.includes(registry.host) || JSON.stringify(body).includes(registry.host), `names the upstream: ${text}`);
  });
});

describe('upstream answering 5xx and 429 after warm-up', () => {
  let fake: FakeUpstream;
  let proxy: TestProxy;
  let image: BuiltImage;

  before(async () => {
    image = await buildImage({ tag: 'v1' });
    fake = await startFakeUpstream(image, 'flaky/app');
    proxy = await startTestProxy({ upstreams: [{ name: fake.host, url: fake.url, tagTtl: 0, retries: 0, timeout: '5s' }] });
  });

  after(async () => {
    await proxy?.stop();
    await fake?.close();
    await image?.remove();
  });

  test('cached tag and blobs keep being served', async () => {
    const warm = await clientGet(`${proxy.url}/v2/flaky/app/manifests/v1`, { accept: ACCEPT });
    assert.equal(warm.status, 200);
    const layer = image.blobs.at(-1);
    assert.ok(layer);
    assert.equal((await clientGet(`${proxy.url}/v2/flaky/app/blobs/${layer.digest}`)).status, 200);

    for (const status of [500, 503, 429]) {
      fake.mode = { kind: 'status', status };
      const tag = await clientGet(`${proxy.url}/v2/flaky/app/manifests/v1`, { accept: ACCEPT });
      assert.equal(tag.status, 200, `tag with upstream answering ${status}`);
      assert.equal(sha256(tag.bytes), image.digest);
      const blob = await clientGet(`${proxy.url}/v2/flaky/app/blobs/${layer.digest}`);
      assert.equal(blob.status, 200, `blob with upstream answering ${status}`);
      assert.equal(sha256(blob.bytes), layer.digest);
    }
    fake.mode = { kind: 'ok' };
  });

  test('uncached content while upstream answers 503: an OCI error, not a hang or a 200', async () => {
    fake.mode = { kind: 'status', status: 503 };
    try {
      const config = image.manifests[0]?.config.digest ?? '';
      for (const path of [`/v2/flaky/app/blobs/${config}`, '/v2/flaky/app/manifests/never-pulled']) {
        const res = await clientGet(`${proxy.url}${path}`, { accept: ACCEPT });
        assert.ok(res.status >= 500, `${path}: status ${res.status}`);
        assert.ok(Array.isArray((JSON.parse(res.bytes.toString()) as { errors?: unknown }).errors), `${path}: OCI error JSON`);
      }
    } finally {
      fake.mode = { kind: 'ok' };
    }
  });
});

describe('upstream serving corrupt or truncated bytes', () => {
  let fake: FakeUpstream;
  let proxy: TestProxy;
  let image: BuiltImage;

  before(async () => {
    image = await buildImage({ tag: 'v1', bigLayerBytes: 256 * 1024 });
    fake = await startFakeUpstream(image, 'evil/app');
    proxy = await startTestProxy({ upstreams: [{ name: fake.host, url: fake.url, retries: 0, timeout: '5s' }] });
  });

  after(async () => {
    await proxy?.stop();
    await fake?.close();
    await image?.remove();
  });

  for (const kind of ['corrupt', 'truncate'] as const) {
    test(`${kind} blob: the client's transfer fails and nothing is cached`, async () => {
      // A different blob per fault kind, since the previous test ends with its blob verified and cached.
      const layer = kind === 'corrupt' ? image.blobs.find((b) => b.size >= 256 * 1024) : image.manifests[0]?.layers[0];
      assert.ok(layer);
      const path = `/v2/evil/app/blobs/${layer.digest}`;
      const before = fake.count('GET', path);
      fake.mode = { kind };
      const first = await clientGet(`${proxy.url}${path}`);
      assert.ok(
        first.status !== 200 || !first.complete,
        `${kind}: the client must not see a clean 200 (got ${first.status}, ${first.bytes.length} bytes, digest ${sha256(first.bytes)})`,
      );
      assert.equal(existsSync(storedBlob(proxy, layer.digest)), false, 'not in the store');
      assert.ok(fake.count('GET', path) > before);

      // Still bad: asked upstream again (nothing cached), still refused.
      const again = fake.count('GET', path);
      const second = await clientGet(`${proxy.url}${path}`);
      assert.ok(second.status !== 200 || !second.complete);
      assert.ok(fake.count('GET', path) > again, 'a second request is again an upstream fetch');

      // Upstream healthy again: the proxy fetches and serves the right bytes.
      fake.mode = { kind: 'ok' };
      const good = await clientGet(`${proxy.url}${path}`);
      assert.equal(good.status, 200);
      assert.equal(sha256(good.bytes), layer.digest);
      assert.equal(existsSync(storedBlob(proxy, layer.digest)), true, 'verified content is stored');
    });
  }

  test('corrupt manifest by digest: an error, nothing cached', async () => {
    const m = image.manifests[0];
    assert.ok(m);
    const path = `/v2/evil/app/manifests/${m.digest}`;
    fake.mode = { kind: 'corrupt' };
    try {
      const res = await clientGet(`${proxy.url}${path}`, { accept: ACCEPT });
      assert.ok(res.status >= 400, `status ${res.status}`);
      assert.ok(Array.isArray((JSON.parse(res.bytes.toString()) as { errors?: unknown }).errors), 'OCI error JSON');
      assert.equal(existsSync(storedBlob(proxy, m.digest)), false);
      const count = fake.count('GET', path);
      await clientGet(`${proxy.url}${path}`, { accept: ACCEPT });
      assert.ok(fake.count('GET', path) > count, 'asked upstream again');
    } finally {
      fake.mode = { kind: 'ok' };
    }
    const ok = await clientGet(`${proxy.url}${path}`, { accept: ACCEPT });
    assert.equal(ok.status, 200);
    assert.equal(sha256(ok.bytes), m.digest);
  });
});

describe('thundering herd: 20 parallel cold requests', { skip: skipUnlessTools('docker-registry', 'skopeo') }, () => {
  let registry: TestRegistry;
  let proxy: TestProxy;
  let image: BuiltImage;

  before(async () => {
    registry = await startRegistry();
    image = await buildImage({ tag: 'v1', bigLayerBytes: 8 * 1024 * 1024 });
    await pushImage(image, registry, 'herd/app');
    proxy = await startTestProxy({ upstreams: [upstreamOf(registry)] });
  });

  after(async () => {
    await proxy?.stop();
    await registry?.stop();
    await image?.remove();
  });

  test('one blob: every client gets it, the upstream sees one GET', async () => {
    const big = image.blobs.find((b) => b.size >= 8 * 1024 * 1024);
    assert.ok(big);
    const path = `/v2/herd/app/blobs/${big.digest}`;
    const results = await Promise.all(Array.from({ length: 20 }, () => clientGet(`${proxy.url}${path}`)));
    for (const r of results) {
      assert.equal(r.status, 200, r.error);
      assert.equal(sha256(r.bytes), big.digest);
    }
    assert.equal(await registry.countRequests('GET', path), 1);
  });

  test('one manifest by tag and by digest: one upstream GET each', async () => {
    const byTag = await Promise.all(Array.from({ length: 20 }, () => clientGet(`${proxy.url}/v2/herd/app/manifests/v1`, { accept: ACCEPT })));
    for (const r of byTag) assert.equal(sha256(r.bytes), image.digest);
    assert.equal(await registry.countRequests('GET', '/v2/herd/app/manifests/v1'), 1);

    const config = image.manifests[0]?.config;
    assert.ok(config);
    const blobs = await Promise.all(Array.from({ length: 20 }, () => clientGet(`${proxy.url}/v2/herd/app/blobs/${config.digest}`)));
    for (const r of blobs) assert.equal(sha256(r.bytes), config.digest);
    assert.equal(await registry.countRequests('GET', `/v2/herd/app/blobs/${config.digest}`), 1);
  });

  test('the herd leaves the cache complete: skopeo pulls it with the upstream gone', async () => {
    await registry.kill();
    assert.equal(await skopeoInspectDigest(`${proxy.host}/herd/app@${image.digest}`), image.digest);
  });
});
