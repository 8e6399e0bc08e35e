import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { sha256 } from '../../src/oci/digest.js';
import { OCI_CONFIG, OCI_MANIFEST } from '../../src/oci/mediatypes.js';
import type { BlobGetter } from '../../src/sign/common.js';
import {
  COSIGN_SIGNATURE_ANNOTATION,
  COSIGN_SIMPLESIGNING,
  buildCosignSignatureManifest,
  cosignPayload,
  cosignSignatureTag,
  isDockerReference,
  parseCosignPayload,
  signCosign,
  verifyCosign,
} from '../../src/sign/cosign.js';
import { generateKeyPair } from '../../src/sign/keys.js';
import { openssl, tempDir } from './helpers.js';

const DIGEST = 'sha256:' + 'ab'.repeat(32);
const OTHER_DIGEST = 'sha256:' + 'cd'.repeat(32);
const REF = '127.0.0.1:5000/library/alpine';

function blobGetter(blobs: Array<{ digest: string; bytes: Buffer }>): BlobGetter {
  const map = new Map(blobs.map((b) => [b.digest, b.bytes]));
  return async (digest) => map.get(digest);
}

interface Layer {
  mediaType: string;
  size: number;
  digest: string;
  annotations: Record<string, string>;
}

function layerOf(manifest: Buffer): Layer {
  const layer = (JSON.parse(manifest.toString()) as { layers: Layer[] }).layers[0];
  assert.ok(layer);
  return layer;
}

describe('cosign payload', () => {
  it('has exactly the bytes cosign writes', () => {
    assert.equal(
      cosignPayload(REF, DIGEST).toString(),
      `{"critical":{"identity":{"docker-reference":"127.0.0.1:5000/library/alpine"},"image":{"docker-manifest-digest":"${DIGEST}"},"type":"cosign container image signature"},"optional":null}`,
    );
  });

  it('sorts optional annotations and escapes like Go', () => {
    const payload = cosignPayload('registry.example.com/a/b', DIGEST, { z: '1', a: '<&>' });
    assert.match(payload.toString(), /"optional":\{"a":"\\u003c\\u0026\\u003e","z":"1"\}\}$/);
    assert.deepEqual(parseCosignPayload(payload)?.optional, { a: '<&>', z: '1' });
  });

  it('rejects references cosign could not parse and non-sha256 digests', () => {
    for (const bad of ['alpine', 'library/alpine', 'Host.example/Upper', 'host.example/', '/repo']) {
      assert.equal(isDockerReference(bad), false, bad);
      assert.throws(() => cosignPayload(bad, DIGEST));
    }
    for (const good of ['localhost/a', 'localhost:5000/a/b', 'reg.example.com/x-y/z_1', '[::1]:5000/a']) {
      assert.equal(isDockerReference(good), true, good);
    }
    assert.throws(() => cosignPayload(REF, 'sha512:abc'));
  });

  it('names the signature tag sha256-<hex>.sig', () => {
    assert.equal(cosignSignatureTag(DIGEST), `sha256-${'ab'.repeat(32)}.sig`);
    assert.throws(() => cosignSignatureTag('latest'));
  });
});

