import { igzipCodec, igzipVersion } from './igzip.js';
import type { GzipCodec } from './types.js';
import { zlibCodec } from './zlib.js';

export type { GzipCodec, GzipEncoder } from './types.js';
export type { GzipWritten } from './output.js';
export { igzipCodec, igzipVersion } from './igzip.js';
export { looksIncompressible, zlibCodec } from './zlib.js';

/** Which gzip to use: igzip when it is installed (auto), or one of them by name. */
export type GzipPreference = 'auto' | 'igzip' | 'zlib';

/**
 * Deflate level of Box layers. Level 1 of either implementation: deflating is most of a conversion's time, and
 * higher levels cost several times the CPU for Boxes a few % smaller (bench/convert.ts).
 */
export const GZIP_LEVEL = 1;

/**
 * The codec for a preference. `igzip` when igzip is missing is an error that says how to get it; `auto` falls back
 * to Node's zlib. The Box's bytes depend on the codec (its name is in the Box's labels).
 */
export async function pickGzip(preference: GzipPreference = 'auto', igzipPath = 'igzip'): Promise<GzipCodec> {
  if (preference === 'zlib') return zlibCodec(GZIP_LEVEL);
  const version = await igzipVersion(igzipPath);
  if (version !== undefined) return igzipCodec(igzipPath, version, GZIP_LEVEL);
  if (preference === 'igzip') throw new Error(`gzip is set to igzip but ${igzipPath} cannot be run (Debian: apt-get install isal)`);
  return zlibCodec(GZIP_LEVEL);
}
