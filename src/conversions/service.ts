import { createReadStream } from 'node:fs';
import { ANNOTATION_STRATEGY } from '../box/format.js';
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import picomatch from 'picomatch';
import { CONVERTER_VERSION } from '../convert/version.js';
import { OCI_CONFIG, OCI_MANIFEST, isIndexType } from '../oci/mediatypes.js';
import type { Descriptor, ImageManifest, ManifestBlob } from '../oci/types.js';
import type { Logger } from '../ops/log.js';
import { boxBytes, conversionSeconds, conversions } from '../ops/metrics.js';
import type { PullThroughRegistry } from '../registry/registry.js';
import type { RepoRef } from '../registry/upstreams.js';
import type { BlobStore } from '../store/blobs.js';
import type { ConversionRecord, ConversionStore } from '../store/conversions.js';
import type { RecordStore } from '../store/records.js';
import type { RuntimeNeed } from '../convert/runtimes.js';
import type { RuntimeProvisioner } from '../runtimes/provision.js';
import type { SigningKey } from '../sign/keys.js';
import { signManifest } from '../sign/signer.js';
import { TaskPool } from './pool.js';
import { runConversionWorker } from './run-worker.js';
import type { WorkerRequest } from './worker-protocol.js';

export interface ConversionOptions {
  storageRoot: string;
  workers: number;
  timeoutMs: number;
  maxHeapMb: number;
  /** A failed conversion is tried again after this long. */
  retryFailedAfterMs: number;
  /** Globs over `<upstream>/<repository>`. */
  include: string[];
  exclude: string[];
  maxImageBytes: number;
  limits?: WorkerRequest['limits'];
  runtimes?: WorkerRequest['runtimes'];
  gzip?: WorkerRequest['gzip'];
  /** Obtains runtimes the catalog lacks (built in the background); without it such images fail with the reason. */
  provisioner?: RuntimeProvisioner;
}

/** A conversion that stopped only for want of a runtime. */
interface NeedsRuntime {
  needs: RuntimeNeed;
  reason: string;
}

const FINAL = new Set(['done', 'unconvertible', 'failed']);

/**
 * Converts source images into signed Boxes, off the request path: one
 * conversion per source digest however many requests ask, at most
 * `workers` at once, each in its own worker thread. Outcomes are persisted,
 * so a restart serves Boxes without converting again, and a converter
 * version bump makes old outcomes stale.
 */
export class ConversionService {
  private readonly pool: TaskPool;
  private readonly running = new Map<string, Promise<ConversionRecord>>();
  private readonly byBox = new Map<string, ConversionRecord>();
  private readonly startedAt = new Map<string, number>();
  private readonly included: (s: string) => boolean;
  private readonly excluded: (s: string) => boolean;
  private readonly stopping = new AbortController();

  constructor(
    private readonly core: PullThroughRegistry,
    private readonly store: BlobStore,
    private readonly links: RecordStore,
    private readonly records: ConversionStore,
    private readonly key: SigningKey,
    private readonly opts: ConversionOptions,
    private readonly logger: Logger,
  ) {
    this.pool = new TaskPool(opts.workers);
    this.included = picomatch(opts.include.length ? opts.include : ['**'], { dot: true });
    this.excluded = opts.exclude.length ? picomatch(opts.exclude, { dot: true }) : () => false;
    for (const rec of records.all()) if (rec.box) this.byBox.set(rec.box.descriptor.digest, rec);
  }

  /** The current outcome for a source image manifest, if any (stale converter versions excluded). */
  get(sourceDigest: string): ConversionRecord | undefined {
    const rec = this.records.get(sourceDigest);
    return rec && rec.converterVersion === CONVERTER_VERSION ? this.live(rec) : undefined;
  }

