// containerd pulls through boxproxy configured as a hosts.toml mirror. containerd sends `?ns=<registry-host>`;
// the registry host's own `server` is a dead address and boxproxy's default upstream is a decoy, so a pull can
// only succeed when boxproxy routes on `ns`.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startContainerd, type TestContainerd } from '../helpers/containerd.js';
import { buildImage, hostPlatform, pushImage, type BuiltImage } from '../helpers/images.js';
import { freePort, skipUnlessTools } from '../helpers/proc.js';
import { metricValue, startTestProxy, upstreamOf, type TestProxy } from '../helpers/proxy.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';

const REGISTRY_HOST = 'upstream.test:5000';

describe('containerd (ctr) through a hosts.toml mirror', { skip: skipUnlessTools('docker-registry', 'skopeo', 'containerd', 'ctr') }, () => {
  let registry: TestRegistry;
  let decoy: TestRegistry;
  let proxy: TestProxy;
  let containerd: TestContainerd;
  let single: BuiltImage;
  let multi: BuiltImage;

  before(async () => {
    [registry, decoy, containerd] = await Promise.all([startRegistry(), startRegistry(), startContainerd()]);
    single = await buildImage({ tag: 'v1', format: 'docker' });
    multi = await buildImage({ tag: 'v1', platforms: [hostPlatform(), { os: 'linux', architecture: 's390x' }] });
    await pushImage(single, registry, 'ctr/single');
    await pushImage(multi, registry, 'ctr/multi');
    proxy = await startTestProxy({
      upstreams: [upstreamOf(decoy, { name: 'decoy.test' }), upstreamOf(registry, { name: REGISTRY_HOST })],
      defaultUpstream: 'decoy.test',
    });
    const dead = `http://127.0.0.1:${await freePort()}`;
    await containerd.setMirror({ registryHost: REGISTRY_HOST, server: dead, mirrors: [proxy.url] });
  });

  after(async () => {
    await containerd?.stop();
    await proxy?.stop();
    await registry?.stop();
    await decoy?.stop();
    await single?.remove();
    await multi?.remove();
  });

  test('ctr pulls and unpacks a single-platform image; boxproxy routed on ns', async () => {
    const viaNsBefore = await metricValue(proxy.url, 'boxproxy_upstream_requests_total', { upstream: REGISTRY_HOST });
    const ref = `${REGISTRY_HOST}/ctr/single:v1`;
    await containerd.pull(ref);
    const pulled = await containerd.image(ref);
    assert.equal(pulled?.digest, single.digest);
    assert.ok((await metricValue(proxy.url, 'boxproxy_upstream_requests_total', { upstream: REGISTRY_HOST })) > viaNsBefore, 'requests went to the ns upstream');
    assert.ok(existsSync(join(proxy.storagePath, 'repos', REGISTRY_HOST, 'ctr', 'single')), 'cached under the ns upstream');
    assert.equal((await decoy.accessLog()).filter((e) => e.path.startsWith('/v2/ctr/')).length, 0, 'the default upstream was never asked');
  });

  test('ctr pulls this platform out of a multi-platform index', async () => {
    const ref = `${REGISTRY_HOST}/ctr/multi:v1`;
    await containerd.pull(ref);
    assert.equal((await containerd.image(ref))?.digest, multi.digest);
    const mine = multi.manifests.find((m) => m.platform.architecture === hostPlatform().architecture);
    const other = multi.manifests.find((m) => m.platform.architecture === 's390x');
    assert.ok(mine && other);
    const log = await registry.accessLog();
    const layerGets = (d: string) => log.filter((e) => e.method === 'GET' && e.path === `/v2/ctr/multi/blobs/${d}`).length;
    assert.equal(layerGets(mine.layers[0]?.digest ?? ''), 1, 'this platform\'s layer came through boxproxy once');
    assert.equal(layerGets(other.layers[0]?.digest ?? ''), 0, 'the other platform\'s layer was never fetched');
  });

  test('a second containerd pull of cached content sends nothing upstream', async () => {
    await containerd.ctr(['images', 'rm', `${REGISTRY_HOST}/ctr/single:v1`]);
    await containerd.ctr(['content', 'rm', single.digest, ...single.blobs.map((b) => b.digest)], { allowFailure: true });
    const before = (await registry.accessLog()).length;
    await containerd.pull(`${REGISTRY_HOST}/ctr/single:v1`);
    const fresh = (await registry.accessLog()).slice(before).filter((e) => e.method === 'GET');
    assert.deepEqual(fresh.map((e) => e.target), []);
  });
});
