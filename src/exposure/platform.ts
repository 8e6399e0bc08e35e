import type { Descriptor, ImageIndex, Platform } from '../oci/types.js';

export const BOX_PLATFORM: Platform = { os: 'wasip1', architecture: 'wasm' };

function isWasm(p: Platform | undefined): boolean {
  return p?.architecture === 'wasm' || p?.os === 'wasip1' || p?.os === 'wasip2' || p?.os === 'wasi';
}

/** True when an index already carries a Wasm entry of its own; such images are left as they are. */
export function hasWasmEntry(index: ImageIndex): boolean {
  return (index.manifests ?? []).some((d) => isWasm(d.platform));
}

/**
 * The entry to convert: the first platform of `preference` present in the
 * index, else its first runnable entry (attestations and Wasm entries skipped).
 */
export function pickPlatform(index: ImageIndex, preference: readonly string[]): Descriptor | undefined {
  const candidates = (index.manifests ?? []).filter((d) => d.platform && d.platform.os !== 'unknown' && !isWasm(d.platform));
  for (const want of preference) {
    const [os, arch, variant] = want.split('/');
    const hit = candidates.find((d) => d.platform?.os === os && d.platform?.architecture === arch && (variant === undefined || d.platform?.variant === variant));
    if (hit) return hit;
  }
  return candidates[0];
}