  /** A record as it is now: one waiting for a runtime carries what obtaining the runtime is doing. */
  private live(rec: ConversionRecord): ConversionRecord {
    const waiting = rec.state === 'waiting-runtime' && rec.waitingFor ? this.opts.provisioner?.status(rec.waitingFor) : undefined;
    return waiting ? { ...rec, waiting: { ...waiting } } : rec;
  }

  /** The conversion that produced a Box, by the Box's manifest digest. */
  byBoxDigest(boxDigest: string): ConversionRecord | undefined {
    return this.byBox.get(boxDigest);
  }

  list(): ConversionRecord[] {
    return this.records
      .all()
      .sort((a, b) => b.updatedAt - a.updatedAt)
      .map((rec) => this.live(rec));
  }

  allowed(ref: RepoRef): string | undefined {
    const name = `${ref.entry.upstream.name}/${ref.repo}`;
    if (!this.included(name) || this.excluded(name)) return `${name} is not selected for conversion by conversion.include/exclude`;
    return undefined;
  }

  /** Stops running conversions and waits for them to wind down; nothing is written afterwards. */
  async close(): Promise<void> {
    this.stopping.abort();
    await Promise.allSettled([...this.running.values()]);
  }

  /** Starts (or joins) the conversion of an image manifest; resolves with its final record. */
  ensure(ref: RepoRef, image: ManifestBlob): Promise<ConversionRecord> {
    const existing = this.get(image.digest);
    if (existing && FINAL.has(existing.state)) {
      const retry = existing.state === 'failed' && Date.now() - existing.updatedAt >= this.opts.retryFailedAfterMs;
      if (!retry) return Promise.resolve(existing);
    }
    const running = this.running.get(image.digest);
    if (running) return running;
    const p = this.start(ref, image).finally(() => {
      this.running.delete(image.digest);
      this.startedAt.delete(image.digest);
    });
    this.running.set(image.digest, p);
    this.startedAt.set(image.digest, Date.now());
    return p;
  }

