// Boxes through the proxy with real clients: docker-registry upstream, skopeo pulling by platform and by Box
// reference, the Box runner executing what skopeo pulled, referrers, a native image, a thundering herd of tag
// requests, and a restart that serves the Box without converting again.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { pickGzip } from '../../src/convert/gzip/index.js';
import { sha256 } from '../../src/oci/digest.js';
import { DOCKER_LIST, OCI_INDEX, OCI_MANIFEST } from '../../src/oci/mediatypes.js';
import type { ImageIndex, ImageManifest } from '../../src/oci/types.js';
import { expectedHelloOutput, nativeServerImage, wasiAppImage } from '../fixtures/images.js';
import { assertOciError, rawRequest } from '../helpers/http.js';
import { hostPlatform, skopeo, skopeoCopyToDir } from '../helpers/images.js';
import { makeTempDir, removeTempDir, skipUnlessTools, waitUntil } from '../helpers/proc.js';
import { metricValue, type TestProxy } from '../helpers/proxy.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import {
  conversionStatus,
  pushSpec,
  runBoxLayout,
  startBoxProxy,
  waitForConversion,
  type ConversionStatus,
  type PushedImage,
} from './boxes-helpers.js';

const GREETING = 'hello from a Box (boxes)\n';
const INDEX_ACCEPT = [OCI_INDEX, DOCKER_LIST, OCI_MANIFEST, 'application/vnd.docker.distribution.manifest.v2+json'].join(', ');

/** All finished conversions this process counted, whatever their state and strategy. */
async function conversionsCounted(proxy: TestProxy): Promise<number> {
  return metricValue(proxy.url, 'boxproxy_conversions_total');
}

