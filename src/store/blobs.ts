import { createReadStream, createWriteStream, type ReadStream } from 'node:fs';
import { mkdir, open, readdir, readFile, rename, rm, stat, unlink } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { pipeline } from 'node:stream/promises';
import { Readable } from 'node:stream';
import { DigestMismatchError, DigestVerifier, isDigest, sha256 } from '../oci/digest.js';
import { evictions } from '../ops/metrics.js';
import type { Logger } from '../ops/log.js';
import { StorePaths } from './paths.js';

interface Entry {
  size: number;
  /** Monotonic use counter; larger is more recent. */
  used: number;
}

export interface BlobStoreOptions {
  maxBytes?: number;
  logger: Logger;
}

/**
 * Content-addressed blob store on local disk. Every write is verified against
 * its digest and lands by atomic rename, so a path under blobs/ always holds
 * exactly the bytes its name promises. An in-memory index of sizes and use
 * order drives `stat` (no syscalls on the hot path) and LRU eviction; blobs
 * being read are pinned and never evicted.
 */
export class BlobStore {
  readonly paths: StorePaths;
  private readonly index = new Map<string, Entry>();
  private readonly pins = new Map<string, number>();
  private totalBytes = 0;
  private clock = 0;
  private readonly maxBytes: number | undefined;
  private readonly logger: Logger;

  constructor(root: string, opts: BlobStoreOptions) {
    this.paths = new StorePaths(root);
    this.maxBytes = opts.maxBytes;
    this.logger = opts.logger;
  }

  /** Creates the layout, removes leftovers of interrupted writes, indexes what is cached. */
  async init(): Promise<void> {
    await rm(this.paths.tmpDir, { recursive: true, force: true });
    await mkdir(this.paths.tmpDir, { recursive: true });
    await mkdir(this.paths.blobsDir, { recursive: true });
    const found: Array<{ digest: string; size: number; mtime: number }> = [];
    for (const prefix of await readdir(this.paths.blobsDir)) {
      const dir = join(this.paths.blobsDir, prefix);
      for (const hex of await readdir(dir).catch(() => [] as string[])) {
        const digest = `sha256:${hex}`;
        if (!isDigest(digest)) continue;
        const st = await stat(join(dir, hex)).catch(() => undefined);
        if (st?.isFile()) found.push({ digest, size: st.size, mtime: st.mtimeMs });
      }
    }
    // Oldest first, so restart keeps an approximate LRU order.
    found.sort((a, b) => a.mtime - b.mtime);
    for (const f of found) this.track(f.digest, f.size);
    this.logger.info({ blobs: this.index.size, bytes: this.totalBytes }, 'blob store ready');
  }

  get size(): number {
    return this.totalBytes;
  }

  stat(digest: string): { size: number } | undefined {
    const e = this.index.get(digest);
    return e ? { size: e.size } : undefined;
  }

  has(digest: string): boolean {
    return this.index.has(digest);
  }

  pathOf(digest: string): string {
    return this.paths.blob(digest);
  }

