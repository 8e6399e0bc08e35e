// fs.createReadStream / createWriteStream: npm's readable-stream over a file descriptor (fs.ts loads this on
// first use).
import { Buffer } from 'buffer';
import { Readable, Writable } from 'stream';
import { check, openSync, pathOf, writeAll, type Options, type PathLike } from './fs.js';
import { os } from './quickjs.js';

type StreamOptions = { encoding?: BufferEncoding; flags?: string; flag?: string; mode?: number; start?: number; end?: number; highWaterMark?: number; fd?: number; autoClose?: boolean };

function streamOptions(o: Options | StreamOptions): StreamOptions {
  return typeof o === 'string' ? { encoding: o } : ((o ?? {}) as StreamOptions);
}

export class ReadStream extends Readable {
  readonly path: string;
  bytesRead = 0;
  fd = -1;
  private position: number;
  private readonly end: number;
  private readonly options: StreamOptions;
  constructor(path: PathLike, options?: Options | StreamOptions) {
    const o = streamOptions(options);
    super({ highWaterMark: o.highWaterMark ?? 64 * 1024, ...(o.encoding ? { encoding: o.encoding } : {}) });
    this.path = pathOf(path);
    this.options = o;
    this.position = o.start ?? 0;
    this.end = o.end ?? Infinity;
  }
  // Opened on a later turn, as Node does: a missing file is an 'error' event, not a throw.
  override _construct(cb: (err?: Error | null) => void): void {
    try {
      this.fd = this.options.fd ?? openSync(this.path, this.options.flags ?? this.options.flag ?? 'r');
      if (this.options.start !== undefined) check(os.seek(this.fd, this.options.start, os.SEEK_SET), 'read');
    } catch (err) {
      cb(err as Error);
      return;
    }
    cb();
    this.emit('open', this.fd);
    this.emit('ready');
  }
  override _read(size: number): void {
    const want = Math.min(size, this.end - this.position + 1);
    if (want <= 0) {
      this.push(null);
      return;
    }
    const chunk = Buffer.allocUnsafe(want);
    let n: number;
    try {
      n = check(os.read(this.fd, chunk.buffer as ArrayBuffer, chunk.byteOffset, want), 'read', this.path);
    } catch (err) {
      this.destroy(err as Error);
      return;
    }
    this.bytesRead += n;
    this.position += n;
    this.push(n === 0 ? null : chunk.subarray(0, n));
  }
  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    if (this.fd >= 0) os.close(this.fd);
    cb(err);
  }
}

export class WriteStream extends Writable {
  readonly path: string;
  bytesWritten = 0;
  fd = -1;
  private readonly options: StreamOptions;
  constructor(path: PathLike, options?: Options | StreamOptions) {
    const o = streamOptions(options);
    super({ decodeStrings: true, ...(o.encoding ? { defaultEncoding: o.encoding } : {}) });
    this.path = pathOf(path);
    this.options = o;
  }
  override _construct(cb: (err?: Error | null) => void): void {
    try {
      this.fd = this.options.fd ?? openSync(this.path, this.options.flags ?? this.options.flag ?? 'w', this.options.mode ?? 0o666);
    } catch (err) {
      cb(err as Error);
      return;
    }
    cb();
    this.emit('open', this.fd);
    this.emit('ready');
  }
  override _write(chunk: Buffer, _encoding: string, cb: (err?: Error | null) => void): void {
    try {
      writeAll(this.fd, chunk);
      this.bytesWritten += chunk.length;
      cb();
    } catch (err) {
      cb(err as Error);
    }
  }
  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    if (this.fd >= 0) os.close(this.fd);
    cb(err);
  }
}

export function createReadStream(path: PathLike, options?: Options | StreamOptions): ReadStream {
  return new ReadStream(path, options);
}
export function createWriteStream(path: PathLike, options?: Options | StreamOptions): WriteStream {
  return new WriteStream(path, options);
}
