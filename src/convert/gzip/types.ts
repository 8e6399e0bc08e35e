import type { GzipWritten } from './output.js';

/**
 * Turns a layer's tar, handed over in blocks and in order, into a gzip file. The block stays the caller's: the
 * encoder calls `release` once it no longer reads it, so the caller can refill it.
 */
export interface GzipEncoder {
  /** Resolves when the encoder is ready for the next block (backpressure). */
  push(block: Buffer, release: () => void): Promise<void>;
  /** No more blocks: resolves once every gzip byte is on disk. */
  end(): Promise<GzipWritten>;
  /** Gives up; nothing outlives the call. */
  abort(): Promise<void>;
}

/** A resolved codec in plain data (structured-clone safe): what a conversion worker rebuilds it from. */
export type GzipSpec = { kind: 'igzip'; bin: string; version: string; level: number } | { kind: 'zlib'; level: number };

/** One gzip implementation (for writing; layers are always read with Node's zlib). */
export interface GzipCodec {
  /** What made the bytes, e.g. "igzip 2.30.0 level 1" (Boxes record it: the bytes depend on it). */
  readonly name: string;
  readonly spec: GzipSpec;
  encoder(path: string): Promise<GzipEncoder>;
}

