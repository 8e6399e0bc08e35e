// Scratch pack files: flattening appends the kept file bytes of each layer to one pack file (PackWriter), so a
// conversion's memory does not grow with the image; assembling reads them back in the Box's order (PackReader).
import { createReadStream, type WriteStream } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { Readable } from 'node:stream';

/** Where a kept file's bytes are: a range of a scratch pack file in the work dir. */
export interface ContentRef {
  file: string;
  offset: number;
  size: number;
}

/** Files up to this size are gathered into slabs (one pack write per slab). */
export const SMALL_FILE_BYTES = 256 * 1024;
const SLAB_BYTES = 1024 * 1024;

/**
 * Appends a layer's kept file bytes to its pack file. Small files are copied into 1 MiB slabs, written with one
 * call each (not one per file); big files stream straight to the pack. File bytes never stay in memory.
 */
export class PackWriter {
  /** Logical end of the pack: where the next file starts. */
  offset = 0;
  private slab: Buffer | undefined;
  private slabUsed = 0;
  constructor(
    readonly path: string,
    private readonly stream: WriteStream,
  ) {}

  /** Room for a small file's bytes; the caller fills `target`. Returns false in `ok` when the pack wants a drain. */
  reserve(size: number): { ref: ContentRef; target: Buffer; ok: boolean } {
    let ok = true;
    if (!this.slab || this.slabUsed + size > this.slab.length) {
      ok = this.flush();
      this.slab = Buffer.allocUnsafe(SLAB_BYTES);
      this.slabUsed = 0;
    }
    const target = this.slab.subarray(this.slabUsed, this.slabUsed + size);
    this.slabUsed += size;
    const ref: ContentRef = { file: this.path, offset: this.offset, size };
    this.offset += size;
    return { ref, target, ok };
  }

  /** Starts a big file (written with `write`) at the current end. */
  begin(size: number): { ref: ContentRef; ok: boolean } {
    const ok = this.flush();
    const ref: ContentRef = { file: this.path, offset: this.offset, size };
    this.offset += size;
    return { ref, ok };
  }

  write(chunk: Buffer): boolean {
    return this.stream.write(chunk);
  }

  /** Writes the current slab; false when the stream wants a drain. */
  flush(): boolean {
    const slab = this.slab;
    if (!slab || this.slabUsed === 0) return true;
    this.slab = undefined;
    const used = this.slabUsed;
    this.slabUsed = 0;
    return this.stream.write(used === slab.length ? slab : slab.subarray(0, used));
  }
}

/** Read-back windows kept per pack file, and their size. */
const WINDOWS_PER_PACK = 2;
export const WINDOW_BYTES = 1024 * 1024;

interface Window {
  offset: number;
  bytes: Buffer;
}

/**
 * The pack files, read back in the Box's (sorted) order. Small files come from 1 MiB-aligned windows: packs
 * hold files in their layer's tar order, which is mostly sorted, so one read serves many files instead of one
 * thread-pool round trip each. One reader per layer being written: a window's buffer is reused when it is
 * evicted, which is safe only because that layer's writer has copied the bytes it was given before it asks again.
 */
export class PackReader {
  private handles = new Map<string, Promise<FileHandle>>();
  private windows = new Map<string, Window[]>();

  get(file: string): Promise<FileHandle> {
    let handle = this.handles.get(file);
    if (!handle) {
      handle = open(file, 'r');
      handle.catch(() => undefined); // awaited by the caller
      this.handles.set(file, handle);
    }
    return handle;
  }

  /** The bytes of a small file (at most WINDOW_BYTES). */
  async read(ref: ContentRef): Promise<Buffer> {
    const list = this.windows.get(ref.file) ?? [];
    this.windows.set(ref.file, list);
    const end = ref.offset + ref.size;
    for (const [i, w] of list.entries()) {
      if (ref.offset >= w.offset && end <= w.offset + w.bytes.length) {
        if (i > 0) list.unshift(...list.splice(i, 1)); // most recently used first
        return w.bytes.subarray(ref.offset - w.offset, end - w.offset);
      }
    }
    const evicted = list.length >= WINDOWS_PER_PACK ? list.pop() : undefined;
    // Aligned, so walking a pack backwards hits as well as forwards; a file across the boundary starts its own.
    let start = ref.offset - (ref.offset % WINDOW_BYTES);
    if (end > start + WINDOW_BYTES) start = ref.offset;
    // A fresh 1 MiB buffer per miss keeps the GC busy.
    const buf = evicted ? Buffer.from(evicted.bytes.buffer, evicted.bytes.byteOffset, WINDOW_BYTES) : Buffer.allocUnsafeSlow(WINDOW_BYTES);
    const handle = await this.get(ref.file);
    let have = 0;
    while (have < end - start) {
      const { bytesRead } = await handle.read(buf, have, WINDOW_BYTES - have, start + have);
      if (bytesRead === 0) throw new Error(`scratch file ${ref.file} is shorter than expected`);
      have += bytesRead;
    }
    list.unshift({ offset: start, bytes: buf.subarray(0, have) });
    return buf.subarray(ref.offset - start, end - start);
  }

  async close(): Promise<void> {
    await Promise.allSettled([...this.handles.values()].map(async (h) => (await h).close()));
    this.handles.clear();
    this.windows.clear();
  }
}

/** A kept file's bytes as a stream. */
export function openContent(ref: ContentRef): Readable {
  if (ref.size === 0) return Readable.from([]);
  return createReadStream(ref.file, { start: ref.offset, end: ref.offset + ref.size - 1 });
}

/** A kept file's bytes in memory (for small things: modules to inspect, scripts). */
export async function readContent(ref: ContentRef): Promise<Buffer> {
  const buf = Buffer.alloc(ref.size);
  if (ref.size === 0) return buf;
  const fh = await open(ref.file, 'r');
  try {
    let done = 0;
    while (done < ref.size) {
      const { bytesRead } = await fh.read(buf, done, ref.size - done, ref.offset + done);
      if (bytesRead === 0) throw new Error(`scratch file ${ref.file} is shorter than expected`);
      done += bytesRead;
    }
  } finally {
    await fh.close();
  }
  return buf;
}
