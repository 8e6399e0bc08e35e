// skopeo through boxproxy against Debian's docker-registry: inspect and copy by tag and by digest give exactly
// the upstream's digests, for OCI and Docker schema2 images and indexes, through default and path routing.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { sha256 } from '../../src/oci/digest.js';
import { DOCKER_LIST, DOCKER_MANIFEST, OCI_INDEX, OCI_MANIFEST } from '../../src/oci/mediatypes.js';
import { assertSkopeoGetsDigest, buildImage, pushImage, skopeoCopyToDir, skopeoInspect, skopeoInspectDigest, type BuiltImage } from '../helpers/images.js';
import { skipUnlessTools } from '../helpers/proc.js';
import { startTestProxy, upstreamOf, type TestProxy } from '../helpers/proxy.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';

const TWO_PLATFORMS = [
  { os: 'linux', architecture: 'amd64' },
  { os: 'linux', architecture: 'arm64' },
];

interface Case {
  repo: string;
  image: BuiltImage;
  mediaType: string;
}

describe('skopeo through boxproxy (open upstream)', { skip: skipUnlessTools('docker-registry', 'skopeo') }, () => {
  let registry: TestRegistry;
  let proxy: TestProxy;
  const cases: Case[] = [];

  before(async () => {
    registry = await startRegistry();
    const specs = [
      { repo: 'oci/single', format: 'oci', platforms: undefined, mediaType: OCI_MANIFEST },
      { repo: 'oci/multi', format: 'oci', platforms: TWO_PLATFORMS, mediaType: OCI_INDEX },
      { repo: 'docker/single', format: 'docker', platforms: undefined, mediaType: DOCKER_MANIFEST },
      { repo: 'docker/multi', format: 'docker', platforms: TWO_PLATFORMS, mediaType: DOCKER_LIST },
    ] as const;
    for (const s of specs) {
      const image = await buildImage({ format: s.format, platforms: s.platforms ? [...s.platforms] : undefined, tag: 'v1' });
      assert.equal(image.mediaType, s.mediaType);
      await pushImage(image, registry, s.repo);
      cases.push({ repo: s.repo, image, mediaType: s.mediaType });
    }
    proxy = await startTestProxy({
      // The same registry twice: by its host (the default upstream) and as `upstream.test` for path routing,
      // since a `host:port` component cannot appear inside an image reference's path.
      upstreams: [upstreamOf(registry), upstreamOf(registry, { name: 'upstream.test' })],
    });
  });

  after(async () => {
    await proxy?.stop();
    await registry?.stop();
    for (const c of cases) await c.image.remove();
  });

  test('the upstream holds what was pushed (helper sanity)', async () => {
    for (const c of cases) assert.equal(await skopeoInspectDigest(`${registry.host}/${c.repo}:v1`), c.image.digest, c.repo);
  });

  for (const route of ['default', 'path'] as const) {
    test(`skopeo inspect by tag and by digest (${route} routing)`, async () => {
      for (const c of cases) {
        const name = route === 'path' ? `upstream.test/${c.repo}` : c.repo;
        const byTag = `${proxy.host}/${name}:v1`;
        assert.equal(await skopeoInspectDigest(byTag), c.image.digest, `${byTag}: raw manifest digest`);
        assert.equal((await skopeoInspect(byTag)).Digest, c.image.digest, `${byTag}: skopeo's Digest`);
        const byDigest = `${proxy.host}/${name}@${c.image.digest}`;
        assert.equal(await skopeoInspectDigest(byDigest), c.image.digest, byDigest);
        // Every platform manifest of an index, by digest.
        for (const m of c.image.manifests) {
          assert.equal(await skopeoInspectDigest(`${proxy.host}/${name}@${m.digest}`), m.digest, `${c.repo} ${m.platform.architecture}`);
        }
      }
    });
  }

  test('skopeo copy --all by tag and by digest gives the upstream digests', async () => {
    for (const c of cases) {
      for (const ref of [`${proxy.host}/${c.repo}:v1`, `${proxy.host}/${c.repo}@${c.image.digest}`]) {
        await assertSkopeoGetsDigest(ref, c.image.digest, { inspect: false });
      }
    }
  });

  test('warm pulls are served from the cache: no upstream blob or manifest GETs', async () => {
    const before = await registry.accessLog();
    for (const c of cases) {
      const pulled = await skopeoCopyToDir(`${proxy.host}/${c.repo}:v1`);
      assert.equal(pulled.digest, c.image.digest);
      await pulled.remove();
    }
    const after = await registry.accessLog();
    const fresh = after.slice(before.length).filter((e) => e.method === 'GET' && /\/(blobs|manifests)\//.test(e.path));
    assert.deepEqual(fresh.map((e) => e.target), [], 'tags are fresh (tagTtl 1h) and content is immutable');
    // Each blob went upstream at most once overall, whatever the number of pulls and routes.
    for (const c of cases) {
      for (const blob of c.image.blobs) {
        const gets = after.filter((e) => e.method === 'GET' && e.path === `/v2/${c.repo}/blobs/${blob.digest}`).length;
        assert.ok(gets <= 2, `${c.repo} ${blob.digest}: ${gets} upstream GETs (one per upstream name at most)`);
      }
    }
  });

  test('manifest GET/HEAD headers: exact bytes, media type, digest, length', async () => {
    const accept = [OCI_INDEX, OCI_MANIFEST, DOCKER_LIST, DOCKER_MANIFEST].join(', ');
    for (const c of cases) {
      const direct = await fetch(`${registry.url}/v2/${c.repo}/manifests/v1`, { headers: { accept } });
      const upstreamBytes = Buffer.from(await direct.arrayBuffer());
      for (const ref of ['v1', c.image.digest]) {
        const res = await fetch(`${proxy.url}/v2/${c.repo}/manifests/${ref}`, { headers: { accept } });
        const body = Buffer.from(await res.arrayBuffer());
        assert.equal(res.status, 200);
        assert.ok(body.equals(upstreamBytes), `${c.repo}@${ref}: exact upstream bytes`);
        assert.equal(res.headers.get('content-type'), c.mediaType);
        assert.equal(res.headers.get('docker-content-digest'), c.image.digest);
        assert.equal(sha256(body), c.image.digest);
        assert.equal(Number(res.headers.get('content-length')), body.length);
        const head = await fetch(`${proxy.url}/v2/${c.repo}/manifests/${ref}`, { method: 'HEAD', headers: { accept } });
        assert.equal(head.status, 200);
        assert.equal(head.headers.get('docker-content-digest'), c.image.digest);
        assert.equal(Number(head.headers.get('content-length')), body.length);
        assert.equal((await head.arrayBuffer()).byteLength, 0);
      }
    }
  });

  test('a client that accepts no index never gets one', async () => {
    for (const c of cases.filter((x) => x.mediaType === OCI_INDEX || x.mediaType === DOCKER_LIST)) {
      const single = c.mediaType === OCI_INDEX ? OCI_MANIFEST : DOCKER_MANIFEST;
      const res = await fetch(`${proxy.url}/v2/${c.repo}/manifests/v1`, { headers: { accept: single } });
      const body = Buffer.from(await res.arrayBuffer());
      if (res.status === 200) {
        assert.equal(res.headers.get('content-type'), single, `${c.repo}: not an index`);
        const amd64 = c.image.manifests.find((m) => m.platform.architecture === 'amd64');
        assert.equal(sha256(body), amd64?.digest, `${c.repo}: the linux/amd64 entry`);
      } else {
        assert.equal(res.status, 404, `${c.repo}: ${body.toString()}`);
      }
    }
  });

  test('blobs: digest header, exact bytes, ranges', async () => {
    const c = cases[0] as Case;
    const layer = c.image.manifests[0]?.layers[0];
    assert.ok(layer);
    const direct = Buffer.from(await (await fetch(`${registry.url}/v2/${c.repo}/blobs/${layer.digest}`)).arrayBuffer());
    const res = await fetch(`${proxy.url}/v2/${c.repo}/blobs/${layer.digest}`);
    const body = Buffer.from(await res.arrayBuffer());
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('docker-content-digest'), layer.digest);
    assert.ok(body.equals(direct));
    const part = await fetch(`${proxy.url}/v2/${c.repo}/blobs/${layer.digest}`, { headers: { range: 'bytes=10-19' } });
    assert.equal(part.status, 206);
    assert.equal(part.headers.get('content-range'), `bytes 10-19/${layer.size}`);
    assert.ok(Buffer.from(await part.arrayBuffer()).equals(direct.subarray(10, 20)));
    const beyond = await fetch(`${proxy.url}/v2/${c.repo}/blobs/${layer.digest}`, { headers: { range: `bytes=${layer.size + 10}-` } });
    await beyond.arrayBuffer();
    assert.equal(beyond.status, 416);
  });

  test('tags list through the proxy, with n/last pagination', async () => {
    // A repository nobody listed yet: skopeo inspect lists tags, and lists are cached for tagTtl.
    const image = (cases[0] as Case).image;
    for (const tag of ['v1', 'v2', 'v3']) await pushImage(image, registry, 'tags/app', tag);
    const all = await (await fetch(`${proxy.url}/v2/tags/app/tags/list`)).json();
    assert.deepEqual(all, { name: 'tags/app', tags: ['v1', 'v2', 'v3'] });
    const first = await fetch(`${proxy.url}/v2/tags/app/tags/list?n=2`);
    assert.deepEqual(await first.json(), { name: 'tags/app', tags: ['v1', 'v2'] });
    assert.match(first.headers.get('link') ?? '', /^<\/v2\/tags\/app\/tags\/list\?[^>]*last=v2[^>]*>; rel="next"$/);
    const rest = await fetch(`${proxy.url}/v2/tags/app/tags/list?n=2&last=v2`);
    assert.deepEqual(await rest.json(), { name: 'tags/app', tags: ['v3'] });
    assert.equal(rest.headers.get('link'), null);
  });
});
