import { EventEmitter } from 'node:events';
import { open, type FileHandle } from 'node:fs/promises';
import { Readable, Writable } from 'node:stream';

/**
 * A blob being fetched from upstream into a temp file. Any number of
 * readers stream from the file as it grows, so one upstream fetch serves a
 * whole herd and the first byte reaches clients as soon as it arrives. The
 * last byte is held back until the digest is verified: a corrupt blob ends
 * every reader with an error instead of a clean, wrong response.
 */
export class InflightBlob extends EventEmitter {
  /** Bytes received from upstream, and the part of them already in the temp file. */
  received = 0;
  written = 0;
  done = false;
  failure: Error | undefined;
  /**
   * The newest bytes received, as the buffers that came from upstream (oldest first, RECENT_BYTES or a little
   * more): a reader keeping up sends them from memory, without waiting for the file write or reading them back.
   */
  private recent: Array<{ start: number; buf: Buffer }> = [];
  private recentBytes = 0;

  constructor(
    readonly tmpPath: string,
    /** Size announced by the upstream, when it announced one. */
    readonly size: number | undefined,
  ) {
    super();
    this.setMaxListeners(0);
  }

  /**
   * Sink that appends to the temp file and reports progress to readers.
   * Chunks that queue up while a write is in flight go down in one writev,
   * so a fast upstream costs few syscalls and few wake-ups.
   */
  sink(fh: FileHandle): Writable {
    const append = (buffers: Buffer[], cb: (err?: Error | null) => void) => {
      const total = buffers.reduce((n, b) => n + b.length, 0);
      this.remember(buffers);
      this.received += total;
      this.emit('progress');
      fh.writev(buffers, this.written).then(
        ({ bytesWritten }) => {
          if (bytesWritten !== total) return cb(new Error(`short write to ${this.tmpPath}: ${bytesWritten} of ${total} bytes`));
          this.written += bytesWritten;
          this.emit('progress');
          cb();
        },
        (err: Error) => cb(err),
      );
    };
    return new Writable({
      highWaterMark: 4 << 20,
      write: (chunk: Buffer, _enc, cb) => append([chunk], cb),
      writev: (chunks, cb) => append(chunks.map((c) => c.chunk as Buffer), cb),
    });
  }

  private remember(buffers: Buffer[]): void {
    let at = this.received;
    for (const buf of buffers) {
      this.recent.push({ start: at, buf });
      at += buf.length;
      this.recentBytes += buf.length;
    }
    while (this.recent.length > 1 && this.recentBytes - (this.recent[0] as { buf: Buffer }).buf.length >= RECENT_BYTES) {
      this.recentBytes -= (this.recent.shift() as { buf: Buffer }).buf.length;
    }
  }

  /** Bytes [pos, limit) from memory, at most `max` of them, when they are all still there; else undefined. */
  fromMemory(pos: number, limit: number, max: number): Buffer[] | undefined {
    const first = this.recent[0];
    if (!first || pos < first.start || limit > this.received) return undefined;
    const out: Buffer[] = [];
    const want = Math.min(limit, pos + max);
    for (const { start, buf } of this.recent) {
      const end = start + buf.length;
      if (end <= pos) continue;
      if (start >= want) break;
      out.push(buf.subarray(Math.max(0, pos - start), Math.min(buf.length, want - start)));
    }
    return out;
  }

  finish(): void {
    this.done = true;
    this.emit('progress');
  }

  fail(err: Error): void {
    this.failure = err;
    this.recent = [];
    this.recentBytes = 0;
    this.emit('progress');
  }

  /** A reader over [start, end] (inclusive) that follows the file as it grows. */
  reader(range?: { start: number; end: number }): Readable {
    return new TailReader(this, range?.start ?? 0, range === undefined ? Infinity : range.end + 1);
  }
}

/**
 * Bytes per read of a tail reader. Small: a herd has one reader per client, each holding a chunk or two, and the
 * pace is the upstream's anyway (20 readers of 1 MiB chunks peaked ~40 MiB higher than of 256 KiB ones).
 */
const TAIL_READ_BYTES = 256 * 1024;
/**
 * How much of the newest upstream data an in-flight blob keeps in memory for readers at the front: more than the
 * sink queues for the file (4 MiB), so such a reader never waits on a file write.
 */
const RECENT_BYTES = 8 * 1024 * 1024;

class TailReader extends Readable {
  private fh: FileHandle | undefined;
  private waiting = false;
  private readonly onProgress = () => {
    if (this.waiting) {
      this.waiting = false;
      this.pump();
    }
  };

  constructor(
    private readonly blob: InflightBlob,
    private pos: number,
    private readonly end: number,
  ) {
    super({ highWaterMark: TAIL_READ_BYTES });
    blob.on('progress', this.onProgress);
  }

  override _construct(cb: (err?: Error | null) => void): void {
    // The fd stays valid after the temp file is renamed into the store.
    open(this.blob.tmpPath, 'r').then(
      (fh) => {
        this.fh = fh;
        cb();
      },
      (err: Error) => cb(err),
    );
  }

  override _read(): void {
    this.pump();
  }

  private pump(): void {
    const b = this.blob;
    if (b.failure) {
      this.destroy(b.failure);
      return;
    }
    const available = b.done ? b.received : b.received - 1;
    const limit = Math.min(available, this.end);
    if (this.pos >= limit) {
      if (b.done || this.pos >= this.end) this.push(null);
      else this.waiting = true;
      return;
    }
    const fresh = b.fromMemory(this.pos, limit, TAIL_READ_BYTES);
    if (fresh) {
      // Keeping up with the upstream: its own buffers, no read back. _read asks again for more.
      for (const piece of fresh) {
        this.pos += piece.length;
        this.push(piece);
      }
      return;
    }
    // Behind the bytes in memory: from the file, as far as it is written.
    const fileLimit = Math.min(limit, b.written);
    if (this.pos >= fileLimit) {
      this.waiting = true;
      return;
    }
    const len = Math.min(fileLimit - this.pos, TAIL_READ_BYTES);
    const buf = Buffer.allocUnsafe(len);
    (this.fh as FileHandle).read(buf, 0, len, this.pos).then(
      ({ bytesRead }) => {
        this.pos += bytesRead;
        this.push(bytesRead === len ? buf : buf.subarray(0, bytesRead));
      },
      (err: Error) => this.destroy(err),
    );
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    this.blob.off('progress', this.onProgress);
    const fh = this.fh;
    this.fh = undefined;
    if (fh) fh.close().then(() => cb(err), () => cb(err));
    else cb(err);
  }
}
