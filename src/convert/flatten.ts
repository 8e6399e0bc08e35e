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
import { applyEntry, type ApplyContext, type PlacedFile } from './layer-apply.js';
import { PackWriter, SMALL_FILE_BYTES } from './pack.js';
import { VirtualFs } from './vfs.js';

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
/** Bigger reads and inflate outputs than Node's 64 KiB / 16 KiB defaults: fewer hops through the stream chain. */
const INFLATE_CHUNK_BYTES = 1024 * 1024;

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

/** The first error of a layer's read wins; `wake` unblocks whatever waits on the parser. */
class Failure {
  error: Error | undefined;
  wake: (() => void) | undefined;
  set(err: Error): void {
    this.error ??= err;
    this.wake?.();
  }
}

/** Reads one layer as a stream: entries go to the applier (layer-apply.ts), kept file bytes to the layer's pack. */
async function applyLayer(source: ImageSource, layer: ResolvedLayer, index: number, count: number, ctx: LayerContext): Promise<void> {
  const digest = layer.descriptor.digest;
  const blob = await source.openBlob(digest);
  const packStream: WriteStream = createWriteStream(ctx.packPath);
  const pack = new PackWriter(ctx.packPath, packStream);
  const failure = new Failure();
  packStream.on('error', (err) => failure.set(err));
  const parser = layerParser(digest, index, ctx, pack, packStream, failure);
  try {
    await streamLayer(blob, layer, index, count, ctx, parser.parser, failure);
    if (ctx.stat.entries === 0 && parser.invalidEntries() > 0) throw new ConvertError('LAYER_CORRUPT', `layer ${digest} is not a tar archive`);
    pack.flush();
    packStream.end();
    await once(packStream, 'close');
    if (failure.error) throw failure.error;
  } catch (err) {
    packStream.destroy();
    blob.destroy();
    parser.parser.removeAllListeners('entry');
    throw layerError(digest, err, failure.error);
  }
}

/** The tar parser of one layer, handing each entry to the applier and file bodies to readFileBody. */
function layerParser(digest: string, index: number, ctx: LayerContext, pack: PackWriter, packStream: WriteStream, failure: Failure) {
  const { limits, note, stat, totals } = ctx;
  let invalidEntries = 0;
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
        if (invalidEntries > 64 && stat.entries === 0) failure.set(new ConvertError('LAYER_CORRUPT', `layer ${digest} is not a tar archive`));
      } else if (code === 'TAR_BAD_ARCHIVE' && /truncated/i.test(message)) {
        failure.set(new ConvertError('LAYER_CORRUPT', `layer ${digest} is truncated (${message})`));
      } else if (code !== 'TAR_BAD_ARCHIVE') {
        note({ layer: index, reason: `tar: ${message}` });
      }
    },
  });
  parser.on('error', (err: Error) => failure.set(new ConvertError('LAYER_CORRUPT', `layer ${digest}: ${err.message}`, { cause: err })));
  parser.on('ignoredEntry', (entry: ReadEntry) => {
    if (!entry.meta) note({ layer: index, path: entry.path, reason: `unsupported tar entry type ${entry.header.type ?? '?'} skipped` });
  });
  const apply: ApplyContext = { fs: ctx.fs, layer: index, note, nextInode: () => ++totals.inodes };
  parser.on('entry', (entry: ReadEntry) => {
    if (failure.error) {
      entry.resume();
      return;
    }
    stat.entries++;
    if (++totals.entries > limits.maxEntries) {
      failure.set(new ConvertError('LIMIT_EXCEEDED', `the image has more than ${limits.maxEntries} entries (limit maxEntries)`));
      entry.resume();
      return;
    }
    if (entry.size > limits.maxFileBytes && /File$/.test(entry.type)) {
      failure.set(new ConvertError('LIMIT_EXCEEDED', `/${entry.path.replace(/^\/+/, '')} is ${entry.size} bytes, over the per-file limit of ${limits.maxFileBytes} (maxFileBytes)`));
      entry.resume();
      return;
    }
    const placed = applyEntry(apply, { path: entry.path, type: entry.type, size: entry.size, ...(entry.mode !== undefined ? { mode: entry.mode } : {}), ...(entry.linkpath !== undefined ? { linkpath: entry.linkpath } : {}) });
    if (placed) readFileBody(entry, placed, ctx, pack, packStream, failure);
    else entry.resume();
  });
  return { parser, invalidEntries: () => invalidEntries };
}

