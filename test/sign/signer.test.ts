import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { sha256 } from '../../src/oci/digest.js';
import { OCI_MANIFEST } from '../../src/oci/mediatypes.js';
import type { Descriptor } from '../../src/oci/types.js';
import { BUNDLE_V03_MEDIA_TYPE, inTotoStatement } from '../../src/sign/bundle.js';
import { COSIGN_SIGNATURE_ANNOTATION, buildCosignSignatureManifest, cosignPayload, cosignSignatureTag } from '../../src/sign/cosign.js';
import { generateKeyPair, type SigningKey } from '../../src/sign/keys.js';
import { signManifest, verifyManifestSignatures, type ManifestSignatures, type SignatureSource } from '../../src/sign/signer.js';

const REF = '127.0.0.1:5000/boxes/python';

/** The signed Box manifest: any manifest bytes will do for signing. */
function boxManifest(tag: string): { bytes: Buffer; descriptor: Descriptor } {
  const bytes = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_MANIFEST, config: {}, layers: [], annotations: { tag } }));
  return { bytes, descriptor: { mediaType: OCI_MANIFEST, digest: sha256(bytes), size: bytes.length } };
}

/** What a registry holding the stored signatures answers: tags, manifests by digest, referrers, blobs. */
class StoredSignatures implements SignatureSource {
  readonly tags = new Map<string, Buffer>();
  readonly manifests = new Map<string, Buffer>();
  readonly referrers = new Map<string, Descriptor[]>();
  readonly blobs = new Map<string, Buffer>();

  store(subject: string, sigs: ManifestSignatures): void {
    this.tags.set(sigs.cosign.tag, sigs.cosign.manifest.bytes);
    this.manifests.set(sigs.cosign.manifest.digest, sigs.cosign.manifest.bytes);
    this.manifests.set(sigs.bundle.manifest.digest, sigs.bundle.manifest.bytes);
    this.referrers.set(subject, [...(this.referrers.get(subject) ?? []), sigs.bundle.descriptor]);
    for (const blob of [...sigs.cosign.blobs, ...sigs.bundle.blobs]) this.blobs.set(blob.digest, blob.bytes);
  }

  async getManifestByTag(tag: string): Promise<Buffer | undefined> {
    return this.tags.get(tag);
  }
  async getReferrers(digest: string): Promise<Descriptor[]> {
    return this.referrers.get(digest) ?? [];
  }
  async getManifest(digest: string): Promise<Buffer | undefined> {
    return this.manifests.get(digest);
  }
  getBlob = async (digest: string): Promise<Buffer | undefined> => this.blobs.get(digest);
}

async function signedBox(key?: SigningKey) {
  const signingKey = key ?? (await generateKeyPair());
  const box = boxManifest('v1');
  const sigs = await signManifest(signingKey, { reference: REF, descriptor: box.descriptor });
  const source = new StoredSignatures();
  source.store(box.descriptor.digest, sigs);
  return { key: signingKey, box, sigs, source };
}

