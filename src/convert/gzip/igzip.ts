import { execFile, spawn } from 'node:child_process';
import { open, rm, type FileHandle } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { HashedFile, type GzipWritten } from './output.js';
import type { GzipCodec, GzipEncoder } from './types.js';

/**
 * Intel ISA-L's igzip (Debian package `isal`): deflate level 1 at ~6x the speed of zlib on the same core, and
 * deflating is what a conversion spends most of its time on. It runs as child processes, which also takes the
 * compression off the thread that builds the tar.
 *
 * The tar goes to igzip through scratch files of CHUNK_BYTES, each compressed by one `igzip` run into one gzip
 * member; the members are appended to the layer in order. Pipes would cost more than the compression saves on
 * small VMs (64 KiB per round trip); files cost a page-cache copy. Chunks are cut at fixed tar offsets, so the
 * bytes depend only on the content, and chunks compress in parallel (one igzip per core) while the next fills.
 */
export const CHUNK_BYTES = 16 * 1024 * 1024;
const STDERR_KEEP = 2048;
const COPY_BYTES = 1024 * 1024;

/** Runs igzip on `input` into `output`; rejects with igzip's own words. */
function compressFile(bin: string, level: number, input: string, output: string): Promise<void> {
  return new Promise((resolve, reject) => {
    // -n: no name or timestamp in the header; -f: the member file is ours to overwrite.
    const child = spawn(bin, [`-${level}`, '-n', '-f', '-o', output, input], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    const err = child.stderr as NodeJS.ReadableStream; // stdio[2] is 'pipe'
    err.setEncoding('utf8');
    err.on('data', (s: string) => {
      if (stderr.length < STDERR_KEEP) stderr += s.slice(0, STDERR_KEEP - stderr.length);
    });
    child.once('error', (e) => reject(new Error(`${bin}: ${e.message}`, { cause: e })));
    child.once('close', (code, signal) => {
      if (code === 0) resolve();
      else reject(new Error(`${bin} ${signal ? `was killed by ${signal}` : `exited with ${code}`}${stderr.trim() ? `: ${stderr.trim()}` : ''}`));
    });
  });
}

class IgzipEncoder implements GzipEncoder {
  private chunk: FileHandle | undefined;
  private chunkBytes = 0;
  private chunks = 0;
  /** Members being compressed or waiting to be appended, oldest first. */
  private readonly members: Array<{ compressed: Promise<void>; input: string; output: string }> = [];
  private readonly maxParallel = Math.max(1, availableParallelism());
  private copyBuf: Buffer | undefined;
  private failure: Error | undefined;

  constructor(
    private readonly bin: string,
    private readonly level: number,
    private readonly out: HashedFile,
    private readonly path: string,
  ) {}

  async push(block: Buffer, release: () => void): Promise<void> {
    if (this.failure) throw this.failure;
    try {
      let at = 0;
      while (at < block.length) {
        this.chunk ??= await open(`${this.path}.chunk${this.chunks}`, 'w');
        const want = Math.min(block.length - at, CHUNK_BYTES - this.chunkBytes);
        const { bytesWritten } = await this.chunk.write(block, at, want);
        at += bytesWritten;
        this.chunkBytes += bytesWritten;
        if (this.chunkBytes === CHUNK_BYTES) await this.closeChunk();
      }
    } finally {
      release();
    }
  }

  /** Starts compressing the current chunk; appends the oldest members while too many are outstanding. */
  private async closeChunk(): Promise<void> {
    const input = `${this.path}.chunk${this.chunks}`;
    const output = `${this.path}.member${this.chunks}`;
    this.chunks++;
    const chunk = this.chunk ?? (await open(input, 'w'));
    this.chunk = undefined;
    this.chunkBytes = 0;
    await chunk.close();
    const compressed = compressFile(this.bin, this.level, input, output);
    compressed.catch(() => undefined); // awaited in order by appendOldest
    this.members.push({ compressed, input, output });
    while (this.members.length > this.maxParallel) await this.appendOldest();
  }

  /** Waits for the oldest member, then hashes and appends it to the layer. */
  private async appendOldest(): Promise<void> {
    const member = this.members.shift();
    if (!member) return;
    try {
      await member.compressed;
      const buf = (this.copyBuf ??= Buffer.allocUnsafe(COPY_BYTES));
      const file = await open(member.output, 'r');
      try {
        for (;;) {
          const { bytesRead } = await file.read(buf, 0, buf.length, null);
          if (bytesRead === 0) break;
          await this.out.append(buf.subarray(0, bytesRead));
        }
      } finally {
        await file.close();
      }
    } catch (err) {
      this.failure ??= err instanceof Error ? err : new Error(String(err));
      throw this.failure;
    } finally {
      await Promise.all([rm(member.input, { force: true }), rm(member.output, { force: true })]);
    }
  }

  async end(): Promise<GzipWritten> {
    try {
      if (this.chunk || this.chunks === 0) await this.closeChunk();
      while (this.members.length > 0) await this.appendOldest();
    } catch (err) {
      await this.abort();
      throw err;
    }
    return this.out.close();
  }

  async abort(): Promise<void> {
    this.failure ??= new Error('aborted');
    await this.chunk?.close().catch(() => undefined);
    this.chunk = undefined;
    const left = this.members.splice(0);
    await Promise.allSettled(left.map((m) => m.compressed));
    await Promise.all(left.flatMap((m) => [rm(m.input, { force: true }), rm(m.output, { force: true })]));
    await rm(`${this.path}.chunk${this.chunks}`, { force: true });
    await this.out.discard();
  }
}

const versions = new Map<string, Promise<string | undefined>>();

/** igzip's version ("2.30.0"), or undefined when `bin` cannot be run. Asked once per process and path. */
export function igzipVersion(bin = 'igzip'): Promise<string | undefined> {
  let v = versions.get(bin);
  if (!v) {
    v = new Promise((resolve) => {
      execFile(bin, ['-V'], { timeout: 10_000 }, (err, stdout) => {
        if (err) return resolve(undefined);
        resolve(/(\d+\.\d+(?:\.\d+)?)/.exec(stdout)?.[1] ?? 'unknown');
      });
    });
    versions.set(bin, v);
  }
  return v;
}

export function igzipCodec(bin: string, version: string, level: number): GzipCodec {
  return {
    name: `igzip ${version} level ${level}`,
    spec: { kind: 'igzip', bin, version, level },
    encoder: async (path) => new IgzipEncoder(bin, level, await HashedFile.create(path), path),
  };
}
