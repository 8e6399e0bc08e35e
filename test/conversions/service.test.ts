import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConversionService } from '../../src/conversions/service.js';
import { sha256 } from '../../src/oci/digest.js';
import { OCI_CONFIG, OCI_LAYER_GZIP, OCI_MANIFEST } from '../../src/oci/mediatypes.js';
import { silentLogger } from '../../src/ops/log.js';
import type { BlobSource } from '../../src/registry/blobs.js';
import type { PullThroughRegistry } from '../../src/registry/registry.js';
import type { RepoRef, Upstream } from '../../src/registry/upstreams.js';
import { generateKeyPair } from '../../src/sign/keys.js';
import { BlobStore } from '../../src/store/blobs.js';
import { ConversionStore } from '../../src/store/conversions.js';
import { RecordStore } from '../../src/store/records.js';

/**
 * A core whose blob fetches hang until released: the one fault needed to hold
 * a conversion in "pending" (a slow upstream) for as long as the test wants.
 */
function stalledCore() {
  let release: (err: Error) => void = () => undefined;
  const stalled = new Promise<BlobSource>((_resolve, reject) => {
    release = reject;
  });
  stalled.catch(() => undefined);
  const upstream: Upstream = { name: 'up.example', request: () => Promise.reject(new Error('not used')) };
  const entry = { upstream, tagTtl: 1000, dockerHub: false };
  const core = {
    blobs: { get: () => stalled },
    router: { resolve: (repo: string) => ({ entry, repo, clientName: repo }) },
  } as unknown as PullThroughRegistry;
  const ref: RepoRef = { entry, repo: 'app', clientName: 'app' };
  return { core, ref, release: (err: Error) => release(err) };
}

test('tag waits are bounded from the start of a conversion; a conversion is started once', async () => {
  const root = mkdtempSync(join(tmpdir(), 'boxproxy-conv-'));
  const logger = silentLogger();
  const store = new BlobStore(root, { logger });
  await store.init();
  const records = new ConversionStore(root);
  await records.init();
  const { core, ref, release } = stalledCore();
  const service = new ConversionService(core, store, new RecordStore(root), records, await generateKeyPair(), {
    storageRoot: root,
    workers: 1,
    timeoutMs: 60_000,
    maxHeapMb: 256,
    retryFailedAfterMs: 60_000,
    include: [],
    exclude: [],
    maxImageBytes: 1 << 30,
  }, logger);
  const bytes = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: { mediaType: OCI_CONFIG, digest: sha256('c'), size: 1 },
      layers: [{ mediaType: OCI_LAYER_GZIP, digest: sha256('l'), size: 1 }],
    }),
  );
  const image = { digest: sha256(bytes), mediaType: OCI_MANIFEST, bytes };

  // The first caller waits its budget, then answers without the Box.
  assert.equal(await service.wait(ref, image, 50, true), undefined);
  assert.equal(service.get(image.digest)?.state, 'running');
  // The budget is spent for everyone: a later caller with the same budget does not wait at all. Observed by
  // order, not by time: its answer comes before the next turn of the event loop, so no timer was involved.
  const order: string[] = [];
  const late = service.wait(ref, image, 50, true).then((r) => order.push(`wait:${r === undefined ? 'none' : r.state}`));
  const tick = new Promise<void>((resolve) => setImmediate(() => resolve(void order.push('next turn'))));
  await Promise.all([late, tick]);
  assert.deepEqual(order, ['wait:none', 'next turn']);
  // A Box-reference style wait counts from its own arrival.
  assert.equal(await service.wait(ref, image, 20), undefined);

  const final = service.ensure(ref, image);
  release(new Error('upstream reset'));
  const rec = await final;
  assert.equal(rec.state, 'failed');
  assert.match(rec.reason ?? '', /upstream reset/);
  assert.equal(rec.attempts, 1, 'every caller joined the one conversion');
  await service.close();
});
