import { createHash } from 'node:crypto';
import { open, type FileHandle } from 'node:fs/promises';

/** A gzip layer's bytes as written: the layer digest and size. */
export interface GzipWritten {
  digest: string;
  size: number;
}

/** Appends bytes to a new file in order, hashing them on the way (the layer digest without a re-read). */
export class HashedFile {
  private readonly hash = createHash('sha256');
  private position = 0;
  private constructor(private readonly handle: FileHandle) {}

  static async create(path: string): Promise<HashedFile> {
    return new HashedFile(await open(path, 'w'));
  }

  async append(bytes: Buffer): Promise<void> {
    this.hash.update(bytes);
    let done = 0;
    while (done < bytes.length) {
      const { bytesWritten } = await this.handle.write(bytes, done, bytes.length - done, this.position);
      done += bytesWritten;
      this.position += bytesWritten;
    }
  }

  async close(): Promise<GzipWritten> {
    await this.handle.close();
    return { digest: 'sha256:' + this.hash.digest('hex'), size: this.position };
  }

  async discard(): Promise<void> {
    await this.handle.close().catch(() => undefined);
  }
}
