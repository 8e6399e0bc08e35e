// distribution's registry in proxy mode, with boxproxy as its remoteurl: a real registry client of our server.
// skopeo pulls through the chain skopeo -> docker-registry (proxy) -> boxproxy -> docker-registry (upstream).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { assertSkopeoGetsDigest, buildImage, pushImage, type BuiltImage } from '../helpers/images.js';
import { skipUnlessTools } from '../helpers/proc.js';
import { startTestProxy, upstreamOf, type TestProxy } from '../helpers/proxy.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';

describe('docker-registry in proxy mode pulling from boxproxy', { skip: skipUnlessTools('docker-registry', 'skopeo') }, () => {
  let upstream: TestRegistry;
  let proxy: TestProxy;
  let chain: TestRegistry;
  const images: Array<{ repo: string; image: BuiltImage }> = [];

  before(async () => {
    upstream = await startRegistry();
    for (const [repo, format, platforms] of [
      ['chain/oci', 'oci', undefined],
      ['chain/docker-list', 'docker', [{ os: 'linux', architecture: 'amd64' }, { os: 'linux', architecture: 'arm64' }]],
    ] as const) {
      const image = await buildImage({ tag: 'v1', format, platforms: platforms ? [...platforms] : undefined, bigLayerBytes: 300_000 });
      await pushImage(image, upstream, repo);
      images.push({ repo, image });
    }
    proxy = await startTestProxy({ upstreams: [upstreamOf(upstream)] });
    chain = await startRegistry({ proxyRemoteUrl: proxy.url });
  });

  after(async () => {
    await chain?.stop();
    await proxy?.stop();
    await upstream?.stop();
    for (const i of images) await i.image.remove();
  });

  test('skopeo inspect and copy through the chain, by tag and by digest', async () => {
    for (const { repo, image } of images) {
      for (const ref of [`${chain.host}/${repo}:v1`, `${chain.host}/${repo}@${image.digest}`]) {
        await assertSkopeoGetsDigest(ref, image.digest);
      }
    }
  });

  test('the chain fetched content from boxproxy, which fetched it from the upstream', async () => {
    const chainLog = await chain.accessLog();
    const upstreamLog = await upstream.accessLog();
    for (const { repo, image } of images) {
      for (const blob of image.blobs) {
        const path = `/v2/${repo}/blobs/${blob.digest}`;
        assert.ok(chainLog.some((e) => e.method === 'GET' && e.path === path && e.status === 200), `client got ${path} from the chain`);
        assert.equal(upstreamLog.filter((e) => e.method === 'GET' && e.path === path).length, 1, `${path} fetched upstream once`);
      }
    }
  });
});
