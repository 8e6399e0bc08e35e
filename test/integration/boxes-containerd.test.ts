// containerd (ctr) pulling through boxproxy as a hosts.toml mirror: `--platform wasip1/wasm` fetches the Box,
// the default platform the linux image. The registry host's own server is a dead address and containerd sends
// `?ns=<host>`, so everything comes through boxproxy's ns routing.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { ImageManifest } from '../../src/oci/types.js';
import { wasiAppImage } from '../fixtures/images.js';
import { startContainerd, type TestContainerd } from '../helpers/containerd.js';
import { hostPlatform } from '../helpers/images.js';
import { freePort, removeTempDir, skipUnlessTools } from '../helpers/proc.js';
import type { TestProxy } from '../helpers/proxy.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { convertThrough, pushSpec, startBoxProxy, type ConversionStatus, type PushedImage } from './boxes-helpers.js';

const REGISTRY_HOST = 'boxes.test:5000';

describe('containerd pulls Boxes by platform through a hosts.toml mirror', { skip: skipUnlessTools('docker-registry', 'skopeo', 'containerd', 'ctr') }, () => {
  let registry: TestRegistry;
  let proxy: TestProxy;
  let containerd: TestContainerd;
  let hello: PushedImage;
  let converted: ConversionStatus;
  let boxManifest: ImageManifest;
  const ref = `${REGISTRY_HOST}/ctr/hello:1`;

  /** Digests in containerd's content store (`ctr content ls`, first column). */
  async function content(): Promise<Set<string>> {
    const out = (await containerd.ctr(['content', 'ls', '-q'])).stdout;
    return new Set(out.split('\n').map((l) => l.trim()).filter(Boolean));
  }

  /** Forgets the image and every blob, so the next pull starts from nothing. */
  async function forget(): Promise<void> {
    await containerd.ctr(['images', 'rm', ref], { allowFailure: true });
    const digests = [...(await content())];
    if (digests.length) await containerd.ctr(['content', 'rm', ...digests], { allowFailure: true });
    assert.equal((await content()).size, 0, 'content store emptied');
  }

  before(async () => {
    [registry, containerd] = await Promise.all([startRegistry(), startContainerd()]);
    hello = await pushSpec(registry, 'ctr/hello', '1', { ...wasiAppImage(`hello from a Box (ctr)\n`), architecture: hostPlatform().architecture });
    proxy = await startBoxProxy({ registry, upstream: { name: REGISTRY_HOST } });
    converted = await convertThrough(proxy, `${REGISTRY_HOST}/ctr/hello:1`, hello.digest);
    assert.equal(converted.state, 'done', JSON.stringify(converted));
    const res = await fetch(`${proxy.url}/v2/ctr/hello/manifests/${converted.box}?ns=${REGISTRY_HOST}`);
    boxManifest = (await res.json()) as ImageManifest;
    await containerd.setMirror({ registryHost: REGISTRY_HOST, server: `http://127.0.0.1:${await freePort()}`, mirrors: [proxy.url] });
  });

  after(async () => {
    await containerd?.stop();
    await proxy?.stop();
    await registry?.stop();
    if (hello) await removeTempDir(hello.layout);
  });

  test('ctr pull --platform wasip1/wasm fetches the Box manifest and layers, not the linux image', async () => {
    await forget();
    await containerd.pull(ref, ['--platform', 'wasip1/wasm']);
    const have = await content();
    assert.ok(converted.box && have.has(converted.box), `the Box manifest ${converted.box} was fetched: ${[...have].join(' ')}`);
    for (const layer of boxManifest.layers) assert.ok(have.has(layer.digest), `Box layer ${layer.digest} fetched`);
    assert.ok(!have.has(hello.digest), 'the linux manifest was not fetched');
    const image = await containerd.image(ref);
    assert.ok(image, 'ctr recorded the image');
    assert.notEqual(image.digest, hello.digest, 'the tag resolved to the index carrying the Box');
    assert.ok(have.has(image.digest));
  });

  test('ctr pull without --platform fetches the linux image (upstream digest), not the Box', async () => {
    await forget();
    await containerd.pull(ref);
    const have = await content();
    assert.ok(have.has(hello.digest), `the linux manifest ${hello.digest} was fetched`);
    assert.ok(!have.has(converted.box ?? ''), 'the Box was not fetched');
    const log = await proxy.log();
    const asked = log.split('\n').some((l) => l.includes(`/v2/ctr/hello/manifests/${hello.digest}?ns=${encodeURIComponent(REGISTRY_HOST)}`));
    assert.ok(asked, 'containerd asked boxproxy for the linux manifest with ?ns=<registry host>');
  });
});