  async readBuffer(digest: string): Promise<Buffer | undefined> {
    if (!this.index.has(digest)) return undefined;
    this.touch(digest);
    try {
      return await readFile(this.paths.blob(digest));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
        this.forget(digest);
        return undefined;
      }
      throw err;
    }
  }

  /**
   * Opens a pinned read stream; the pin is released when the stream closes.
   * Returns undefined if the blob is not (or no longer) cached.
   */
  openRead(digest: string, range?: { start: number; end: number }): ReadStream | undefined {
    if (!this.index.has(digest)) return undefined;
    this.touch(digest);
    this.pin(digest);
    const stream = createReadStream(this.paths.blob(digest), { ...range, highWaterMark: 1 << 20 });
    stream.once('close', () => this.unpin(digest));
    stream.once('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') this.forget(digest);
    });
    return stream;
  }

  /** Stores bytes already in memory (manifests), verified against `digest`. */
  async putBuffer(digest: string, bytes: Buffer): Promise<void> {
    const actual = sha256(bytes);
    if (actual !== digest) throw new DigestMismatchError(digest, actual);
    if (this.index.has(digest)) return;
    const tmp = this.tmpPath();
    const fh = await open(tmp, 'w');
    try {
      await fh.writeFile(bytes);
    } finally {
      await fh.close();
    }
    await this.commit(tmp, digest, bytes.length);
  }

  /** Streams `source` to the store, verifying the digest; nothing lands on mismatch. */
  async putStream(digest: string, source: Readable): Promise<number> {
    const writer = this.createWriter(digest);
    try {
      await pipeline(source, writer.verifier, createWriteStream(writer.tmpPath));
    } catch (err) {
      await writer.abort();
      throw err;
    }
    return writer.commit();
  }

  /**
   * A temp file plus verifier for callers that need to observe the write as
   * it progresses (the pull-through blob fetch serves readers from the temp
   * file while it grows).
   */
  createWriter(digest: string): BlobWriter {
    return new BlobWriter(this, digest, this.tmpPath());
  }

  /** @internal used by BlobWriter */
  async commit(tmp: string, digest: string, size: number): Promise<number> {
    const dest = this.paths.blob(digest);
    await mkdir(dirname(dest), { recursive: true });
    await rename(tmp, dest);
    if (!this.index.has(digest)) this.track(digest, size);
    this.touch(digest);
    await this.evict();
    return size;
  }

  async remove(digest: string): Promise<void> {
    if (this.isPinned(digest)) return;
    await unlink(this.paths.blob(digest)).catch(() => undefined);
    this.forget(digest);
  }

  pin(digest: string): void {
    this.pins.set(digest, (this.pins.get(digest) ?? 0) + 1);
  }

  unpin(digest: string): void {
    const n = (this.pins.get(digest) ?? 1) - 1;
    if (n <= 0) this.pins.delete(digest);
    else this.pins.set(digest, n);
  }

  isPinned(digest: string): boolean {
    return this.pins.has(digest);
  }

  private tmpPath(): string {
    return join(this.paths.tmpDir, randomUUID());
  }

  private track(digest: string, size: number): void {
    this.index.set(digest, { size, used: ++this.clock });
    this.totalBytes += size;
  }

  private forget(digest: string): void {
    const e = this.index.get(digest);
    if (!e) return;
    this.index.delete(digest);
    this.totalBytes -= e.size;
  }

  private touch(digest: string): void {
    const e = this.index.get(digest);
    if (!e) return;
    // Map keeps insertion order: re-inserting makes iteration order the LRU order.
    this.index.delete(digest);
    e.used = ++this.clock;
    this.index.set(digest, e);
  }

  /** Drops least recently used, unpinned blobs until under maxBytes. */
  private async evict(): Promise<void> {
    if (this.maxBytes === undefined || this.totalBytes <= this.maxBytes) return;
    for (const [digest] of this.index) {
      if (this.totalBytes <= this.maxBytes) break;
      if (this.isPinned(digest)) continue;
      this.forget(digest);
      evictions.inc();
      await unlink(this.paths.blob(digest)).catch(() => undefined);
      this.logger.debug({ digest }, 'evicted blob');
    }
  }
}

export class BlobWriter {
  readonly verifier: DigestVerifier;
  constructor(
    private readonly store: BlobStore,
    readonly digest: string,
    readonly tmpPath: string,
  ) {
    this.verifier = new DigestVerifier(digest);
  }

  /** Moves the verified temp file into place. Call only after the verifier finished cleanly. */
  commit(): Promise<number> {
    return this.store.commit(this.tmpPath, this.digest, this.verifier.bytes);
  }

  async abort(): Promise<void> {
    await unlink(this.tmpPath).catch(() => undefined);
  }
}
