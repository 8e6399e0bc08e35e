// process.stdout / stderr / stdin over WASI file descriptors: writes go straight to the fd (no buffering, so
// output order across both streams is the order of the calls); stdin is read when someone listens.
import { Buffer } from 'buffer';
import { EventEmitter } from 'events';
import { systemError } from './errors.js';
import { defer, ref, unref } from './loop.js';
import { os } from './quickjs.js';

export class WriteStream extends EventEmitter {
  readonly isTTY: boolean;
  readonly writable = true;
  constructor(readonly fd: number) {
    super();
    this.isTTY = os.isatty(fd);
  }

  write(chunk: string | Uint8Array, encodingOrCb?: BufferEncoding | ((err?: Error | null) => void), cb?: (err?: Error | null) => void): boolean {
    const encoding = typeof encodingOrCb === 'string' ? encodingOrCb : 'utf8';
    const done = typeof encodingOrCb === 'function' ? encodingOrCb : cb;
    const bytes = typeof chunk === 'string' ? Buffer.from(chunk, encoding) : chunk;
    let written = 0;
    while (written < bytes.length) {
      const n = os.write(this.fd, bytes.buffer as ArrayBuffer, bytes.byteOffset + written, bytes.length - written);
      if (n < 0) {
        const err = systemError(-n, 'write');
        if (done) defer(() => done(err));
        else this.emit('error', err);
        return false;
      }
      written += n;
    }
    if (done) defer(() => done(null));
    return true;
  }

  end(chunk?: string | Uint8Array | (() => void), cb?: () => void): this {
    if (typeof chunk === 'function') cb = chunk;
    else if (chunk !== undefined) this.write(chunk);
    defer(() => {
      this.emit('finish');
      cb?.();
    });
    return this;
  }

  cork(): void {}
  uncork(): void {}
  setDefaultEncoding(): this {
    return this;
  }
  getColorDepth(): number {
    return 1;
  }
  hasColors(): boolean {
    return false;
  }
}

/** Reads fd 0 to its end once a consumer attaches, emitting 'data' chunks then 'end'. */
export class ReadStream extends EventEmitter {
  readonly fd = 0;
  readonly isTTY: boolean;
  private encoding: BufferEncoding | undefined;
  private started = false;
  constructor() {
    super();
    this.isTTY = os.isatty(0);
    this.on('newListener', (event: string) => {
      if (event === 'data' || event === 'end' || event === 'readable') this.start();
    });
  }

  setEncoding(encoding: BufferEncoding): this {
    this.encoding = encoding;
    return this;
  }

  resume(): this {
    this.start();
    return this;
  }
  pause(): this {
    return this;
  }

  /** Whole input, synchronously (fs.readFileSync(0) and `for await` consumers use it too). */
  readAll(): Buffer {
    const chunks: Buffer[] = [];
    for (;;) {
      const chunk = Buffer.allocUnsafe(65536);
      const n = os.read(0, chunk.buffer as ArrayBuffer, chunk.byteOffset, chunk.length);
      if (n <= 0) break;
      chunks.push(chunk.subarray(0, n));
    }
    return Buffer.concat(chunks);
  }

  private start(): void {
    if (this.started) return;
    this.started = true;
    ref();
    defer(() => {
      const data = this.readAll();
      unref();
      if (data.length > 0) this.emit('data', this.encoding ? data.toString(this.encoding) : data);
      this.emit('end');
      this.emit('close');
    });
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<Buffer | string> {
    this.started = true;
    const data = this.readAll();
    if (data.length > 0) yield this.encoding ? data.toString(this.encoding) : data;
  }

  pipe<T extends { write(chunk: unknown): unknown; end?(): unknown }>(dest: T): T {
    this.on('data', (chunk) => dest.write(chunk));
    this.on('end', () => dest.end?.());
    return dest;
  }
}
