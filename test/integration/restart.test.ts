// The cache survives a restart: close boxproxy, stop the upstream, start boxproxy again on the same storage.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { OCI_INDEX, OCI_MANIFEST } from '../../src/oci/mediatypes.js';
import { assertSkopeoGetsDigest, buildImage, pushImage, skopeoCopyToDir, type BuiltImage } from '../helpers/images.js';
import { skipUnlessTools } from '../helpers/proc.js';
import { startTestProxy, upstreamOf, type TestProxy } from '../helpers/proxy.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';

describe('restart keeps the cache', { skip: skipUnlessTools('docker-registry', 'skopeo') }, () => {
  let registry: TestRegistry;
  let first: TestProxy;
  let second: TestProxy | undefined;
  let image: BuiltImage;

  before(async () => {
    registry = await startRegistry();
    image = await buildImage({ tag: 'v1', platforms: [{ os: 'linux', architecture: 'amd64' }, { os: 'linux', architecture: 'arm64' }] });
    await pushImage(image, registry, 'restart/app');
    // tagTtl 0: after the restart the tag must be revalidated, and that fails with the upstream gone.
    first = await startTestProxy({ upstreams: [upstreamOf(registry, { tagTtl: 0 })] });
  });

  after(async () => {
    await second?.stop();
    await first?.stop();
    await registry?.stop();
    await image?.remove();
  });

  test('warm, close, stop upstream, start again on the same storage: still serves the image', async () => {
    const warm = await skopeoCopyToDir(`${first.host}/restart/app:v1`);
    assert.equal(warm.digest, image.digest);
    await warm.remove();
    await first.close();
    await registry.kill();

    // A write interrupted by the "crash" leaves a temp file behind; start-up must clean it.
    const tmpDir = join(first.storagePath, 'tmp');
    await mkdir(tmpDir, { recursive: true });
    const leftover = join(tmpDir, 'interrupted-write.partial');
    await writeFile(leftover, 'half a blob');

    second = await startTestProxy({ upstreams: [upstreamOf(registry, { tagTtl: 0 })], storagePath: first.storagePath });
    assert.equal(existsSync(leftover), false, `leftovers in ${tmpDir} are removed at start: ${(await readdir(tmpDir).catch(() => [])).join(', ')}`);

    for (const ref of [`${second.host}/restart/app:v1`, `${second.host}/restart/app@${image.digest}`]) {
      await assertSkopeoGetsDigest(ref, image.digest);
    }
    const res = await fetch(`${second.url}/v2/restart/app/manifests/v1`, { method: 'HEAD', headers: { accept: `${OCI_INDEX}, ${OCI_MANIFEST}` } });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('docker-content-digest'), image.digest);
  });
});