  /**
   * The final record, or undefined when the conversion is still going after
   * `ms`. With `sinceStart`, the budget counts from the conversion's start,
   * not the caller's arrival: once a conversion has run longer than `ms`,
   * further callers do not wait at all (a tag under load is not slowed by
   * a long conversion).
   */
  async wait(ref: RepoRef, image: ManifestBlob, ms: number, sinceStart = false): Promise<ConversionRecord | undefined> {
    const known = this.get(image.digest);
    // The hot path: a finished conversion needs no timer.
    if (known && (known.state === 'done' || known.state === 'unconvertible')) return known;
    const p = this.ensure(ref, image);
    const started = this.startedAt.get(image.digest);
    if (sinceStart && started !== undefined) ms = Math.max(0, started + ms - Date.now());
    if (ms === 0) return Promise.race([p, Promise.resolve(undefined)]);
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<undefined>((resolve) => {
      timer = setTimeout(() => resolve(undefined), ms);
    });
    try {
      return await Promise.race([p, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  private async start(ref: RepoRef, image: ManifestBlob): Promise<ConversionRecord> {
    const now = Date.now();
    const previous = this.records.get(image.digest);
    const rec: ConversionRecord = {
      sourceDigest: image.digest,
      upstream: ref.entry.upstream.name,
      repository: ref.repo,
      state: 'pending',
      converterVersion: CONVERTER_VERSION,
      createdAt: now,
      updatedAt: now,
      attempts: (previous?.converterVersion === CONVERTER_VERSION ? previous.attempts : 0) + 1,
    };
    const refused = this.allowed(ref) ?? (isIndexType(image.mediaType) ? 'an index is not an image: pick a platform first' : undefined);
    if (refused) return this.finish(rec, { state: 'unconvertible', reason: refused }, now);
    if (this.stopping.signal.aborted) return rec;
    await this.records.put(rec);
    const first = await this.attempt(ref, image, rec, now);
    if (!('needs' in first)) return first;
    const provisioner = this.opts.provisioner;
    if (!provisioner) return this.finish(rec, { state: 'failed', reason: first.reason }, now);
    // Off the worker pool: a build takes minutes, and conversions that need no runtime go on meanwhile.
    await this.records.put({ ...rec, state: 'waiting-runtime', waitingFor: first.needs, updatedAt: Date.now() });
    this.logger.info({ source: image.digest, runtime: first.needs }, 'conversion waits for a runtime');
    try {
      await provisioner.obtain(first.needs);
    } catch (err) {
      return this.finish(rec, { state: 'failed', reason: (err as Error).message }, now);
    }
    const second = await this.attempt(ref, image, rec, now);
    // Obtained, and still refused: the runtime there is not one this image can use.
    return 'needs' in second ? this.finish(rec, { state: 'unconvertible', reason: second.reason }, now) : second;
  }

  /** One run of the converter on the pool; an image that only lacks a runtime comes back as NeedsRuntime. */
  private attempt(ref: RepoRef, image: ManifestBlob, rec: ConversionRecord, started: number): Promise<ConversionRecord | NeedsRuntime> {
    return this.pool.run(async () => {
      if (this.stopping.signal.aborted) return rec;
      await this.records.put({ ...rec, state: 'running', updatedAt: Date.now() });
      try {
        return await this.convert(ref, image, rec);
      } catch (err) {
        this.logger.warn({ source: image.digest, err: (err as Error).message }, 'conversion failed');
        return this.finish(rec, { state: 'failed', reason: (err as Error).message }, started);
      }
    });
  }

  private async convert(ref: RepoRef, image: ManifestBlob, rec: ConversionRecord): Promise<ConversionRecord | NeedsRuntime> {
    const started = Date.now();
    const manifest = JSON.parse(image.bytes.toString('utf8')) as ImageManifest;
    const blobs = [manifest.config, ...(manifest.layers ?? [])];
    const total = blobs.reduce((n, d) => n + (d.size ?? 0), 0);
    if (total > this.opts.maxImageBytes) {
      return this.finish(rec, { state: 'unconvertible', reason: `image is ${total} bytes, above conversion.maxImageBytes (${this.opts.maxImageBytes})` }, started);
    }
    const workDir = join(this.opts.storageRoot, 'tmp', `convert-${randomUUID()}`);
    for (const d of blobs) this.store.pin(d.digest);
    try {
      // The worker reads the store's files directly: bring every blob in first, through the cache.
      for (const d of blobs) {
        const src = await this.core.blobs.get(ref, d.digest);
        if (!src.cached) for await (const _ of src.open()) void _;
      }
      await mkdir(workDir, { recursive: true });
      const result = await runConversionWorker(
        {
          storageRoot: this.opts.storageRoot,
          workDir,
          sourceName: `${ref.entry.upstream.name}/${ref.repo}`,
          manifest: { digest: image.digest, mediaType: image.mediaType, bytes: new Uint8Array(image.bytes) },
          ...(this.opts.limits ? { limits: this.opts.limits } : {}),
          ...(this.opts.runtimes ? { runtimes: this.opts.runtimes } : {}),
          ...(this.opts.gzip ? { gzip: this.opts.gzip } : {}),
        },
        { timeoutMs: this.opts.timeoutMs, maxHeapMb: this.opts.maxHeapMb },
        this.stopping.signal,
      );
      if (result.kind === 'error') return this.finish(rec, { state: 'failed', reason: result.message }, started);
      if (result.kind === 'unconvertible' && result.needs) return { needs: result.needs, reason: result.reason };
      if (result.kind === 'unconvertible') return this.finish(rec, { state: 'unconvertible', reason: result.reason, report: result.report }, started);

      // Ingest: every blob verified against its digest on the way into the store.
      for (const layer of result.layers) await this.store.putStream(layer.digest, createReadStream(layer.path));
      await this.store.putBuffer(result.config.digest, Buffer.from(result.config.bytes));
      const boxManifest = Buffer.from(result.manifest.bytes);
      await this.store.putBuffer(result.manifest.digest, boxManifest);
      const parsed = JSON.parse(boxManifest.toString('utf8')) as ImageManifest;
      const strategy = parsed.annotations?.[ANNOTATION_STRATEGY] ?? 'unknown';
      const descriptor: Descriptor = {
        mediaType: result.manifest.mediaType || OCI_MANIFEST,
        digest: result.manifest.digest,
        size: boxManifest.length,
        artifactType: parsed.artifactType ?? parsed.config.mediaType ?? OCI_CONFIG,
        ...(parsed.annotations ? { annotations: parsed.annotations } : {}),
      };
      // Signed once, here; the signatures are stored and served as they are from now on.
      const sigs = await signManifest(this.key, { reference: `${rec.upstream}/${rec.repository}`, descriptor: { mediaType: descriptor.mediaType, digest: descriptor.digest, size: descriptor.size } });
      const sigBlobs = [...sigs.cosign.blobs, ...sigs.bundle.blobs];
      for (const b of sigBlobs) await this.store.putBuffer(b.digest, b.bytes);
      await this.store.putBuffer(sigs.cosign.manifest.digest, sigs.cosign.manifest.bytes);
      await this.store.putBuffer(sigs.bundle.manifest.digest, sigs.bundle.manifest.bytes);
      const done = await this.finish(
        rec,
        {
          state: 'done',
          report: result.report,
          box: {
            descriptor,
            strategy,
            blobs: [...new Set([...parsed.layers.map((l) => l.digest), parsed.config.digest, ...sigBlobs.map((b) => b.digest)])],
            manifests: [
              { digest: descriptor.digest, mediaType: descriptor.mediaType },
              { digest: sigs.cosign.manifest.digest, mediaType: sigs.cosign.manifest.mediaType },
              { digest: sigs.bundle.manifest.digest, mediaType: sigs.bundle.manifest.mediaType },
            ],
            signatures: { cosign: { tag: sigs.cosign.tag, descriptor: sigs.cosign.descriptor }, bundle: { descriptor: sigs.bundle.descriptor } },
          },
        },
        started,
      );
      boxBytes.inc(parsed.layers.reduce((n, l) => n + l.size, 0));
      return done;
    } finally {
      for (const d of blobs) this.store.unpin(d.digest);
      await rm(workDir, { recursive: true, force: true });
    }
  }

  private async finish(rec: ConversionRecord, outcome: Partial<ConversionRecord>, started: number): Promise<ConversionRecord> {
    const final: ConversionRecord = { ...rec, ...outcome, updatedAt: Date.now() };
    // After shutdown began, an interrupted conversion is not an outcome worth remembering.
    if (this.stopping.signal.aborted) return final;
    // Linked before the record is visible: whoever reads "done" (status API) can fetch the Box by digest at once.
    if (final.state === 'done') await this.linkInto(this.core.router.resolve(rec.repository, rec.upstream), final);
    await this.records.put(final);
    if (final.box) this.byBox.set(final.box.descriptor.digest, final);
    conversions.inc({ state: final.state, strategy: final.box?.strategy ?? 'none' });
    conversionSeconds.observe((Date.now() - started) / 1000);
    this.logger.info({ source: rec.sourceDigest, state: final.state, box: final.box?.descriptor.digest, reason: final.reason }, 'conversion finished');
    return final;
  }

  /** Makes a Box and its signatures servable under a repository (blobs and manifests by digest). */
  async linkInto(ref: RepoRef, rec: ConversionRecord): Promise<void> {
    if (!rec.box) return;
    const up = ref.entry.upstream.name;
    for (const m of rec.box.manifests) {
      if ((await this.links.getManifestLink(up, ref.repo, m.digest)) === undefined) await this.links.putManifestLink(up, ref.repo, m.digest, m.mediaType);
    }
    for (const b of rec.box.blobs) await this.links.putBlobLink(up, ref.repo, b);
  }
}