describe('cosign signature manifest', () => {
  it('is an OCI image manifest with the go-containerregistry config and one simple-signing layer', () => {
    const payload = cosignPayload(REF, DIGEST);
    const { manifest, blobs } = buildCosignSignatureManifest(payload, 'c2ln');
    assert.equal(manifest.mediaType, OCI_MANIFEST);
    assert.equal(manifest.digest, sha256(manifest.bytes));
    const config = blobs.find((b) => b.mediaType === OCI_CONFIG);
    assert.ok(config);
    assert.equal(
      config.bytes.toString(),
      `{"architecture":"","created":"0001-01-01T00:00:00Z","history":[{"created":"0001-01-01T00:00:00Z"}],"os":"","rootfs":{"type":"layers","diff_ids":["${sha256(payload)}"]},"config":{}}`,
    );
    assert.equal(
      manifest.bytes.toString(),
      `{"schemaVersion":2,"mediaType":"${OCI_MANIFEST}","config":{"mediaType":"${OCI_CONFIG}","size":${config.bytes.length},"digest":"${config.digest}"},` +
        `"layers":[{"mediaType":"${COSIGN_SIMPLESIGNING}","size":${payload.length},"digest":"${sha256(payload)}","annotations":{"${COSIGN_SIGNATURE_ANNOTATION}":"c2ln"}}]}`,
    );
    for (const blob of blobs) assert.equal(blob.digest, sha256(blob.bytes));
    assert.deepEqual(
      blobs.find((b) => b.mediaType === COSIGN_SIMPLESIGNING)?.bytes,
      payload,
    );
    // Deterministic: same inputs, same bytes.
    assert.deepEqual(buildCosignSignatureManifest(payload, 'c2ln').manifest.bytes, manifest.bytes);
  });
});

describe('cosign signatures verify independently with openssl', () => {
  it('openssl dgst -sha256 -verify prints Verified OK for the stored payload and signature', async () => {
    const dir = await tempDir();
    const key = await generateKeyPair();
    const payload = cosignPayload(REF, DIGEST);
    const { manifest, blobs } = buildCosignSignatureManifest(payload, await signCosign(key, payload));

    // Take everything from what would be stored: the layer annotation and the payload blob.
    const layer = layerOf(manifest.bytes);
    const stored = blobs.find((b) => b.digest === layer.digest);
    assert.ok(stored);
    const sigDer = Buffer.from(layer.annotations[COSIGN_SIGNATURE_ANNOTATION] ?? '', 'base64');
    assert.ok(sigDer.length >= 8 && sigDer.length <= 72);
    await writeFile(join(dir, 'cosign.pub'), key.publicKey.pem);
    await writeFile(join(dir, 'sig.der'), sigDer);
    await writeFile(join(dir, 'payload.json'), stored.bytes);
    const ok = await openssl(['dgst', '-sha256', '-verify', join(dir, 'cosign.pub'), '-signature', join(dir, 'sig.der'), join(dir, 'payload.json')]);
    assert.equal(ok.code, 0, ok.output);
    assert.equal(ok.output.trim(), 'Verified OK');

    // And openssl rejects a tampered payload.
    await writeFile(join(dir, 'tampered.json'), cosignPayload(REF, OTHER_DIGEST));
    const bad = await openssl(['dgst', '-sha256', '-verify', join(dir, 'cosign.pub'), '-signature', join(dir, 'sig.der'), join(dir, 'tampered.json')]);
    assert.notEqual(bad.code, 0);
    assert.match(bad.output, /Verification failure/);

    // Signatures are randomized but all verify: several in a row.
    for (let i = 0; i < 5; i++) {
      await writeFile(join(dir, 'sig.der'), Buffer.from(await signCosign(key, payload), 'base64'));
      const again = await openssl(['dgst', '-sha256', '-verify', join(dir, 'cosign.pub'), '-signature', join(dir, 'sig.der'), join(dir, 'payload.json')]);
      assert.equal(again.output.trim(), 'Verified OK');
    }
  });
});

