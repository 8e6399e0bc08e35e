import { createHash } from 'node:crypto';
import type { FileHandle } from 'node:fs/promises';
import type { GzipCodec, GzipEncoder } from './gzip/index.js';

/**
 * Uncompressed tar bytes per block handed to the gzip encoder. The zlib encoder makes each block a gzip member, so
 * blocks are cut at fixed offsets of the tar (the bytes depend only on the content, never on timing); 1 MiB keeps
 * deflate's 32 KiB window losses negligible.
 */
export const BLOCK_BYTES = 1024 * 1024;

export interface WrittenLayer {
  /** sha256 of the gzip bytes (the layer digest) and their size. */
  digest: string;
  size: number;
  /** sha256 of the tar (the diff_id) and its size. */
  diffId: string;
  tarBytes: number;
}

/**
 * Writes a tar stream as a gzip layer. The tar is built straight into block buffers (no copy, no re-read), hashed
 * on the way in, and handed to the codec's encoder block by block; blocks come back for reuse once encoded.
 */
export class GzipLayerWriter {
  private block: Buffer = Buffer.allocUnsafe(BLOCK_BYTES);
  private used = 0;
  /** Blocks the encoder is done with: a fresh 1 MiB buffer per block keeps the GC busy. */
  private readonly spare: Buffer[] = [];
  private readonly tarHash = createHash('sha256');
  private tarBytes = 0;

  private constructor(private readonly encoder: GzipEncoder) {}

  static async create(path: string, codec: GzipCodec): Promise<GzipLayerWriter> {
    return new GzipLayerWriter(await codec.encoder(path));
  }

  /** Appends bytes to the tar stream. */
  async write(data: Buffer): Promise<void> {
    let at = 0;
    while (at < data.length) {
      const n = Math.min(data.length - at, BLOCK_BYTES - this.used);
      data.copy(this.block, this.used, at, at + n);
      this.used += n;
      at += n;
      if (this.used === BLOCK_BYTES) await this.flushBlock();
    }
  }

  /** Appends zero bytes (tar padding and end blocks). */
  async zeros(count: number): Promise<void> {
    while (count > 0) {
      const n = Math.min(count, BLOCK_BYTES - this.used);
      this.block.fill(0, this.used, this.used + n);
      this.used += n;
      count -= n;
      if (this.used === BLOCK_BYTES) await this.flushBlock();
    }
  }

  /** Appends `size` bytes of `file` from `offset`, read straight into the block buffers. */
  async copyFrom(file: FileHandle, offset: number, size: number, what: string): Promise<void> {
    while (size > 0) {
      const want = Math.min(size, BLOCK_BYTES - this.used);
      const { bytesRead } = await file.read(this.block, this.used, want, offset);
      if (bytesRead === 0) throw new Error(`${what}: scratch file is shorter than expected`);
      this.used += bytesRead;
      offset += bytesRead;
      size -= bytesRead;
      if (this.used === BLOCK_BYTES) await this.flushBlock();
    }
  }

  private async flushBlock(): Promise<void> {
    const whole = this.block;
    const block = this.used === whole.length ? whole : whole.subarray(0, this.used);
    this.tarHash.update(block);
    this.tarBytes += block.length;
    this.block = this.spare.pop() ?? Buffer.allocUnsafe(BLOCK_BYTES);
    this.used = 0;
    await this.encoder.push(block, () => this.spare.push(whole));
  }

  /** Flushes the last block and finishes the gzip file. */
  async finish(): Promise<WrittenLayer> {
    if (this.used > 0 || this.tarBytes === 0) await this.flushBlock();
    const gz = await this.encoder.end();
    return { digest: gz.digest, size: gz.size, diffId: 'sha256:' + this.tarHash.digest('hex'), tarBytes: this.tarBytes };
  }

  /** Gives up: nothing the encoder started outlives the call. */
  async abort(): Promise<void> {
    await this.encoder.abort();
  }
}