describe('signManifest', () => {
  it('produces both formats, all content-addressed', async () => {
    const { box, sigs } = await signedBox();
    assert.equal(sigs.cosign.tag, cosignSignatureTag(box.descriptor.digest));
    for (const m of [sigs.cosign.manifest, sigs.bundle.manifest]) {
      assert.equal(m.digest, sha256(m.bytes));
      assert.equal(m.mediaType, OCI_MANIFEST);
    }
    for (const blob of [...sigs.cosign.blobs, ...sigs.bundle.blobs]) assert.equal(blob.digest, sha256(blob.bytes));
    assert.deepEqual(sigs.cosign.descriptor, { mediaType: OCI_MANIFEST, digest: sigs.cosign.manifest.digest, size: sigs.cosign.manifest.bytes.length, artifactType: 'application/vnd.oci.image.config.v1+json' });
    assert.equal(sigs.bundle.descriptor.artifactType, BUNDLE_V03_MEDIA_TYPE);
    const bundleManifest = JSON.parse(sigs.bundle.manifest.bytes.toString()) as { subject: Descriptor };
    assert.deepEqual(bundleManifest.subject, box.descriptor);
    // The payload is the exact cosign payload for this reference and digest.
    assert.ok(sigs.cosign.blobs.some((b) => b.bytes.equals(cosignPayload(REF, box.descriptor.digest))));
  });

  it('is deterministic except for the ECDSA signatures', async () => {
    const key = await generateKeyPair();
    const box = boxManifest('v1');
    const a = await signManifest(key, { reference: REF, descriptor: box.descriptor });
    const b = await signManifest(key, { reference: REF, descriptor: box.descriptor });
    const payloadA = a.cosign.blobs[1];
    const payloadB = b.cosign.blobs[1];
    assert.deepEqual(payloadA, payloadB);
    assert.deepEqual(a.cosign.blobs[0], b.cosign.blobs[0]); // config
    assert.deepEqual(a.bundle.blobs[0], b.bundle.blobs[0]); // empty config
    // Rebuilding the .sig manifest with A's signature over B's payload yields A's manifest bytes.
    const sigA = (JSON.parse(a.cosign.manifest.bytes.toString()) as { layers: Array<{ annotations: Record<string, string> }> }).layers[0]?.annotations[COSIGN_SIGNATURE_ANNOTATION] ?? '';
    assert.deepEqual(buildCosignSignatureManifest(payloadB?.bytes ?? Buffer.alloc(0), sigA).manifest.bytes, a.cosign.manifest.bytes);
    // Bundles differ only in the signature.
    const strip = (bytes: Buffer) => bytes.toString().replace(/"sig":"[^"]*"/, '"sig":""');
    assert.equal(strip(a.bundle.blobs[1]?.bytes ?? Buffer.alloc(0)), strip(b.bundle.blobs[1]?.bytes ?? Buffer.alloc(0)));
    assert.ok(strip(a.bundle.blobs[1]?.bytes ?? Buffer.alloc(0)).includes(inTotoStatement(REF, box.descriptor.digest).toString('base64')));
  });

  it('rejects bad references and digests', async () => {
    const key = await generateKeyPair();
    await assert.rejects(signManifest(key, { reference: 'python', descriptor: boxManifest('x').descriptor }));
    await assert.rejects(signManifest(key, { reference: REF, descriptor: { mediaType: OCI_MANIFEST, digest: 'sha256:zz', size: 1 } }));
  });
});

