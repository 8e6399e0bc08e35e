import { open } from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';
import type { Readable } from 'node:stream';
import { OciError } from '../oci/errors.js';
import { cacheLookups, upstreamErrors } from '../ops/metrics.js';
import type { Logger } from '../ops/log.js';
import type { BlobStore } from '../store/blobs.js';
import type { RecordStore } from '../store/records.js';
import { headerValue, type UpstreamResponse } from '../upstream/types.js';
import { upstreamFailure, upstreamStatusError } from './errors.js';
import { InflightBlob } from './inflight.js';
import type { RepoRef } from './upstreams.js';

export interface ByteRange {
  start: number;
  end: number;
}

/** A blob ready to be served: its size when known, and a way to read it. */
export interface BlobSource {
  size: number | undefined;
  /** True when served from the local store (vs. streaming from an upstream fetch). */
  cached: boolean;
  open(range?: ByteRange): Readable;
  /** For a cached blob: its file, pinned against eviction until `release`. */
  file?(): { path: string; release(): void } | undefined;
}

/**
 * Pull-through blobs (cf. distribution's registry/proxy/proxyblobstore.go),
 * with the herd problem solved: concurrent requests for an uncached blob
 * share one upstream fetch and all stream from it as it lands.
 */
export class ProxyBlobs {
  private readonly inflight = new Map<string, Promise<InflightBlob>>();

  constructor(
    private readonly store: BlobStore,
    private readonly records: RecordStore,
    private readonly logger: Logger,
  ) {}

  async get(ref: RepoRef, digest: string): Promise<BlobSource> {
    const local = await this.local(ref, digest);
    if (local) return local;
    cacheLookups.inc({ kind: 'blob', result: 'miss' });
    const blob = await this.fetch(ref, digest);
    return { size: blob.size, cached: false, open: (range) => blob.reader(range) };
  }

  /** Size of a blob, asking upstream with HEAD when it is not cached (nothing is downloaded). */
  async head(ref: RepoRef, digest: string): Promise<number | undefined> {
    const local = await this.local(ref, digest);
    if (local) return local.size;
    const up = ref.entry.upstream;
    const pending = this.inflight.get(flightKey(ref, digest));
    if (pending) return (await pending).size;
    let res: UpstreamResponse;
    try {
      res = await up.request({ method: 'HEAD', path: `/v2/${ref.repo}/blobs/${digest}`, repository: ref.repo });
    } catch (err) {
      throw upstreamFailure(err, `blob ${digest}`);
    }
    if (res.status !== 200) throw upstreamStatusError(res, up.name, `blob ${digest}`, this.unknown(ref, digest));
    res.body.resume();
    const len = headerValue(res, 'content-length');
    return len === undefined ? undefined : Number(len);
  }

  private async local(ref: RepoRef, digest: string): Promise<BlobSource | undefined> {
    const st = this.store.stat(digest);
    if (!st) return undefined;
    // Content is shared across repositories, but served under a name only once
    // that repository is known to hold it (a fetch through it recorded a link).
    if (!(await this.records.hasBlobLink(ref.entry.upstream.name, ref.repo, digest))) return undefined;
    cacheLookups.inc({ kind: 'blob', result: 'hit' });
    return {
      size: st.size,
      cached: true,
      open: (range) => {
        const s = this.store.openRead(digest, range);
        if (!s) throw new OciError('BLOB_UNKNOWN', `blob ${digest} was evicted`, { digest });
        return s;
      },
      file: () => {
        if (!this.store.has(digest)) return undefined;
        this.store.pin(digest);
        return { path: this.store.pathOf(digest), release: () => this.store.unpin(digest) };
      },
    };
  }

  private fetch(ref: RepoRef, digest: string): Promise<InflightBlob> {
    const key = flightKey(ref, digest);
    const running = this.inflight.get(key);
    if (running) return running;
    const started = this.start(ref, digest, key);
    this.inflight.set(key, started);
    started.catch(() => this.inflight.delete(key));
    return started;
  }

  /** Resolves once upstream answered with headers; the body keeps landing in the background. */
  private async start(ref: RepoRef, digest: string, key: string): Promise<InflightBlob> {
    const up = ref.entry.upstream;
    let res: UpstreamResponse;
    try {
      res = await up.request({ method: 'GET', path: `/v2/${ref.repo}/blobs/${digest}`, repository: ref.repo });
    } catch (err) {
      throw upstreamFailure(err, `blob ${digest}`);
    }
    if (res.status !== 200) throw upstreamStatusError(res, up.name, `blob ${digest}`, this.unknown(ref, digest));
    const len = headerValue(res, 'content-length');
    const writer = this.store.createWriter(digest);
    // The body may fail while the temp file opens; the pipeline below picks the error up from the stream.
    res.body.on('error', () => undefined);
    let fh;
    try {
      fh = await open(writer.tmpPath, 'w+');
    } catch (err) {
      res.body.destroy();
      throw err;
    }
    const blob = new InflightBlob(writer.tmpPath, len === undefined ? undefined : Number(len));
    this.store.pin(digest);
    pipeline(res.body, writer.verifier, blob.sink(fh))
      .then(() => fh.close())
      .then(() => writer.commit())
      .then(() => this.records.putBlobLink(up.name, ref.repo, digest))
      .then(
        () => blob.finish(),
        async (err: Error) => {
          await fh.close().catch(() => undefined);
          await writer.abort();
          upstreamErrors.inc({ upstream: up.name, kind: err.name === 'DigestMismatchError' ? 'digest' : 'body' });
          this.logger.warn({ upstream: up.name, repo: ref.repo, digest, err: err.message }, 'blob fetch failed; nothing cached');
          blob.fail(err);
        },
      )
      .finally(() => {
        this.store.unpin(digest);
        this.inflight.delete(key);
      });
    return blob;
  }

  private unknown(ref: RepoRef, digest: string): OciError {
    return new OciError('BLOB_UNKNOWN', `blob ${digest} is not known in ${ref.clientName}`, { name: ref.clientName, digest });
  }
}

/** Fetches are shared per repository: a repository proves it holds a blob by serving it. */
function flightKey(ref: RepoRef, digest: string): string {
  return `${ref.entry.upstream.name}\0${ref.repo}\0${digest}`;
}