/**
 * Sniffs a file's first bytes (its kind decides whether the Box keeps it), then copies kept bytes into the
 * pack: small files into a slab, big ones streamed.
 */
function readFileBody(entry: ReadEntry, placed: PlacedFile, ctx: LayerContext, pack: PackWriter, packStream: WriteStream, failure: Failure): void {
  const { inode } = placed;
  const size = inode.size;
  const pathDrop = dropReasonForPath(placed.path);
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
    if (failure.error || packStream.destroyed) return;
    ctx.stat.keptBytes += chunk.length;
    // A tar entry never yields more than its header's size; the bound is belt and braces.
    if (target) filled += chunk.copy(target, filled);
    else if (!pack.write(chunk)) waitDrain();
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
      ({ ref: inode.content, target, ok } = room);
    } else ({ ref: inode.content, ok } = pack.begin(size));
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

/** How a layer's bytes are inflated, from its magic bytes. */
function decompressorFor(compression: LayerCompression, digest: string): Transform {
  if (compression === 'gzip') return zlib.createGunzip({ chunkSize: INFLATE_CHUNK_BYTES });
  if (compression === 'zstd') {
    const factory = zstdDecompressor();
    if (!factory) {
      throw new ConvertError(
        'UNSUPPORTED_COMPRESSION',
        `layer ${digest} is zstd-compressed and this Node.js (${process.version}) has no zstd decoder (Node 22.15+ has one); convert with a newer Node or push the image with gzip layers`,
      );
    }
    return factory();
  }
  // A PassThrough stands in for the decompressor so the chain has one static shape.
  return new PassThrough();
}

/** The stream chain: blob -> meter -> decompress -> meter (limits) -> tar parser. */
async function streamLayer(blob: Readable, layer: ResolvedLayer, index: number, count: number, ctx: LayerContext, parser: Parser, failure: Failure): Promise<void> {
  const { limits, stat, totals } = ctx;
  const digest = layer.descriptor.digest;
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
  const decompressor = decompressorFor(compression, digest);
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
    if (totals.tarBytes > limits.maxBytes) return new ConvertError('LIMIT_EXCEEDED', `the image unpacks to more than ${limits.maxBytes} bytes (limit maxBytes)`);
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
      if (failure.error) throw failure.error;
      if (!parser.write(chunk)) {
        await new Promise<void>((resolve) => {
          failure.wake = resolve;
          parser.once('drain', resolve);
        });
        failure.wake = undefined;
      }
      if (failure.error) throw failure.error;
    }
    const ended = once(parser, 'end');
    parser.end();
    await Promise.race([ended, new Promise<void>((resolve) => (failure.wake = resolve))]);
    if (failure.error) throw failure.error;
  };
  await pipeline(peeked.stream, inMeter, decompressor, outMeter, sink);
}

/** What a failed layer read is reported as: image errors pass through, inflate and digest errors get a code. */
function layerError(digest: string, err: unknown, first: Error | undefined): unknown {
  if (err instanceof ImageError) return err;
  if (first instanceof ImageError) return first;
  const message = errorMessage(err);
  if (err instanceof Error && (err as NodeJS.ErrnoException).code?.startsWith('Z_')) {
    return new ConvertError('LAYER_CORRUPT', `layer ${digest} does not decompress: ${message}`, { cause: err });
  }
  if (err instanceof Error && err.name === 'DigestMismatchError') return new ConvertError('SOURCE_FAILED', `layer ${digest}: ${message}`, { cause: err });
  return err;
}
