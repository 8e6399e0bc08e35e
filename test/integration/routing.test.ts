// One process, several upstreams: `?ns=`, a first path component naming an upstream, and the default upstream
// (with Docker Hub's `library/` rule). Two real registries stand in for docker.io and ghcr.io and hold the same
// repository name with different content, so any mix-up between upstreams shows as a wrong digest.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { OCI_INDEX, OCI_MANIFEST } from '../../src/oci/mediatypes.js';
import { buildImage, pushImage, skopeoCopyToDir, skopeoInspectDigest, type BuiltImage } from '../helpers/images.js';
import { skipUnlessTools } from '../helpers/proc.js';
import { startTestProxy, upstreamOf, type TestProxy } from '../helpers/proxy.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';

const ACCEPT = `${OCI_INDEX}, ${OCI_MANIFEST}`;

describe('routing between upstreams', { skip: skipUnlessTools('docker-registry', 'skopeo') }, () => {
  let hub: TestRegistry;
  let ghcr: TestRegistry;
  let proxy: TestProxy;
  let hubAlpine: BuiltImage;
  let hubApp: BuiltImage;
  let ghcrApp: BuiltImage;

  before(async () => {
    [hub, ghcr] = await Promise.all([startRegistry(), startRegistry()]);
    [hubAlpine, hubApp, ghcrApp] = await Promise.all([buildImage({ tag: 'v1' }), buildImage({ tag: 'v1' }), buildImage({ tag: 'v1' })]);
    await pushImage(hubAlpine, hub, 'library/alpine');
    await pushImage(hubApp, hub, 'org/app');
    await pushImage(ghcrApp, ghcr, 'org/app');
    proxy = await startTestProxy({ upstreams: [upstreamOf(hub, { name: 'docker.io' }), upstreamOf(ghcr, { name: 'ghcr.io' })] });
  });

  after(async () => {
    await proxy?.stop();
    await hub?.stop();
    await ghcr?.stop();
    for (const i of [hubAlpine, hubApp, ghcrApp]) await i?.remove();
  });

  test('default upstream, with library/ for one-component Docker Hub names', async () => {
    assert.equal(await skopeoInspectDigest(`${proxy.host}/alpine:v1`), hubAlpine.digest);
    assert.equal(await skopeoInspectDigest(`${proxy.host}/library/alpine:v1`), hubAlpine.digest);
    assert.equal(await skopeoInspectDigest(`${proxy.host}/org/app:v1`), hubApp.digest);
  });

  test('a first path component naming an upstream', async () => {
    assert.equal(await skopeoInspectDigest(`${proxy.host}/ghcr.io/org/app:v1`), ghcrApp.digest);
    assert.equal(await skopeoInspectDigest(`${proxy.host}/docker.io/org/app:v1`), hubApp.digest);
    assert.equal(await skopeoInspectDigest(`${proxy.host}/docker.io/alpine:v1`), hubAlpine.digest);
    const pulled = await skopeoCopyToDir(`${proxy.host}/ghcr.io/org/app@${ghcrApp.digest}`);
    assert.equal(pulled.digest, ghcrApp.digest);
    await pulled.remove();
  });

  test('?ns= picks the upstream, Docker Hub aliases included', async () => {
    const digestOf = async (path: string) => {
      const res = await fetch(`${proxy.url}${path}`, { headers: { accept: ACCEPT } });
      await res.arrayBuffer();
      assert.equal(res.status, 200, path);
      return res.headers.get('docker-content-digest');
    };
    assert.equal(await digestOf('/v2/org/app/manifests/v1?ns=ghcr.io'), ghcrApp.digest);
    assert.equal(await digestOf('/v2/org/app/manifests/v1?ns=docker.io'), hubApp.digest);
    assert.equal(await digestOf('/v2/library/alpine/manifests/v1?ns=docker.io'), hubAlpine.digest);
    assert.equal(await digestOf('/v2/library/alpine/manifests/v1?ns=registry-1.docker.io'), hubAlpine.digest);
    assert.equal(await digestOf('/v2/library/alpine/manifests/v1?ns=index.docker.io'), hubAlpine.digest);
  });

  test('content fetched through one upstream is not served under another', async () => {
    // ghcr.io's layer exists in the store now; docker.io does not have it and must say so.
    const ghcrLayer = ghcrApp.manifests[0]?.layers[0];
    assert.ok(ghcrLayer);
    const viaGhcr = await fetch(`${proxy.url}/v2/ghcr.io/org/app/blobs/${ghcrLayer.digest}`);
    await viaGhcr.arrayBuffer();
    assert.equal(viaGhcr.status, 200);
    const viaHub = await fetch(`${proxy.url}/v2/org/app/blobs/${ghcrLayer.digest}`);
    await viaHub.arrayBuffer();
    assert.equal(viaHub.status, 404);
    const viaHubByDigest = await fetch(`${proxy.url}/v2/org/app/manifests/${ghcrApp.digest}`, { headers: { accept: ACCEPT } });
    await viaHubByDigest.arrayBuffer();
    assert.equal(viaHubByDigest.status, 404);
  });
});
