import { once } from 'node:events';
import { ImageError } from '../image/errors.js';
import { createWriteStream, type WriteStream } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { PassThrough, Readable, Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import * as zlib from 'node:zlib';
import { Parser, type ReadEntry } from 'tar';
import { classifyBytes, SNIFF_BYTES } from './detect.js';
import { ConvertError, errorMessage } from './errors.js';
import { dropReasonForKind, dropReasonForPath } from './policy.js';
import type { LayerCompression, ResolvedLayer } from './resolve.js';
import type { ImageSource } from '../image/source.js';
import { splitPath, VirtualFs, type ContentRef, type FileNode, type Inode } from './vfs.js';

export interface FlattenLimits {
  /** Tar entries across all layers. */
  maxEntries: number;
  /** Uncompressed tar bytes across all layers. */
  maxBytes: number;
  /** Size of one file. */
  maxFileBytes: number;
  /** Uncompressed/compressed bytes of one layer (gzip bombs), checked past RATIO_GRACE_BYTES. */
  maxRatio: number;
}

export const DEFAULT_LIMITS: FlattenLimits = {
  maxEntries: 1_000_000,
  maxBytes: 16 * 1024 ** 3,
  maxFileBytes: 4 * 1024 ** 3,
  maxRatio: 200,
};

/** A layer may inflate this much before its ratio is judged, so small runs of zeros are fine. */
export const RATIO_GRACE_BYTES = 16 * 1024 * 1024;

/** One line of the report about an entry that was skipped or a layer-level remark. */
export interface FlattenNote {
  layer: number;
  path?: string;
  reason: string;
}

export interface LayerStats {
  digest: string;
  mediaType: string;
  compression: LayerCompression;
  compressedBytes: number;
  tarBytes: number;
  entries: number;
  /** File bytes written to the work dir. */
  keptBytes: number;
}

export interface FlattenResult {
  fs: VirtualFs;
  layers: LayerStats[];
  notes: FlattenNote[];
  /** Notes beyond MAX_NOTES, counted only. */
  notesOmitted: number;
}

export interface FlattenProgress {
  layer: number;
  layers: number;
  digest: string;
  compressedBytes: number;
  compressedTotal: number;
}

export interface FlattenOptions {
  workDir: string;
  limits?: Partial<FlattenLimits>;
  onProgress?: (p: FlattenProgress) => void;
}

const MAX_NOTES = 500;
/** Files up to this size are gathered into slabs (one pack write per slab). */
const SMALL_FILE_BYTES = 256 * 1024;
const SLAB_BYTES = 1024 * 1024;
/** Bigger reads and inflate outputs than Node's 64 KiB / 16 KiB defaults: fewer hops through the stream chain. */
const INFLATE_CHUNK_BYTES = 1024 * 1024;

/**
 * Appends a layer's kept file bytes to its scratch pack file. Small files are copied into 1 MiB slabs, written
 * with one call each (not one per file); big files stream straight to the pack. File bytes never stay in memory,
 * so a conversion's memory does not grow with the image (assembling reads them back in 1 MiB windows).
 */
class PackWriter {
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
const GZIP_MAGIC = [0x1f, 0x8b];
const ZSTD_MAGIC = [0x28, 0xb5, 0x2f, 0xfd];

function startsWith(buf: Buffer, magic: readonly number[]): boolean {
  return buf.length >= magic.length && magic.every((b, i) => buf[i] === b);
}

type ZstdFactory = () => Transform;
/** Node 22.15+ / 23.8+ ship zstd in zlib; older Nodes have none. */
export function zstdDecompressor(): ZstdFactory | undefined {
  const create = (zlib as unknown as { createZstdDecompress?: () => Transform }).createZstdDecompress;
  return typeof create === 'function' ? () => create() : undefined;
}

/** Counts bytes going past and lets a check veto them. */
class Meter extends Transform {
  bytes = 0;
  constructor(private readonly check: (chunk: Buffer, total: number) => Error | undefined) {
    super();
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.bytes += chunk.length;
    const err = this.check(chunk, this.bytes);
    if (err) cb(err);
    else cb(null, chunk);
  }
}

/** Reads the first bytes of a stream and gives back a stream that still yields everything. */
async function peek(stream: Readable, want: number): Promise<{ head: Buffer; stream: Readable }> {
  const it = (stream as AsyncIterable<Buffer>)[Symbol.asyncIterator]();
  const first: Buffer[] = [];
  let have = 0;
  let done = false;
  while (have < want) {
    const r = await it.next();
    if (r.done) {
      done = true;
      break;
    }
    first.push(r.value);
    have += r.value.length;
  }
  async function* all(): AsyncGenerator<Buffer> {
    yield* first;
    if (done) return;
    for (;;) {
      const r = await it.next();
      if (r.done) return;
      yield r.value;
    }
  }
  return { head: Buffer.concat(first), stream: Readable.from(all(), { objectMode: false }) };
}

/**
 * Applies the layers in order into an in-memory tree, reading each layer once as a stream. File bytes that may
 * end up in the Box are appended to one scratch pack file per layer; nothing else touches the disk.
 */
export async function flattenLayers(source: ImageSource, layers: readonly ResolvedLayer[], opts: FlattenOptions): Promise<FlattenResult> {
  const limits: FlattenLimits = { ...DEFAULT_LIMITS, ...definedOnly(opts.limits ?? {}) };
  const fs = new VirtualFs();
  const notes: FlattenNote[] = [];
  let notesOmitted = 0;
  const note = (n: FlattenNote): void => {
    if (notes.length < MAX_NOTES) notes.push(n);
    else notesOmitted++;
  };
  const stats: LayerStats[] = [];
  const totals = { entries: 0, tarBytes: 0, inodes: 0 };
  const scratch = join(opts.workDir, 'flatten');
  await mkdir(scratch, { recursive: true });

  for (const [index, layer] of layers.entries()) {
    const stat: LayerStats = {
      digest: layer.descriptor.digest,
      mediaType: layer.descriptor.mediaType,
      compression: layer.compression,
      compressedBytes: 0,
      tarBytes: 0,
      entries: 0,
      keptBytes: 0,
    };
    stats.push(stat);
    await applyLayer(source, layer, index, layers.length, {
      fs,
      limits,
      note,
      stat,
      totals,
      packPath: join(scratch, `layer-${index}.pack`),
      ...(opts.onProgress ? { onProgress: opts.onProgress } : {}),
    });
  }
  return { fs, layers: stats, notes, notesOmitted };
}

function definedOnly<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

interface LayerContext {
  fs: VirtualFs;
  limits: FlattenLimits;
  note: (n: FlattenNote) => void;
  stat: LayerStats;
  totals: { entries: number; tarBytes: number; inodes: number };
  packPath: string;
  onProgress?: (p: FlattenProgress) => void;
}

async function applyLayer(source: ImageSource, layer: ResolvedLayer, index: number, count: number, ctx: LayerContext): Promise<void> {
  const { fs, limits, note, stat, totals } = ctx;
  const digest = layer.descriptor.digest;
  const blob = await source.openBlob(digest);
  const packStream: WriteStream = createWriteStream(ctx.packPath);
  const pack = new PackWriter(ctx.packPath, packStream);
  let failure: Error | undefined;
  let failWake: (() => void) | undefined;
  const fail = (err: Error): void => {
    failure ??= err;
    failWake?.();
  };
  let invalidEntries = 0;
  packStream.on('error', (err) => fail(err));

  const parser = new Parser({
    strict: false,
    // Decompression is ours (so it is metered); stop the parser from guessing at brotli or zstd.
    brotli: false,
    zstd: false,
    onwarn: (code, message) => {
      if (code === 'TAR_ENTRY_INVALID') {
        invalidEntries++;
        if (invalidEntries <= 5) note({ layer: index, reason: `invalid tar header skipped: ${message}` });
        // Garbage from the start: say so now rather than after parsing the whole layer.
        if (invalidEntries > 64 && stat.entries === 0) fail(new ConvertError('LAYER_CORRUPT', `layer ${digest} is not a tar archive`));
      } else if (code === 'TAR_BAD_ARCHIVE' && /truncated/i.test(message)) {
        fail(new ConvertError('LAYER_CORRUPT', `layer ${digest} is truncated (${message})`));
      } else if (code !== 'TAR_BAD_ARCHIVE') {
        note({ layer: index, reason: `tar: ${message}` });
      }
    },
  });
  parser.on('error', (err: Error) => fail(new ConvertError('LAYER_CORRUPT', `layer ${digest}: ${err.message}`, { cause: err })));
  parser.on('ignoredEntry', (entry: ReadEntry) => {
    if (!entry.meta) note({ layer: index, path: entry.path, reason: `unsupported tar entry type ${entry.header.type ?? '?'} skipped` });
  });

  parser.on('entry', (entry: ReadEntry) => {
    if (failure) {
      entry.resume();
      return;
    }
    stat.entries++;
    if (++totals.entries > limits.maxEntries) {
      fail(new ConvertError('LIMIT_EXCEEDED', `the image has more than ${limits.maxEntries} entries (limit maxEntries)`));
      entry.resume();
      return;
    }
    const parts = splitPath(entry.path);
    if (!parts) {
      note({ layer: index, path: entry.path, reason: 'path escapes the image root; entry skipped' });
      entry.resume();
      return;
    }
    const name = parts[parts.length - 1];
    const parent = parts.slice(0, -1);
    const mode = (entry.mode ?? 0o644) & 0o1777;
    if (name !== undefined && name.startsWith('.wh.')) {
      if (name === '.wh..wh..opq') fs.opaque(parent, index);
      else if (!name.startsWith('.wh..wh.')) fs.whiteout([...parent, name.slice(4)], index);
      entry.resume();
      return;
    }
    switch (entry.type) {
      case 'Directory':
        fs.set(parts, { type: 'dir', mode, children: new Map(), touched: index }, index);
        entry.resume();
        return;
      case 'SymbolicLink':
        if (parts.length === 0) note({ layer: index, path: entry.path, reason: 'symlink at the root skipped' });
        else fs.set(parts, { type: 'symlink', target: entry.linkpath ?? '', touched: index }, index);
        entry.resume();
        return;
      case 'Link': {
        const targetParts = splitPath(entry.linkpath ?? '');
        const target = targetParts ? fs.get(targetParts) : undefined;
        if (!targetParts) note({ layer: index, path: entry.path, reason: `hard link to ${entry.linkpath} escapes the image root; skipped` });
        else if (target?.type !== 'file') note({ layer: index, path: entry.path, reason: `hard link to missing file ${entry.linkpath}; skipped` });
        else if (parts.length > 0) fs.set(parts, { type: 'file', inode: target.inode, touched: index }, index);
        entry.resume();
        return;
      }
      case 'File':
      case 'OldFile':
      case 'ContiguousFile':
        if (parts.length === 0) {
          note({ layer: index, path: entry.path, reason: 'file at the root path skipped' });
          entry.resume();
          return;
        }
        readFileEntry(entry, parts, mode);
        return;
      case 'CharacterDevice':
      case 'BlockDevice':
      case 'FIFO': {
        // Not representable in Wasm; it still hides what lower layers had at that path.
        fs.whiteout(parts, index + 1);
        const what = entry.type === 'FIFO' ? 'FIFO' : 'device node';
        note({ layer: index, path: entry.path, reason: `${what} skipped` });
        entry.resume();
        return;
      }
      default:
        note({ layer: index, path: entry.path, reason: `unsupported tar entry type ${entry.type} skipped` });
        entry.resume();
    }
  });

  function readFileEntry(entry: ReadEntry, parts: string[], mode: number): void {
    const size = entry.size;
    if (size > limits.maxFileBytes) {
      fail(new ConvertError('LIMIT_EXCEEDED', `/${parts.join('/')} is ${size} bytes, over the per-file limit of ${limits.maxFileBytes} (maxFileBytes)`));
      entry.resume();
      return;
    }
    const inode: Inode = { id: ++totals.inodes, size, mode, kind: { kind: 'data' } };
    const node: FileNode = { type: 'file', inode, touched: index };
    fs.set(parts, node, index);
    const pathDrop = dropReasonForPath(parts.join('/'));
    const head: Buffer[] = [];
    let headBytes = 0;
    let decided = false;
    /** Where the kept bytes go: a slab slice (small files) or the pack stream (big ones); undefined: dropped. */
    let target: Buffer | undefined;
    let filled = 0;
    let streaming = false;
    const waitDrain = (): void => {
      entry.pause();
      packStream.once('drain', () => entry.resume());
    };
    const put = (chunk: Buffer): void => {
      if (failure || packStream.destroyed) return;
      stat.keptBytes += chunk.length;
      if (target) {
        // A tar entry never yields more than its header's size; the bound is belt and braces.
        filled += chunk.copy(target, filled);
      } else if (!pack.write(chunk)) waitDrain();
    };
    const decide = (): void => {
      decided = true;
      const buf = head.length === 1 ? (head[0] as Buffer) : Buffer.concat(head, headBytes);
      head.length = 0;
      inode.kind = classifyBytes(buf.subarray(0, SNIFF_BYTES));
      const dropped = pathDrop ?? dropReasonForKind(inode.kind);
      if (dropped) {
        inode.dropped = dropped;
        return;
      }
      let ok: boolean;
      if (size <= SMALL_FILE_BYTES) {
        const room = pack.reserve(size);
        inode.content = room.ref;
        target = room.target;
        ok = room.ok;
      } else {
        const started = pack.begin(size);
        inode.content = started.ref;
        ok = started.ok;
      }
      streaming = true;
      if (!ok) waitDrain();
      if (buf.length > 0) put(buf);
    };
    entry.on('data', (chunk: Buffer) => {
      if (decided) {
        if (streaming) put(chunk);
        return;
      }
      head.push(chunk);
      headBytes += chunk.length;
      if (headBytes >= Math.min(SNIFF_BYTES, size)) decide();
    });
    entry.on('end', () => {
      if (!decided) decide();
    });
  }

  // The stream chain: blob -> meter -> decompress -> meter (limits) -> tar parser.
  try {
    const peeked = await peek(blob, 4);
    let compression: LayerCompression = 'none';
    if (startsWith(peeked.head, GZIP_MAGIC)) compression = 'gzip';
    else if (startsWith(peeked.head, ZSTD_MAGIC)) compression = 'zstd';
    stat.compression = compression;
    const inMeter = new Meter((_chunk, total) => {
      stat.compressedBytes = total;
      ctx.onProgress?.({ layer: index, layers: count, digest, compressedBytes: total, compressedTotal: layer.descriptor.size });
      return undefined;
    });
    let decompressor: Transform | undefined;
    if (compression === 'gzip') decompressor = zlib.createGunzip({ chunkSize: INFLATE_CHUNK_BYTES });
    else if (compression === 'zstd') {
      const factory = zstdDecompressor();
      if (!factory) {
        throw new ConvertError(
          'UNSUPPORTED_COMPRESSION',
          `layer ${digest} is zstd-compressed and this Node.js (${process.version}) has no zstd decoder (Node 22.15+ has one); convert with a newer Node or push the image with gzip layers`,
        );
      }
      decompressor = factory();
    }
    let sniffed = false;
    const outMeter = new Meter((chunk, total) => {
      if (!sniffed) {
        sniffed = true;
        // A tar never starts with these; a layer compressed twice would let the inner stream escape our meter.
        if (startsWith(chunk, GZIP_MAGIC) || startsWith(chunk, ZSTD_MAGIC)) {
          return new ConvertError('LAYER_CORRUPT', `layer ${digest} is compressed twice; refusing to unpack the inner stream`);
        }
      }
      stat.tarBytes = total;
      totals.tarBytes += chunk.length;
      if (totals.tarBytes > limits.maxBytes) {
        return new ConvertError('LIMIT_EXCEEDED', `the image unpacks to more than ${limits.maxBytes} bytes (limit maxBytes)`);
      }
      if (compression !== 'none' && total > RATIO_GRACE_BYTES && total / Math.max(inMeter.bytes, 1) > limits.maxRatio) {
        return new ConvertError(
          'LIMIT_EXCEEDED',
          `layer ${digest} inflates more than ${limits.maxRatio}x (${inMeter.bytes} compressed bytes gave ${total} so far): a decompression bomb (limit maxRatio)`,
        );
      }
      return undefined;
    });
    const sink = async (chunks: AsyncIterable<Buffer>): Promise<void> => {
      for await (const chunk of chunks) {
        if (failure) throw failure;
        if (!parser.write(chunk)) {
          await new Promise<void>((resolve) => {
            failWake = resolve;
            parser.once('drain', resolve);
          });
          failWake = undefined;
        }
        if (failure) throw failure;
      }
      const ended = once(parser, 'end');
      parser.end();
      await Promise.race([ended, new Promise<void>((resolve) => (failWake = resolve))]);
      if (failure) throw failure;
    };
    // A PassThrough stands in for the decompressor so the chain has one static shape.
    await pipeline(peeked.stream, inMeter, decompressor ?? new PassThrough(), outMeter, sink);
    if (stat.entries === 0 && invalidEntries > 0) {
      throw new ConvertError('LAYER_CORRUPT', `layer ${digest} is not a tar archive`);
    }
    pack.flush();
    packStream.end();
    await once(packStream, 'close');
    if (failure) throw failure;
  } catch (err) {
    packStream.destroy();
    blob.destroy();
    parser.removeAllListeners('entry');
    if (err instanceof ImageError) throw err;
    if (failure instanceof ImageError) throw failure;
    const message = errorMessage(err);
    if (err instanceof Error && (err as NodeJS.ErrnoException).code?.startsWith('Z_')) {
      throw new ConvertError('LAYER_CORRUPT', `layer ${digest} does not decompress: ${message}`, { cause: err });
    }
    if (err instanceof Error && err.name === 'DigestMismatchError') {
      throw new ConvertError('SOURCE_FAILED', `layer ${digest}: ${message}`, { cause: err });
    }
    throw err;
  }
}