describe('Boxes through boxproxy with skopeo and the Box runner', { skip: skipUnlessTools('docker-registry', 'skopeo') }, () => {
  let registry: TestRegistry;
  let proxy: TestProxy;
  let restarted: TestProxy | undefined;
  let hello: PushedImage;
  let native: PushedImage;
  let work: string;
  let converted: ConversionStatus;
  const arch = hostPlatform().architecture;

  before(async () => {
    registry = await startRegistry();
    work = await makeTempDir('boxes-work');
    hello = await pushSpec(registry, 'boxes/hello', '1', { ...wasiAppImage(GREETING), architecture: arch });
    native = await pushSpec(registry, 'boxes/native', '1', { ...nativeServerImage(), architecture: arch });
    proxy = await startBoxProxy({ registry });
  });

  after(async () => {
    await restarted?.stop();
    await proxy?.stop();
    await registry?.stop();
    for (const dir of [work, hello?.layout, native?.layout]) if (dir) await removeTempDir(dir);
  });

  test('20 concurrent tag requests start exactly one conversion, and none of them fails', async () => {
    const before = await conversionsCounted(proxy);
    const answers = await Promise.all(
      Array.from({ length: 20 }, () => rawRequest(proxy.url, 'GET', '/v2/boxes/hello/manifests/1', { accept: INDEX_ACCEPT })),
    );
    for (const res of answers) assert.equal(res.status, 200, res.body.toString());
    converted = await waitForConversion(proxy, hello.digest);
    assert.equal(converted.state, 'done', JSON.stringify(converted));
    assert.equal(converted.strategy, 'wasi-module');
    assert.equal(converted.attempts, 1, 'one conversion attempt recorded');
    // The record turns final a moment before the metric and the log line are written: wait for them, then count.
    const finishedLines = async () => (await proxy.log()).split('\n').filter((l) => l.includes('"conversion finished"') && l.includes(hello.digest));
    await waitUntil('the conversion metric and log line', async () => (await conversionsCounted(proxy)) > before && (await finishedLines()).length > 0);
    assert.equal((await conversionsCounted(proxy)) - before, 1, 'boxproxy_conversions_total grew by one');
    assert.equal((await finishedLines()).length, 1, 'one "conversion finished" log line');
    // Whatever each request got, it was the upstream manifest or an index wrapping it (never a broken answer).
    for (const res of answers) {
      const digest = res.headers['docker-content-digest'];
      if (digest === hello.digest) continue;
      const index = JSON.parse(res.body.toString()) as ImageIndex;
      assert.ok(index.manifests.some((d) => d.digest === hello.digest), `index ${String(digest)} wraps the upstream manifest`);
    }
  });

  test('the tag answers an index with the linux image and a wasip1/wasm Box entry; digests are stable', async () => {
    const res = await rawRequest(proxy.url, 'GET', '/v2/boxes/hello/manifests/1', { accept: INDEX_ACCEPT });
    assert.equal(res.status, 200);
    assert.equal(res.headers['content-type'], OCI_INDEX);
    const index = JSON.parse(res.body.toString()) as ImageIndex;
    assert.deepEqual(index.manifests.map((d) => [d.digest, d.platform?.os, d.platform?.architecture]), [
      [hello.digest, 'linux', arch],
      [converted.box, 'wasip1', 'wasm'],
    ]);
    assert.equal(index.manifests[1]?.annotations?.['dev.boxproxy.strategy'], 'wasi-module');
    // The index is stored content-addressed: the client's follow-up by digest gets the same bytes.
    const byDigest = await rawRequest(proxy.url, 'GET', `/v2/boxes/hello/manifests/${sha256(res.body)}`, { accept: INDEX_ACCEPT });
    assert.equal(byDigest.status, 200);
    assert.ok(byDigest.body.equals(res.body));
    // A client that accepts no index gets the upstream manifest unchanged.
    const plain = await rawRequest(proxy.url, 'GET', '/v2/boxes/hello/manifests/1', { accept: OCI_MANIFEST });
    assert.equal(plain.headers['docker-content-digest'], hello.digest);
    assert.equal(sha256(plain.body), hello.digest);
  });

  test('skopeo --override-os wasip1 --override-arch wasm gets the Box, and the Box runs', async () => {
    const layout = join(work, 'by-platform');
    await skopeo(['copy', '--quiet', '--src-tls-verify=false', '--src-no-creds', '--override-os', 'wasip1', '--override-arch', 'wasm',
      `docker://${proxy.host}/boxes/hello:1`, `oci:${layout}:1`]);
    const top = JSON.parse(await readFile(join(layout, 'index.json'), 'utf8')) as ImageIndex;
    assert.equal(top.manifests[0]?.digest, converted.box, 'the layout holds the Box manifest, byte for byte');
    // The conversion worker wrote the layers with the gzip this machine resolves to (igzip when installed).
    const blob = async (digest: string): Promise<string> => readFile(join(layout, 'blobs', 'sha256', digest.slice('sha256:'.length)), 'utf8');
    const boxManifest = JSON.parse(await blob(top.manifests[0]?.digest ?? '')) as { config: { digest: string } };
    const boxConfig = JSON.parse(await blob(boxManifest.config.digest)) as { config: { Labels: Record<string, string> } };
    assert.equal(boxConfig.config.Labels['dev.boxproxy.converter.gzip'], (await pickGzip('auto')).name);
    // The image's Cmd reads a file relative to WorkingDir, an env var from the config, and exits 7.
    const ran = await runBoxLayout(layout, { cacheDir: join(work, 'cache') });
    assert.equal(ran.stdout, expectedHelloOutput({
      args: ['/app/hello.wasm', 'cat:message.txt', 'env:GREETING_NAME', 'exit:7'],
      cwd: '/work',
      greeting: GREETING,
      name: 'Box',
      extra: ['message.txt: relative read works', 'GREETING_NAME=Box'],
    }), ran.stderr);
    assert.equal(ran.exitCode, 7, 'the module\'s exit status comes back');
    const ok = await runBoxLayout(layout, { cacheDir: join(work, 'cache'), args: ['cat:/etc/greeting'] });
    assert.equal(ok.exitCode, 0, ok.stderr);
    assert.match(ok.stdout, /^\/etc\/greeting: hello from a Box \(boxes\)$/m);
  });

  test('plain skopeo copy of the same tag gets the linux image with the upstream digest', async () => {
    const pulled = await skopeoCopyToDir(`${proxy.host}/boxes/hello:1`, { all: false });
    try {
      assert.equal(pulled.digest, hello.digest);
      const manifest = JSON.parse(await readFile(join(pulled.dir, 'manifest.json'), 'utf8')) as ImageManifest;
      const config = JSON.parse(await readFile(join(pulled.dir, manifest.config.digest.slice('sha256:'.length)), 'utf8')) as { os: string };
      assert.equal(config.os, 'linux');
    } finally {
      await pulled.remove();
    }
  });

  test('the Box reference wasm/<name>:<tag>, pulled by plain skopeo, is the Box and runs', async () => {
    const layout = join(work, 'by-box-ref');
    await skopeo(['copy', '--quiet', '--src-tls-verify=false', '--src-no-creds', `docker://${proxy.host}/wasm/boxes/hello:1`, `oci:${layout}:1`]);
    const top = JSON.parse(await readFile(join(layout, 'index.json'), 'utf8')) as ImageIndex;
    assert.equal(top.manifests[0]?.digest, converted.box);
    const ran = await runBoxLayout(layout, { cacheDir: join(work, 'cache-ref'), args: ['cat:/etc/greeting'] });
    assert.equal(ran.exitCode, 0, ran.stderr);
    assert.match(ran.stdout, /^\/etc\/greeting: hello from a Box \(boxes\)$/m);
  });

  test('referrers of the source list the Box (with artifactType) and its signatures; the artifactType filter works', async () => {
    const res = await rawRequest(proxy.url, 'GET', `/v2/boxes/hello/referrers/${hello.digest}`);
    assert.equal(res.status, 200);
    assert.equal(res.headers['content-type'], OCI_INDEX);
    const index = JSON.parse(res.body.toString()) as ImageIndex;
    const box = index.manifests.find((d) => d.digest === converted.box);
    assert.ok(box, `the Box is listed: ${res.body.toString()}`);
    assert.ok(box.artifactType, 'the Box entry carries artifactType');
    assert.equal(box.annotations?.['dev.boxproxy.strategy'], 'wasi-module');
    const signatures = converted.signatures;
    assert.ok(signatures);
    for (const d of [signatures.cosign.descriptor, signatures.bundle.descriptor]) {
      assert.ok(index.manifests.some((m) => m.digest === d.digest), `signature ${d.digest} listed`);
    }

    const filtered = await rawRequest(proxy.url, 'GET', `/v2/boxes/hello/referrers/${hello.digest}?artifactType=${encodeURIComponent(box.artifactType)}`);
    assert.equal(filtered.status, 200);
    assert.equal(filtered.headers['oci-filters-applied'], 'artifactType');
    const only = JSON.parse(filtered.body.toString()) as ImageIndex;
    assert.ok(only.manifests.length >= 1);
    assert.ok(only.manifests.every((d) => d.artifactType === box.artifactType), 'only entries of the asked artifactType');
    assert.ok(only.manifests.some((d) => d.digest === converted.box));

    const none = await rawRequest(proxy.url, 'GET', `/v2/boxes/hello/referrers/${hello.digest}?artifactType=application%2Fx-nothing`);
    assert.equal(none.status, 200);
    assert.deepEqual((JSON.parse(none.body.toString()) as ImageIndex).manifests, []);

    // The Box's own referrers are its signatures (cosign 3 and `boxproxy verify` look there).
    const ofBox = JSON.parse((await rawRequest(proxy.url, 'GET', `/v2/wasm/boxes/hello/referrers/${converted.box}`)).body.toString()) as ImageIndex;
    assert.ok(ofBox.manifests.some((d) => d.digest === signatures.bundle.descriptor.digest));
  });

  test('a native ELF image keeps working; its status says why there is no Box', async () => {
    const before = await rawRequest(proxy.url, 'GET', '/v2/boxes/native/manifests/1', { accept: INDEX_ACCEPT });
    assert.equal(before.status, 200);
    const status = await waitForConversion(proxy, native.digest);
    assert.equal(status.state, 'unconvertible');
    assert.match(status.reason ?? '', /\/usr\/sbin\/nginx.*ELF/, status.reason);
    assert.ok(status.report, 'a conversion report is kept');

    const pulled = await skopeoCopyToDir(`${proxy.host}/boxes/native:1`, { all: false });
    assert.equal(pulled.digest, native.digest);
    await pulled.remove();
    const tag = await rawRequest(proxy.url, 'GET', '/v2/boxes/native/manifests/1', { accept: INDEX_ACCEPT });
    assert.equal(tag.headers['docker-content-digest'], native.digest, 'no index is made up for an image without a Box');

    const boxRef = await rawRequest(proxy.url, 'GET', '/v2/wasm/boxes/native/manifests/1', { accept: INDEX_ACCEPT });
    const error = assertOciError(boxRef, 404, 'MANIFEST_UNKNOWN', 'Box reference of a native image');
    assert.match(error.errors[0]?.message ?? '', /ELF/);
  });

  test('a restart on the same storage serves the Box without converting again', async () => {
    const sigBefore = await rawRequest(proxy.url, 'GET', `/v2/wasm/boxes/hello/manifests/sha256-${converted.box?.slice(7)}.sig`, { accept: OCI_MANIFEST });
    assert.equal(sigBefore.status, 200);
    await proxy.close();
    const counted = await conversionsCounted(proxy).catch(() => undefined);
    assert.equal(counted, undefined, 'the first proxy is closed');
    restarted = await startBoxProxy({ registry, storagePath: proxy.storagePath });
    const before = await conversionsCounted(restarted);

    const layout = join(work, 'after-restart');
    await skopeo(['copy', '--quiet', '--src-tls-verify=false', '--src-no-creds', '--override-os', 'wasip1', '--override-arch', 'wasm',
      `docker://${restarted.host}/boxes/hello:1`, `oci:${layout}:1`]);
    const top = JSON.parse(await readFile(join(layout, 'index.json'), 'utf8')) as ImageIndex;
    assert.equal(top.manifests[0]?.digest, converted.box, 'same Box digest');

    const status = await conversionStatus(restarted.url, hello.digest);
    assert.equal(status?.state, 'done');
    assert.equal(status?.attempts, 1);
    assert.deepEqual(status?.signatures, converted.signatures, 'same signature digests');
    const sigAfter = await rawRequest(restarted.url, 'GET', `/v2/wasm/boxes/hello/manifests/sha256-${converted.box?.slice(7)}.sig`, { accept: OCI_MANIFEST });
    assert.equal(sigAfter.headers['docker-content-digest'], sigBefore.headers['docker-content-digest']);
    assert.equal((await conversionsCounted(restarted)) - before, 0, 'no conversion ran after the restart');
    assert.doesNotMatch(await restarted.log(), /"conversion finished"/);
  });
});
