// Conversions that go wrong never touch normal pulls: a conversion that times out (conversion.timeout 1ms) and a
// hostile image (a "gzip" layer of garbage) end as failed/unconvertible with a reason, while skopeo still pulls
// the linux images byte for byte and tag requests answer the upstream manifests.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { DOCKER_LIST, OCI_INDEX, OCI_LAYER_GZIP, OCI_MANIFEST } from '../../src/oci/mediatypes.js';
import { wasiAppImage } from '../fixtures/images.js';
import { assertOciError, rawRequest } from '../helpers/http.js';
import { hostPlatform, skopeoCopyToDir } from '../helpers/images.js';
import { removeTempDir, skipUnlessTools } from '../helpers/proc.js';
import type { TestProxy } from '../helpers/proxy.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { conversionStatus, pushSpec, startBoxProxy, waitForConversion, type PushedImage } from './boxes-helpers.js';

const INDEX_ACCEPT = [OCI_INDEX, DOCKER_LIST, OCI_MANIFEST].join(', ');

describe('failing conversions leave normal pulls alone', { skip: skipUnlessTools('docker-registry', 'skopeo') }, () => {
  let registry: TestRegistry;
  let slow: TestProxy;
  let normal: TestProxy;
  let hello: PushedImage;
  let hostile: PushedImage;
  const arch = hostPlatform().architecture;

  before(async () => {
    registry = await startRegistry();
    hello = await pushSpec(registry, 'faults/hello', '1', { ...wasiAppImage(`hello from a Box (faults)\n`), architecture: arch });
    hostile = await pushSpec(registry, 'faults/hostile', '1', {
      architecture: arch,
      layers: [{ raw: randomBytes(4096), mediaType: OCI_LAYER_GZIP }],
      config: { Entrypoint: ['/app/hello.wasm'] },
    });
    // Every conversion in this proxy runs out of time at once.
    slow = await startBoxProxy({ registry, conversion: { timeout: '1ms', waitMs: '5s' } });
    normal = await startBoxProxy({ registry });
  });

  after(async () => {
    await slow?.stop();
    await normal?.stop();
    await registry?.stop();
    for (const image of [hello, hostile]) if (image) await removeTempDir(image.layout);
  });

  test('a conversion that times out: failed with the reason; the tag answers the upstream manifest; skopeo pulls it', async () => {
    const tag = await rawRequest(slow.url, 'GET', '/v2/faults/hello/manifests/1', { accept: INDEX_ACCEPT });
    assert.equal(tag.status, 200);
    assert.equal(tag.headers['docker-content-digest'], hello.digest, 'no Box entry, the upstream manifest as it is');
    const status = await waitForConversion(slow, hello.digest);
    assert.equal(status.state, 'failed');
    assert.match(status.reason ?? '', /timed out/);

    const pulled = await skopeoCopyToDir(`${slow.host}/faults/hello:1`);
    assert.equal(pulled.digest, hello.digest);
    await pulled.remove();

    const boxRef = await rawRequest(slow.url, 'GET', '/v2/wasm/faults/hello/manifests/1', { accept: INDEX_ACCEPT });
    const error = assertOciError(boxRef, 404, 'MANIFEST_UNKNOWN', 'Box reference after a failed conversion');
    assert.match(error.errors[0]?.message ?? '', /timed out/);
    // The failure is remembered (conversion.retryFailedAfter): asking again does not convert again.
    assert.equal((await conversionStatus(slow.url, hello.digest))?.attempts, 1);
  });

  test('a hostile image (garbage in a gzip layer): unconvertible with the reason; the image still pulls byte for byte', async () => {
    const tag = await rawRequest(normal.url, 'GET', '/v2/faults/hostile/manifests/1', { accept: INDEX_ACCEPT });
    assert.equal(tag.status, 200);
    const status = await waitForConversion(normal, hostile.digest);
    assert.ok(status.state === 'unconvertible' || status.state === 'failed', JSON.stringify(status));
    assert.ok(status.reason && status.reason.length > 0, 'the status says why');
    assert.equal(status.box, undefined);

    const pulled = await skopeoCopyToDir(`${normal.host}/faults/hostile:1`);
    assert.equal(pulled.digest, hostile.digest);
    await pulled.remove();
    const again = await rawRequest(normal.url, 'GET', '/v2/faults/hostile/manifests/1', { accept: INDEX_ACCEPT });
    assert.equal(again.headers['docker-content-digest'], hostile.digest);

    // The same proxy converts a good image right after.
    await rawRequest(normal.url, 'GET', '/v2/faults/hello/manifests/1', { accept: INDEX_ACCEPT });
    assert.equal((await waitForConversion(normal, hello.digest)).state, 'done');
  });
});