describe('verifyCosign', () => {
  async function signed() {
    const key = await generateKeyPair();
    const payload = cosignPayload(REF, DIGEST);
    const signature = await signCosign(key, payload);
    const built = buildCosignSignatureManifest(payload, signature);
    return { key, payload, signature, ...built };
  }

  it('accepts a good signature and names the key', async () => {
    const { key, manifest, blobs } = await signed();
    const result = await verifyCosign(manifest.bytes, blobGetter(blobs), [key.publicKey], DIGEST);
    assert.deepEqual(result, { ok: true, keyFingerprint: key.fingerprint });
  });

  it('accepts a signature by any of several trusted keys (rotation)', async () => {
    const { key, manifest, blobs } = await signed();
    const newer = await generateKeyPair();
    const result = await verifyCosign(manifest.bytes, blobGetter(blobs), [newer.publicKey, key.publicKey], DIGEST);
    assert.equal(result.ok, true);
  });

  it('rejects a tampered payload blob (descriptor unchanged)', async () => {
    const { key, manifest, blobs, payload } = await signed();
    const tampered = Buffer.from(payload.toString().replace('alpine', 'alpina'));
    const getBlob: BlobGetter = async (d) => (d === sha256(payload) ? tampered : blobGetter(blobs)(d));
    const result = await verifyCosign(manifest.bytes, getBlob, [key.publicKey], DIGEST);
    assert.equal(result.ok, false);
    assert.match(!result.ok ? result.reason : '', /digest mismatch/);
  });

  it('rejects a tampered payload with a matching descriptor (signature no longer covers it)', async () => {
    const { key, signature } = await signed();
    const forged = cosignPayload(REF, OTHER_DIGEST);
    const rebuilt = buildCosignSignatureManifest(forged, signature);
    const result = await verifyCosign(rebuilt.manifest.bytes, blobGetter(rebuilt.blobs), [key.publicKey], OTHER_DIGEST);
    assert.equal(result.ok, false);
    assert.match(!result.ok ? result.reason : '', /does not verify with any trusted key/);
  });

  it('rejects a swapped signature (valid signature of another payload by the same key)', async () => {
    const { key, payload } = await signed();
    const otherSig = await signCosign(key, cosignPayload(REF, OTHER_DIGEST));
    const swapped = buildCosignSignatureManifest(payload, otherSig);
    const result = await verifyCosign(swapped.manifest.bytes, blobGetter(swapped.blobs), [key.publicKey], DIGEST);
    assert.equal(result.ok, false);
    assert.match(!result.ok ? result.reason : '', /does not verify/);
  });

  it('rejects garbage in the signature annotation', async () => {
    const { key, payload } = await signed();
    const junk = buildCosignSignatureManifest(payload, Buffer.from('not a signature').toString('base64'));
    const result = await verifyCosign(junk.manifest.bytes, blobGetter(junk.blobs), [key.publicKey], DIGEST);
    assert.equal(result.ok, false);
  });

  it('rejects a signature by a key that is not trusted', async () => {
    const { manifest, blobs } = await signed();
    const stranger = await generateKeyPair();
    const result = await verifyCosign(manifest.bytes, blobGetter(blobs), [stranger.publicKey], DIGEST);
    assert.equal(result.ok, false);
    assert.match(!result.ok ? result.reason : '', /does not verify with any trusted key/);
    assert.equal((await verifyCosign(manifest.bytes, blobGetter(blobs), [], DIGEST)).ok, false);
  });

  it('rejects a valid signature presented for a different (altered) manifest digest', async () => {
    const { key, manifest, blobs } = await signed();
    const result = await verifyCosign(manifest.bytes, blobGetter(blobs), [key.publicKey], OTHER_DIGEST);
    assert.equal(result.ok, false);
    assert.match(!result.ok ? result.reason : '', new RegExp(`payload signs ${DIGEST}, not the expected manifest ${OTHER_DIGEST}`));
  });

  it('rejects missing blobs and malformed manifests', async () => {
    const { key, manifest } = await signed();
    const missing = await verifyCosign(manifest.bytes, async () => undefined, [key.publicKey], DIGEST);
    assert.match(!missing.ok ? missing.reason : '', /missing/);
    for (const bad of ['not json', '{"schemaVersion":2,"layers":[]}', '{"schemaVersion":2,"mediaType":"text/plain","layers":[]}']) {
      const result = await verifyCosign(Buffer.from(bad), async () => undefined, [key.publicKey], DIGEST);
      assert.equal(result.ok, false, bad);
    }
  });
});