describe('verifyManifestSignatures', () => {
  it('verifies both formats of a signed Box', async () => {
    const { key, box, source } = await signedBox();
    const result = await verifyManifestSignatures({ digest: box.descriptor.digest, manifestBytes: box.bytes, publicKeys: [key.publicKey], source, require: ['cosign', 'bundle'] });
    assert.deepEqual(result, { ok: true, verified: ['cosign', 'bundle'], reasons: [], keyFingerprints: [key.fingerprint] });
  });

  it('fails an unsigned manifest', async () => {
    const key = await generateKeyPair();
    const box = boxManifest('unsigned');
    const result = await verifyManifestSignatures({ digest: box.descriptor.digest, publicKeys: [key.publicKey], source: new StoredSignatures() });
    assert.equal(result.ok, false);
    assert.deepEqual(result.verified, []);
    assert.equal(result.reasons[0], 'manifest is not signed');
    assert.ok(result.reasons.some((r) => r.startsWith('cosign: no signature under tag sha256-')));
    assert.ok(result.reasons.includes('bundle: no sigstore bundle referrer'));
  });

  it('fails with a tampered cosign payload even though the bundle is intact', async () => {
    const { key, box, sigs, source } = await signedBox();
    const payload = sigs.cosign.blobs[1];
    assert.ok(payload);
    source.blobs.set(payload.digest, Buffer.from(payload.bytes.toString().replace('python', 'pythom')));
    const result = await verifyManifestSignatures({ digest: box.descriptor.digest, publicKeys: [key.publicKey], source });
    assert.equal(result.ok, false);
    assert.deepEqual(result.verified, ['bundle']);
    assert.match(result.reasons.join('\n'), /^cosign: signature payload digest mismatch/m);
  });

  it('fails with a swapped signature (another Box signature copied under this tag)', async () => {
    const { key, box, source } = await signedBox();
    const other = boxManifest('other');
    const otherSigs = await signManifest(key, { reference: REF, descriptor: other.descriptor });
    source.tags.set(cosignSignatureTag(box.descriptor.digest), otherSigs.cosign.manifest.bytes);
    for (const blob of otherSigs.cosign.blobs) source.blobs.set(blob.digest, blob.bytes);
    const result = await verifyManifestSignatures({ digest: box.descriptor.digest, publicKeys: [key.publicKey], source });
    assert.equal(result.ok, false);
    assert.match(result.reasons.join('\n'), /cosign: payload signs sha256:[0-9a-f]+, not the expected manifest/);
  });

  it('fails with a tampered bundle', async () => {
    const { key, box, sigs, source } = await signedBox();
    const bundleBlob = sigs.bundle.blobs[1];
    assert.ok(bundleBlob);
    source.blobs.set(bundleBlob.digest, Buffer.from(bundleBlob.bytes.toString().replace('"sig":"M', '"sig":"N')));
    const result = await verifyManifestSignatures({ digest: box.descriptor.digest, publicKeys: [key.publicKey], source });
    assert.equal(result.ok, false);
    assert.deepEqual(result.verified, ['cosign']);
    assert.match(result.reasons.join('\n'), /^bundle: bundle digest mismatch/m);
  });

  it('fails with a foreign key, passes with rotated trusted keys', async () => {
    const { key, box, source } = await signedBox();
    const stranger = await generateKeyPair();
    const foreign = await verifyManifestSignatures({ digest: box.descriptor.digest, publicKeys: [stranger.publicKey], source });
    assert.equal(foreign.ok, false);
    assert.deepEqual(foreign.verified, []);
    assert.match(foreign.reasons.join('\n'), /cosign: .*does not verify with any trusted key/);
    assert.match(foreign.reasons.join('\n'), /bundle: .*untrusted key/);

    const rotated = await verifyManifestSignatures({ digest: box.descriptor.digest, publicKeys: [stranger.publicKey, key.publicKey], source });
    assert.equal(rotated.ok, true);
  });

  it('fails for an altered Box manifest', async () => {
    const { key, box, source } = await signedBox();
    // The bytes fetched do not hash to the digest being verified.
    const altered = Buffer.from(box.bytes.toString().replace('v1', 'v2'));
    const mismatch = await verifyManifestSignatures({ digest: box.descriptor.digest, manifestBytes: altered, publicKeys: [key.publicKey], source });
    assert.equal(mismatch.ok, false);
    assert.match(mismatch.reasons[0] ?? '', /does not match/);

    // The altered manifest under its own digest, with the original signatures copied over to it.
    const alteredDigest = sha256(altered);
    source.tags.set(cosignSignatureTag(alteredDigest), source.tags.get(cosignSignatureTag(box.descriptor.digest)) ?? Buffer.alloc(0));
    source.referrers.set(alteredDigest, source.referrers.get(box.descriptor.digest) ?? []);
    const copied = await verifyManifestSignatures({ digest: alteredDigest, manifestBytes: altered, publicKeys: [key.publicKey], source });
    assert.equal(copied.ok, false);
    assert.deepEqual(copied.verified, []);
    assert.match(copied.reasons.join('\n'), /cosign: payload signs/);
    assert.match(copied.reasons.join('\n'), /bundle: bundle referrer refers to/);
  });

  it('honours required formats and ignores unrelated referrers', async () => {
    const { key, box, sigs, source } = await signedBox();
    source.referrers.set(box.descriptor.digest, [{ mediaType: OCI_MANIFEST, digest: 'sha256:' + '0'.repeat(64), size: 10, artifactType: 'application/vnd.cncf.notary.signature' }]);
    const cosignOnly = await verifyManifestSignatures({ digest: box.descriptor.digest, publicKeys: [key.publicKey], source });
    assert.equal(cosignOnly.ok, true);
    assert.deepEqual(cosignOnly.verified, ['cosign']);
    const required = await verifyManifestSignatures({ digest: box.descriptor.digest, publicKeys: [key.publicKey], source, require: ['bundle'] });
    assert.equal(required.ok, false);

    // A referrer whose manifest bytes do not match the listed digest is rejected.
    source.referrers.set(box.descriptor.digest, [sigs.bundle.descriptor]);
    source.manifests.set(sigs.bundle.manifest.digest, Buffer.from(sigs.bundle.manifest.bytes.toString() + ' '));
    const bad = await verifyManifestSignatures({ digest: box.descriptor.digest, publicKeys: [key.publicKey], source });
    assert.equal(bad.ok, false);
    assert.match(bad.reasons.join('\n'), /content does not match its digest/);
  });
});
