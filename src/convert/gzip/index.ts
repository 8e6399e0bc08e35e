import { igzipCodec, igzipVersion } from './igzip.js';
import type { GzipCodec, GzipSpec } from './types.js';
import { zlibCodec } from './zlib.js';

export type { GzipCodec, GzipEncoder, GzipSpec } from './types.js';
export type { GzipWritten } from './output.js';
export { igzipCodec, igzipVersion } from './igzip.js';
export { looksIncompressible, zlibCodec } from './zlib.js';

/** Which gzip to use: igzip when it is installed (auto), or one of them by name. */
export type GzipPreference = 'auto' | 'igzip' | 'zlib';

/**
 * Deflate levels of Box layers: the fastest that compress like zlib level 1. Deflating is most of a conversion's
 * time, and higher levels cost several times the CPU for Boxes a few % smaller (bench/convert.ts). igzip's level 2
 * costs what its level 1 does and makes ~3% smaller layers, the size zlib's level 1 gives.
 */
export const ZLIB_LEVEL = 1;
export const IGZIP_LEVEL = 2;

/**
 * The codec for a preference. `igzip` when igzip is missing is an error that says how to get it; `auto` falls back
 * to Node's zlib. The Box's bytes depend on the codec (its name is in the Box's labels).
 */
export async function pickGzip(preference: GzipPreference = 'auto', igzipPath = 'igzip'): Promise<GzipCodec> {
  if (preference === 'zlib') return zlibCodec(ZLIB_LEVEL);
  const version = await igzipVersion(igzipPath);
  if (version !== undefined) return igzipCodec(igzipPath, version, IGZIP_LEVEL);
  if (preference === 'igzip') throw new Error(`gzip is set to igzip but ${igzipPath} cannot be run (Debian: apt-get install isal)`);
  return zlibCodec(ZLIB_LEVEL);
}

/** The codec a spec describes (a spec comes from `codec.spec`, resolved once, e.g. at start-up). */
export function gzipCodec(spec: GzipSpec): GzipCodec {
  return spec.kind === 'igzip' ? igzipCodec(spec.bin, spec.version, spec.level) : zlibCodec(spec.level);
}
