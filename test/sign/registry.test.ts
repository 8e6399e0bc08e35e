// Signatures stored in and read back from a real registry (Debian's docker-registry,
// distribution 2.8): the registry accepts the manifests as written, serves them
// byte-identical, and verification works over HTTP. distribution 2.8 has no
// referrers API, so the bundle is listed through the spec's fallback tag
// `sha256-<hex>` (an image index), as cosign does against such registries.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { hexOf, sha256 } from '../../src/oci/digest.js';
import { OCI_EMPTY, OCI_INDEX, OCI_LAYER_TAR, OCI_MANIFEST } from '../../src/oci/mediatypes.js';
import type { Descriptor } from '../../src/oci/types.js';
import type { BlobContent } from '../../src/sign/common.js';
import { generateKeyPair, type SigningKey } from '../../src/sign/keys.js';
import { signManifest, verifyManifestSignatures, type ManifestSignatures, type SignatureSource } from '../../src/sign/signer.js';
import { skipUnlessTools } from '../helpers/proc.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';

const ACCEPT = [OCI_MANIFEST, OCI_INDEX].join(', ');

async function pushBlob(registry: TestRegistry, repo: string, bytes: Buffer): Promise<string> {
  const digest = sha256(bytes);
  const start = await fetch(`${registry.url}/v2/${repo}/blobs/uploads/`, { method: 'POST' });
  await start.arrayBuffer();
  assert.equal(start.status, 202);
  const location = new URL(start.headers.get('location') ?? '', registry.url);
  location.searchParams.set('digest', digest);
  const put = await fetch(location, { method: 'PUT', body: new Uint8Array(bytes), headers: { 'content-type': 'application/octet-stream' } });
  await put.arrayBuffer();
  assert.equal(put.status, 201, `blob ${digest}`);
  return digest;
}

async function pushManifest(registry: TestRegistry, repo: string, reference: string, mediaType: string, bytes: Buffer): Promise<void> {
  const res = await fetch(`${registry.url}/v2/${repo}/manifests/${reference}`, { method: 'PUT', body: new Uint8Array(bytes), headers: { 'content-type': mediaType } });
  const body = await res.text();
  assert.equal(res.status, 201, `manifest ${reference}: ${body}`);
  assert.equal(res.headers.get('docker-content-digest'), sha256(bytes));
}

async function pushBlobs(registry: TestRegistry, repo: string, blobs: BlobContent[]): Promise<void> {
  for (const blob of blobs) assert.equal(await pushBlob(registry, repo, blob.bytes), blob.digest);
}

/** Stores what signManifest produced the way the serving side will: tag, manifest by digest, referrers (fallback tag). */
async function storeSignatures(registry: TestRegistry, repo: string, subject: string, sigs: ManifestSignatures): Promise<void> {
  await pushBlobs(registry, repo, [...sigs.cosign.blobs, ...sigs.bundle.blobs]);
  await pushManifest(registry, repo, sigs.cosign.tag, sigs.cosign.manifest.mediaType, sigs.cosign.manifest.bytes);
  await pushManifest(registry, repo, sigs.bundle.manifest.digest, sigs.bundle.manifest.mediaType, sigs.bundle.manifest.bytes);
  const index = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: [sigs.bundle.descriptor] }));
  await pushManifest(registry, repo, `sha256-${hexOf(subject)}`, OCI_INDEX, index);
}

function httpSource(registry: TestRegistry, repo: string): SignatureSource {
  const get = async (path: string, accept?: string): Promise<Buffer | undefined> => {
    const res = await fetch(`${registry.url}/v2/${repo}/${path}`, accept ? { headers: { accept } } : {});
    const body = Buffer.from(await res.arrayBuffer());
    if (res.status === 404) return undefined;
    assert.equal(res.status, 200, `${path}: ${body.toString()}`);
    return body;
  };
  return {
    getManifestByTag: (tag) => get(`manifests/${tag}`, ACCEPT),
    getManifest: (digest) => get(`manifests/${digest}`, ACCEPT),
    getBlob: (digest) => get(`blobs/${digest}`),
    async getReferrers(digest) {
      const index = await get(`manifests/sha256-${hexOf(digest)}`, ACCEPT);
      return index ? (JSON.parse(index.toString()) as { manifests: Descriptor[] }).manifests : [];
    },
  };
}

/** Pushes a minimal Box-like image and returns its manifest descriptor. */
async function pushBox(registry: TestRegistry, repo: string, tag: string): Promise<{ descriptor: Descriptor; bytes: Buffer }> {
  const layer = Buffer.from(`box ${tag} ${Math.random()}`);
  await pushBlob(registry, repo, Buffer.from('{}'));
  await pushBlob(registry, repo, layer);
  const bytes = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: { mediaType: OCI_EMPTY, digest: sha256(Buffer.from('{}')), size: 2 },
      layers: [{ mediaType: OCI_LAYER_TAR, digest: sha256(layer), size: layer.length }],
    }),
  );
  await pushManifest(registry, repo, tag, OCI_MANIFEST, bytes);
  return { bytes, descriptor: { mediaType: OCI_MANIFEST, digest: sha256(bytes), size: bytes.length } };
}

describe('signatures in a real registry (docker-registry)', { skip: skipUnlessTools('docker-registry') }, () => {
  let registry: TestRegistry;
  let key: SigningKey;
  const repo = 'boxes/demo';

  before(async () => {
    registry = await startRegistry();
    key = await generateKeyPair();
  });
  after(async () => {
    await registry?.stop();
  });

  it('stores both formats unchanged and verifies them over HTTP', async () => {
    const box = await pushBox(registry, repo, 'v1');
    const sigs = await signManifest(key, { reference: `${registry.host}/${repo}`, descriptor: box.descriptor });
    await storeSignatures(registry, repo, box.descriptor.digest, sigs);

    const source = httpSource(registry, repo);
    assert.deepEqual(await source.getManifestByTag(sigs.cosign.tag), sigs.cosign.manifest.bytes);
    assert.deepEqual(await source.getManifest(sigs.bundle.manifest.digest), sigs.bundle.manifest.bytes);

    const result = await verifyManifestSignatures({ digest: box.descriptor.digest, manifestBytes: box.bytes, publicKeys: [key.publicKey], source, require: ['cosign', 'bundle'] });
    assert.deepEqual(result, { ok: true, verified: ['cosign', 'bundle'], reasons: [], keyFingerprints: [key.fingerprint] });
  });

  it('fails when another Box signature is pushed under this Box signature tag', async () => {
    const box = await pushBox(registry, repo, 'v2');
    const other = await pushBox(registry, repo, 'v3');
    const otherSigs = await signManifest(key, { reference: `${registry.host}/${repo}`, descriptor: other.descriptor });
    await pushBlobs(registry, repo, otherSigs.cosign.blobs);
    await pushManifest(registry, repo, `sha256-${hexOf(box.descriptor.digest)}.sig`, OCI_MANIFEST, otherSigs.cosign.manifest.bytes);

    const result = await verifyManifestSignatures({ digest: box.descriptor.digest, publicKeys: [key.publicKey], source: httpSource(registry, repo) });
    assert.equal(result.ok, false);
    assert.match(result.reasons.join('\n'), /cosign: payload signs .*not the expected manifest/);
  });
});
