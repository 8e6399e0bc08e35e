// Builders for small in-test images: OCI layouts whose layers are written with tar headers from the `tar`
// package (through src/convert/tar-writer), tiny Wasm modules and ELF headers.
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { hexOf, sha256 } from '../../src/oci/digest.js';
import { OCI_CONFIG, OCI_INDEX, OCI_LAYER_GZIP, OCI_LAYER_TAR, OCI_LAYER_ZSTD, OCI_MANIFEST } from '../../src/oci/mediatypes.js';
import type { Descriptor, ImageConfig } from '../../src/oci/types.js';
import { tarBuffer, type TarEntrySpec } from '../../src/convert/tar-writer.js';
import type { RuntimeCatalog } from '../../src/convert/runtimes.js';

export const EPOCH = new Date(0);

export type Entry = Omit<TarEntrySpec, 'mtime' | 'mode'> & { mode?: number; data?: Buffer | string };

export function file(path: string, data: Buffer | string, mode = 0o644): Entry {
  return { path, type: 'File', data, mode };
}
export function dir(path: string, mode = 0o755): Entry {
  return { path, type: 'Directory', mode };
}
export function symlink(path: string, linkpath: string): Entry {
  return { path, type: 'SymbolicLink', linkpath, mode: 0o777 };
}
export function hardlink(path: string, linkpath: string): Entry {
  return { path, type: 'Link', linkpath, mode: 0o644 };
}

export function tarOf(entries: readonly Entry[]): Buffer {
  return tarBuffer(entries.map((e) => ({ ...e, mode: e.mode ?? 0o644, mtime: EPOCH })));
}

export interface LayerSpec {
  entries?: Entry[];
  /** Use these bytes as the (already encoded) layer. */
  raw?: Buffer;
  compression?: 'gzip' | 'none' | 'zstd';
  mediaType?: string;
}

export interface ImageSpec {
  layers: LayerSpec[];
  config?: Partial<ImageConfig['config']>;
  created?: string;
  architecture?: string;
  os?: string;
}

export interface LayoutOptions {
  tag?: string;
  /** Wrap the image in an index with these extra platform entries (each its own tiny image). */
  extraPlatforms?: Array<{ os: string; architecture: string; spec: ImageSpec }>;
}

async function putBlob(dir: string, bytes: Buffer): Promise<string> {
  const digest = sha256(bytes);
  await writeFile(join(dir, 'blobs', 'sha256', hexOf(digest)), bytes);
  return digest;
}

async function putImage(dir: string, spec: ImageSpec): Promise<Descriptor> {
  const layers: Descriptor[] = [];
  const diffIds: string[] = [];
  for (const layer of spec.layers) {
    const tar = layer.raw ?? tarOf(layer.entries ?? []);
    const compression = layer.compression ?? 'gzip';
    let bytes = tar;
    if (!layer.raw && compression === 'gzip') bytes = gzipSync(tar);
    if (!layer.raw && compression === 'zstd') {
      const zlib = (await import('node:zlib')) as unknown as { zstdCompressSync?: (b: Buffer) => Buffer };
      if (!zlib.zstdCompressSync) throw new Error('no zstd compressor in this Node');
      bytes = zlib.zstdCompressSync(tar);
    }
    const mediaType = layer.mediaType ?? (compression === 'gzip' ? OCI_LAYER_GZIP : compression === 'zstd' ? OCI_LAYER_ZSTD : OCI_LAYER_TAR);
    layers.push({ mediaType, digest: await putBlob(dir, bytes), size: bytes.length });
    diffIds.push(sha256(tar));
  }
  const config: ImageConfig = {
    ...(spec.created ? { created: spec.created } : {}),
    architecture: spec.architecture ?? 'amd64',
    os: spec.os ?? 'linux',
    config: { Env: ['PATH=/usr/local/bin:/usr/bin:/bin'], ...(spec.config ?? {}) },
    rootfs: { type: 'layers', diff_ids: diffIds },
  };
  const configBytes = Buffer.from(JSON.stringify(config));
  const manifest = {
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    config: { mediaType: OCI_CONFIG, digest: await putBlob(dir, configBytes), size: configBytes.length },
    layers,
  };
  const manifestBytes = Buffer.from(JSON.stringify(manifest));
  return {
    mediaType: OCI_MANIFEST,
    digest: await putBlob(dir, manifestBytes),
    size: manifestBytes.length,
    platform: { os: config.os, architecture: config.architecture },
  };
}

/** Writes an OCI image layout holding one image (or an index of several); returns the top descriptor. */
export async function writeLayout(dir: string, spec: ImageSpec, opts: LayoutOptions = {}): Promise<Descriptor> {
  await mkdir(join(dir, 'blobs', 'sha256'), { recursive: true });
  await writeFile(join(dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  let top = await putImage(dir, spec);
  if (opts.extraPlatforms) {
    const entries: Descriptor[] = [];
    for (const extra of opts.extraPlatforms) {
      entries.push(await putImage(dir, { ...extra.spec, os: extra.os, architecture: extra.architecture }));
    }
    entries.push(top);
    const indexBytes = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: entries }));
    top = { mediaType: OCI_INDEX, digest: await putBlob(dir, indexBytes), size: indexBytes.length };
  }
  const entry: Descriptor = { ...top };
  delete entry.platform;
  if (opts.tag) entry.annotations = { 'org.opencontainers.image.ref.name': opts.tag };
  await writeFile(join(dir, 'index.json'), JSON.stringify({ schemaVersion: 2, manifests: [entry] }));
  return top;
}

