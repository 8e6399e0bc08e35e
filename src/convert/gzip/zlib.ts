import { availableParallelism } from 'node:os';
import { promisify } from 'node:util';
import { gzip, type ZlibOptions } from 'node:zlib';
import { HashedFile, type GzipWritten } from './output.js';
import type { GzipCodec, GzipEncoder } from './types.js';

const gzipAsync = promisify<Buffer, ZlibOptions, Buffer>(gzip);

/** Shannon entropy (bits per byte) above which a sample is taken for already-compressed data. */
const INCOMPRESSIBLE_BITS = 7.9;
const SAMPLE_BYTES = 16 * 1024;

function entropyBits(buf: Buffer, start: number, end: number): number {
  const counts = new Uint32Array(256);
  for (let i = start; i < end; i++) (counts[buf[i] as number] as number)++;
  const n = end - start;
  let bits = 0;
  for (let i = 0; i < 256; i++) {
    const c = counts[i] as number;
    if (c > 0) {
      const p = c / n;
      bits -= p * Math.log2(p);
    }
  }
  return bits;
}

/**
 * True when the block's start, middle and end all look like already-compressed data: deflating it costs ~20x
 * what storing it does and saves nothing. Judged from the bytes alone, so the choice is deterministic.
 */
export function looksIncompressible(block: Buffer): boolean {
  if (block.length < 4 * SAMPLE_BYTES) return false;
  for (const start of [0, (block.length - SAMPLE_BYTES) >> 1, block.length - SAMPLE_BYTES]) {
    if (entropyBits(block, start, start + SAMPLE_BYTES) < INCOMPRESSIBLE_BITS) return false;
  }
  return true;
}

/**
 * Each block becomes its own gzip member (RFC 1952 allows a file of several members; gzip, Go, containerd and
 * Node's zlib read them as one stream), so several blocks deflate at once on the libuv thread pool, one per core.
 * Members are cut where the caller cuts blocks (fixed offsets of the tar), so the bytes depend only on the content.
 */
class ZlibMembersEncoder implements GzipEncoder {
  private readonly inFlight: Array<{ job: Promise<Buffer>; release: () => void }> = [];
  private readonly maxInFlight = Math.max(2, availableParallelism() + 1);

  constructor(
    private readonly out: HashedFile,
    private readonly level: number,
  ) {}

  async push(block: Buffer, release: () => void): Promise<void> {
    const level = looksIncompressible(block) ? 0 : this.level;
    // One output chunk per member: fewer thread-pool round trips than zlib's 16 KiB default.
    const job = gzipAsync(block, { level, chunkSize: block.length + 64 * 1024 });
    job.catch(() => undefined); // awaited in order below; this keeps an early failure from going unhandled
    this.inFlight.push({ job, release });
    while (this.inFlight.length >= this.maxInFlight) await this.writeOldest();
  }

  private async writeOldest(): Promise<void> {
    const { job, release } = this.inFlight.shift() as { job: Promise<Buffer>; release: () => void };
    const member = await job;
    release();
    await this.out.append(member);
  }

  async end(): Promise<GzipWritten> {
    try {
      while (this.inFlight.length > 0) await this.writeOldest();
    } catch (err) {
      await this.abort();
      throw err;
    }
    return this.out.close();
  }

  async abort(): Promise<void> {
    await Promise.allSettled(this.inFlight.splice(0).map((f) => f.job));
    await this.out.discard();
  }
}

/** Node's own zlib: always there, ~6x slower than igzip when compressing. */
export function zlibCodec(level: number): GzipCodec {
  return {
    name: `zlib ${process.versions.zlib ?? '?'} level ${level}`,
    spec: { kind: 'zlib', level },
    encoder: async (path) => new ZlibMembersEncoder(await HashedFile.create(path), level),
  };
}
