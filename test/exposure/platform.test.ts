import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BOX_PLATFORM, hasWasmEntry, pickPlatform } from '../../src/exposure/platform.js';
import { OCI_INDEX, OCI_MANIFEST } from '../../src/oci/mediatypes.js';
import type { Descriptor, ImageIndex, Platform } from '../../src/oci/types.js';

function entry(n: number, platform?: Platform): Descriptor {
  return { mediaType: OCI_MANIFEST, digest: `sha256:${String(n).repeat(64).slice(0, 64)}`, size: 100 + n, ...(platform ? { platform } : {}) };
}

function index(...manifests: Descriptor[]): ImageIndex {
  return { schemaVersion: 2, mediaType: OCI_INDEX, manifests };
}

const amd64 = entry(1, { os: 'linux', architecture: 'amd64' });
const arm64 = entry(2, { os: 'linux', architecture: 'arm64', variant: 'v8' });
const armv7 = entry(3, { os: 'linux', architecture: 'arm', variant: 'v7' });
const attestation = entry(4, { os: 'unknown', architecture: 'unknown' });

describe('exposure platform selection', () => {
  it('BOX_PLATFORM is wasip1/wasm', () => {
    assert.deepEqual(BOX_PLATFORM, { os: 'wasip1', architecture: 'wasm' });
  });

  it('picks the first preferred platform present, in preference order, not index order', () => {
    const idx = index(armv7, arm64, amd64);
    assert.equal(pickPlatform(idx, ['linux/amd64', 'linux/arm64']), amd64);
    assert.equal(pickPlatform(idx, ['linux/arm64', 'linux/amd64']), arm64);
  });

  it('matches a variant only when the preference names one', () => {
    const idx = index(armv7, arm64);
    assert.equal(pickPlatform(idx, ['linux/arm64/v8']), arm64);
    assert.equal(pickPlatform(idx, ['linux/arm64']), arm64);
    assert.equal(pickPlatform(idx, ['linux/arm/v6', 'linux/arm/v7']), armv7);
  });

  it('falls back to the first runnable entry, skipping attestations, Wasm entries and entries without platform', () => {
    const wasm = entry(5, { os: 'wasip1', architecture: 'wasm' });
    const idx = index(attestation, entry(6), wasm, armv7, amd64);
    assert.equal(pickPlatform(idx, ['linux/s390x']), armv7);
    assert.equal(pickPlatform(index(attestation, wasm), ['linux/amd64']), undefined);
    assert.equal(pickPlatform(index(), ['linux/amd64']), undefined);
  });

  it('an index with a Wasm entry of its own is recognised (wasip1, wasip2, wasi, or arch wasm)', () => {
    assert.equal(hasWasmEntry(index(amd64, arm64)), false);
    for (const platform of [
      { os: 'wasip1', architecture: 'wasm' },
      { os: 'wasip2', architecture: 'wasm32' },
      { os: 'wasi', architecture: 'wasm32' },
      { os: 'linux', architecture: 'wasm' },
    ]) {
      assert.equal(hasWasmEntry(index(amd64, entry(7, platform))), true, JSON.stringify(platform));
    }
    // A malformed index without manifests is not a crash.
    assert.equal(hasWasmEntry({ schemaVersion: 2 } as ImageIndex), false);
  });
});
