import { createHash } from 'node:crypto';
import { open, type FileHandle } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { promisify } from 'node:util';
import { gzip, type ZlibOptions } from 'node:zlib';

const gzipAsync = promisify<Buffer, ZlibOptions, Buffer>(gzip);

/**
 * Uncompressed tar bytes per gzip member. Members are cut at fixed offsets of the tar stream, so the output
 * depends only on the content, never on timing; 1 MiB keeps deflate's 32 KiB window losses negligible.
 */
export const MEMBER_BYTES = 1024 * 1024;

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

export interface WrittenLayer {
  /** sha256 of the gzip bytes (the layer digest) and their size. */
  digest: string;
  size: number;
  /** sha256 of the tar (the diff_id) and its size. */
  diffId: string;
  tarBytes: number;
}

/**
 * Writes a tar stream as gzip: the tar is cut into MEMBER_BYTES blocks, each deflated as its own gzip member
 * (RFC 1952 allows a file of several members; gzip, Go, containerd and Node's zlib read them as one stream).
 * Independent members let several blocks deflate at once on the libuv thread pool (one per core), which is where
 * a conversion spends most of its time. The tar is built straight into the block buffers (no copy, no re-read)
 * and hashed on the way in; the members are hashed and written in order.
 */
export class GzipLayerWriter {
  private block: Buffer = Buffer.allocUnsafe(MEMBER_BYTES);
  private used = 0;
  private readonly inFlight: Array<{ job: Promise<Buffer>; block: Buffer }> = [];
  /** Blocks whose member is written, reused: a fresh 1 MiB buffer per block keeps the GC busy. */
  private readonly spare: Buffer[] = [];
  private readonly maxInFlight = Math.max(2, availableParallelism() + 1);
  private readonly tarHash = createHash('sha256');
  private readonly gzHash = createHash('sha256');
  private tarBytes = 0;
  private gzBytes = 0;
  private position = 0;

  private constructor(
    private readonly out: FileHandle,
    private readonly level: number,
  ) {}

  static async create(path: string, level: number): Promise<GzipLayerWriter> {
    return new GzipLayerWriter(await open(path, 'w'), level);
  }

  /** Appends bytes to the tar stream. */
  async write(data: Buffer): Promise<void> {
    let at = 0;
    while (at < data.length) {
      const n = Math.min(data.length - at, MEMBER_BYTES - this.used);
      data.copy(this.block, this.used, at, at + n);
      this.used += n;
      at += n;
      if (this.used === MEMBER_BYTES) await this.flushBlock();
    }
  }

  /** Appends zero bytes (tar padding and end blocks). */
  async zeros(count: number): Promise<void> {
    while (count > 0) {
      const n = Math.min(count, MEMBER_BYTES - this.used);
      this.block.fill(0, this.used, this.used + n);
      this.used += n;
      count -= n;
      if (this.used === MEMBER_BYTES) await this.flushBlock();
    }
  }

  /** Appends `size` bytes of `file` from `offset`, read straight into the block buffers. */
  async copyFrom(file: FileHandle, offset: number, size: number, what: string): Promise<void> {
    while (size > 0) {
      const want = Math.min(size, MEMBER_BYTES - this.used);
      const { bytesRead } = await file.read(this.block, this.used, want, offset);
      if (bytesRead === 0) throw new Error(`${what}: scratch file is shorter than expected`);
      this.used += bytesRead;
      offset += bytesRead;
      size -= bytesRead;
      if (this.used === MEMBER_BYTES) await this.flushBlock();
    }
  }

  private async flushBlock(): Promise<void> {
    const block = this.used === this.block.length ? this.block : this.block.subarray(0, this.used);
    this.tarHash.update(block);
    this.tarBytes += block.length;
    const level = looksIncompressible(block) ? 0 : this.level;
    // One output chunk per member: fewer thread-pool round trips than zlib's 16 KiB default.
    const job = gzipAsync(block, { level, chunkSize: block.length + 64 * 1024 });
    job.catch(() => undefined); // awaited in order below; this keeps an early failure from going unhandled
    this.inFlight.push({ job, block: this.block });
    this.block = this.spare.pop() ?? Buffer.allocUnsafe(MEMBER_BYTES);
    this.used = 0;
    while (this.inFlight.length >= this.maxInFlight) await this.writeOldest();
  }

  private async writeOldest(): Promise<void> {
    const { job, block } = this.inFlight.shift() as { job: Promise<Buffer>; block: Buffer };
    const member = await job;
    this.spare.push(block);
    this.gzHash.update(member);
    this.gzBytes += member.length;
    let done = 0;
    while (done < member.length) {
      const { bytesWritten } = await this.out.write(member, done, member.length - done, this.position);
      done += bytesWritten;
      this.position += bytesWritten;
    }
  }

  /** Flushes the last block and closes the file. */
  async finish(): Promise<WrittenLayer> {
    try {
      if (this.used > 0 || this.tarBytes === 0) await this.flushBlock();
      while (this.inFlight.length > 0) await this.writeOldest();
    } finally {
      await this.out.close();
    }
    return { digest: 'sha256:' + this.gzHash.digest('hex'), size: this.gzBytes, diffId: 'sha256:' + this.tarHash.digest('hex'), tarBytes: this.tarBytes };
  }

  /** Gives up: waits for the in-flight members (so none outlives the writer) and closes the file. */
  async abort(): Promise<void> {
    await Promise.allSettled(this.inFlight.splice(0).map((f) => f.job));
    await this.out.close().catch(() => undefined);
  }
}