export async function tempDir(prefix = 'boxproxy-convert-'): Promise<{ path: string; cleanup: () => Promise<void> }> {
  const path = await mkdtemp(join(tmpdir(), prefix));
  return { path, cleanup: () => rm(path, { recursive: true, force: true }) };
}

/** Every path under a directory (relative), to prove nothing was written there. */
export async function listTree(root: string): Promise<string[]> {
  const out: string[] = [];
  async function walk(d: string, prefix: string): Promise<void> {
    for (const e of await readdir(d, { withFileTypes: true })) {
      out.push(prefix + e.name);
      if (e.isDirectory()) await walk(join(d, e.name), prefix + e.name + '/');
    }
  }
  await walk(root, '');
  return out.sort();
}

// --- Wasm -------------------------------------------------------------------------------------------------

function uleb(n: number): number[] {
  const out: number[] = [];
  do {
    let byte = n & 0x7f;
    n >>>= 7;
    if (n !== 0) byte |= 0x80;
    out.push(byte);
  } while (n !== 0);
  return out;
}
function str(s: string): number[] {
  const b = [...Buffer.from(s, 'utf8')];
  return [...uleb(b.length), ...b];
}
function section(id: number, body: number[]): number[] {
  return [id, ...uleb(body.length), ...body];
}

/**
 * A valid core module: imports `imports` (functions of type (i32,i32,i32,i32)->i32), exports memory and, unless
 * told otherwise, an empty `_start`.
 */
export function wasmModule(opts: { imports?: Array<[module: string, name: string]>; start?: boolean; reactor?: boolean } = {}): Buffer {
  const imports = opts.imports ?? [['wasi_snapshot_preview1', 'fd_write']];
  const start = opts.start ?? true;
  const types = section(1, [2, 0x60, 4, 0x7f, 0x7f, 0x7f, 0x7f, 1, 0x7f, 0x60, 0, 0]);
  const importSec = section(2, [...uleb(imports.length), ...imports.flatMap(([m, n]) => [...str(m), ...str(n), 0, 0])]);
  const funcs = section(3, [1, 1]);
  const memory = section(5, [1, 0, 1]);
  const exportName = opts.reactor ? '_initialize' : '_start';
  const exportsList: number[][] = [[...str('memory'), 2, 0]];
  if (start || opts.reactor) exportsList.push([...str(exportName), 0, ...uleb(imports.length)]);
  const exportSec = section(7, [exportsList.length, ...exportsList.flat()]);
  const code = section(10, [1, 2, 0, 0x0b]);
  return Buffer.from([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0, ...types, ...importSec, ...funcs, ...memory, ...exportSec, ...code]);
}

/** Header of a component (layer 1). */
export const WASM_COMPONENT = Buffer.from([0, 0x61, 0x73, 0x6d, 0x0d, 0, 1, 0]);

/** A 64-bit little-endian ELF header plus program headers; PT_INTERP when `interpreter` is given. */
export function elf(opts: { machine?: number; type?: number; interpreter?: string; bits?: 32 | 64 } = {}): Buffer {
  const machine = opts.machine ?? 0x3e;
  const buf = Buffer.alloc(1024);
  buf.write('\x7fELF', 0, 'latin1');
  buf[4] = 2;
  buf[5] = 1;
  buf[6] = 1;
  buf.writeUInt16LE(opts.type ?? 2, 16);
  buf.writeUInt16LE(machine, 18);
  buf.writeUInt32LE(1, 20);
  buf.writeBigUInt64LE(64n, 32); // e_phoff
  buf.writeUInt16LE(64, 52);
  buf.writeUInt16LE(56, 54);
  const phdrs: Array<[type: number, offset: number, size: number]> = [[1, 0, 1024]];
  if (opts.interpreter) phdrs.unshift([3, 512, opts.interpreter.length + 1]);
  buf.writeUInt16LE(phdrs.length, 56);
  phdrs.forEach(([type, offset, size], i) => {
    const at = 64 + i * 56;
    buf.writeUInt32LE(type, at);
    buf.writeBigUInt64LE(BigInt(offset), at + 8);
    buf.writeBigUInt64LE(BigInt(size), at + 32);
  });
  if (opts.interpreter) buf.write(opts.interpreter + '\0', 512, 'latin1');
  return buf;
}

/** A catalog with a fake ruby.wasm so strategy tests do not depend on installed packages. */
export function fakeRuntimes(wasmPath: string, version = '3.3'): RuntimeCatalog {
  return { ruby: async () => ({ version, wasmPath }) };
}

export const noRuntimes: RuntimeCatalog = { ruby: async () => undefined };
