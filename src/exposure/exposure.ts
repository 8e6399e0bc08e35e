import { LRUCache } from 'lru-cache';
import { ANNOTATION_STRATEGY } from '../box/format.js';
import { isDigest, sha256 } from '../oci/digest.js';
import { OciError } from '../oci/errors.js';
import { DOCKER_LIST, DOCKER_MANIFEST, IMAGE_MANIFEST_TYPES, OCI_INDEX, isIndexType } from '../oci/mediatypes.js';
import type { Descriptor, ImageConfig, ImageIndex, ImageIndex as Index, ImageManifest, ManifestBlob, Platform } from '../oci/types.js';
import type { Logger } from '../ops/log.js';
import type { ConversionService } from '../conversions/service.js';
import type { BlobSource } from '../registry/blobs.js';
import type { AcceptsMediaType } from '../registry/manifests.js';
import type { PullThroughRegistry, RegistryService } from '../registry/registry.js';
import type { TagPage } from '../registry/tags.js';
import type { RepoRef } from '../registry/upstreams.js';
import type { BlobStore } from '../store/blobs.js';
import type { ConversionRecord } from '../store/conversions.js';
import type { RecordStore } from '../store/records.js';
import { BOX_PLATFORM, hasWasmEntry, pickPlatform } from './platform.js';

/** A repository reference, and whether it was asked for under the Box namespace. */
export interface ExposedRef extends RepoRef {
  box: boolean;
}

/**
 * augment: tag indexes get a wasip1/wasm entry, plus Box references and referrers;
 * box-refs: Box references and referrers only; referrers: referrers only.
 */
export type ExposureMode = 'augment' | 'box-refs' | 'referrers';

export interface ExposureOptions {
  mode: ExposureMode;
  boxNamespace: string;
  /** How long a tag request waits for a pending conversion before answering without the Box. */
  waitMs: number;
  /** How long a Box reference waits for a pending conversion. */
  boxWaitMs: number;
  platforms: string[];
}

const SIG_TAG = /^sha256-([a-f0-9]{64})\.sig$/;

/**
 * Box exposure: wraps the pull-through core without changing it. Upstream
 * bytes by digest are always the core's; what this adds (an index with a
 * Box entry, Box references, signature tags, referrers) is stored content-
 * addressed and linked into the repository, so follow-up requests by digest
 * are plain cache hits in the core.
 */
export class BoxExposure implements RegistryService<ExposedRef> {
  /** Source manifest digest (tag target) -> image manifest chosen for conversion. */
  private readonly picked = new LRUCache<string, ManifestBlob | false>({ max: 10_000 });
  /** `<source digest> <box digest>` -> index carrying the Box entry. */
  private readonly augmented = new LRUCache<string, ManifestBlob>({ max: 10_000 });
  /** Index digest -> image digest it was converted through (referrers of an index list its Box). */
  private readonly indexToImage = new LRUCache<string, string>({ max: 10_000 });
  private readonly linked = new LRUCache<string, true>({ max: 100_000 });
  private readonly platformOf = new LRUCache<string, Platform>({ max: 10_000 });

  constructor(
    private readonly core: PullThroughRegistry,
    private readonly conversions: ConversionService,
    private readonly store: BlobStore,
    private readonly links: RecordStore,
    private readonly opts: ExposureOptions,
    private readonly logger: Logger,
  ) {}

  resolve(name: string, ns: string | undefined): ExposedRef {
    const prefix = `${this.opts.boxNamespace}/`;
    if (this.opts.mode !== 'referrers' && name.startsWith(prefix)) return { ...this.core.resolve(name.slice(prefix.length), ns), box: true };
    return { ...this.core.resolve(name, ns), box: false };
  }

  async manifest(ref: ExposedRef, reference: string, accepts: AcceptsMediaType): Promise<ManifestBlob> {
    if (isDigest(reference)) return this.core.manifest(ref, reference, accepts);
    const sig = SIG_TAG.exec(reference);
    if (sig) {
      const served = await this.signatureManifest(ref, `sha256:${sig[1]}`);
      if (served) return served;
    }
    if (ref.box) return this.boxManifest(ref, reference, accepts);
    const source = await this.core.manifests.byTag(ref, reference);
    const image = await this.imageOf(ref, source);
    if (image) {
      if (this.opts.mode === 'augment' && (accepts(OCI_INDEX) || accepts(DOCKER_LIST))) {
        const rec = await this.conversions.wait(ref, image, this.opts.waitMs, true);
        const index = rec ? await this.augment(ref, source, image, rec) : undefined;
        if (index && accepts(index.mediaType)) return index;
      } else {
        // Converting is what asking for an image does; the answer does not wait for it.
        this.conversions.ensure(ref, image).catch((err: Error) => this.logger.warn({ err: err.message }, 'conversion failed to start'));
      }
    }
    return this.core.manifest(ref, reference, accepts);
  }

  blob(ref: ExposedRef, digest: string): Promise<BlobSource> {
    return this.core.blob(ref, digest);
  }

  blobSize(ref: ExposedRef, digest: string): Promise<number | undefined> {
    return this.core.blobSize(ref, digest);
  }

  tags(ref: ExposedRef, n: number | undefined, last: string | undefined): Promise<TagPage> {
    return this.core.tags(ref, n, last);
  }

  async referrers(ref: ExposedRef, digest: string, artifactType: string | undefined): Promise<ImageIndex> {
    const base = await this.core.referrers(ref, digest, undefined);
    const extra: Descriptor[] = [];
    const rec = this.conversions.get(this.indexToImage.get(digest) ?? digest);
    if (rec?.box) {
      await this.link(ref, rec);
      extra.push(rec.box.descriptor, rec.box.signatures.cosign.descriptor, rec.box.signatures.bundle.descriptor);
    }
    const boxRec = this.conversions.byBoxDigest(digest);
    if (boxRec?.box) {
      await this.link(ref, boxRec);
      extra.push(boxRec.box.signatures.cosign.descriptor, boxRec.box.signatures.bundle.descriptor);
    }
    const seen = new Set(base.manifests.map((d) => d.digest));
    const all = [...base.manifests, ...extra.filter((d) => !seen.has(d.digest))];
    return { ...base, manifests: artifactType === undefined ? all : all.filter((d) => d.artifactType === artifactType) };
  }

  /**
   * Starts converting what `reference` names (status API pre-conversion);
   * answers the current record without waiting for the conversion.
   */
  async preconvert(ref: ExposedRef, reference: string): Promise<{ source: string; record: ConversionRecord | undefined }> {
    const source = isDigest(reference) ? await this.core.manifests.byDigest(ref, reference) : await this.core.manifests.byTag(ref, reference);
    const image = await this.imageOf(ref, source);
    if (!image) throw new OciError('MANIFEST_UNKNOWN', `${ref.clientName}:${reference} has no image manifest to convert`);
    const record = await this.conversions.wait(ref, image, 0);
    return { source: image.digest, record: record ?? this.conversions.get(image.digest) };
  }

  /** The Box itself, for `/v2/<boxNamespace>/<name>/manifests/<tag>`. */
  private async boxManifest(ref: ExposedRef, tag: string, accepts: AcceptsMediaType): Promise<ManifestBlob> {
    const source = await this.core.manifests.byTag(ref, tag);
    const image = await this.imageOf(ref, source);
    const where = `${ref.clientName}:${tag}`;
    if (!image) throw new OciError('MANIFEST_UNKNOWN', `no Box for ${where}: no image manifest to convert`, { state: 'unconvertible' });
    const rec = await this.conversions.wait(ref, image, this.opts.boxWaitMs);
    if (!rec) throw new OciError('MANIFEST_UNKNOWN', `no Box for ${where} yet: converting`, { state: 'converting', source: image.digest });
    if (rec.state !== 'done' || !rec.box) {
      throw new OciError('MANIFEST_UNKNOWN', `no Box for ${where}: ${rec.reason ?? rec.state}`, { state: rec.state, reason: rec.reason, source: image.digest });
    }
    await this.link(ref, rec);
    return this.core.manifest(ref, rec.box.descriptor.digest, accepts);
  }

  /** The cosign `.sig` manifest of a Box this proxy made, in any repository the Box is served under. */
  private async signatureManifest(ref: RepoRef, boxDigest: string): Promise<ManifestBlob | undefined> {
    const rec = this.conversions.byBoxDigest(boxDigest);
    if (!rec?.box) return undefined;
    await this.link(ref, rec);
    return this.core.manifests.byDigest(ref, rec.box.signatures.cosign.descriptor.digest);
  }

  /** The image manifest a tag's target stands for (a platform's entry for an index), memoized per digest. */
  private async imageOf(ref: RepoRef, source: ManifestBlob): Promise<ManifestBlob | undefined> {
    const memo = this.picked.get(source.digest);
    if (memo !== undefined) return memo || undefined;
    let image: ManifestBlob | undefined;
    if (IMAGE_MANIFEST_TYPES.has(source.mediaType)) image = source;
    else if (isIndexType(source.mediaType)) {
      const index = JSON.parse(source.bytes.toString('utf8')) as Index;
      const entry = hasWasmEntry(index) ? undefined : pickPlatform(index, this.opts.platforms);
      if (entry && IMAGE_MANIFEST_TYPES.has(entry.mediaType)) {
        image = await this.core.manifests.byDigest(ref, entry.digest);
        this.indexToImage.set(source.digest, image.digest);
        if (entry.platform) this.platformOf.set(image.digest, entry.platform);
      }
    }
    this.picked.set(source.digest, image ?? false);
    return image;
  }

  /** The tag's index plus a wasip1/wasm entry for the Box; stored so it can be fetched by digest. */
  private async augment(ref: RepoRef, source: ManifestBlob, image: ManifestBlob, rec: ConversionRecord): Promise<ManifestBlob | undefined> {
    if (rec.state !== 'done' || !rec.box) return undefined;
    await this.link(ref, rec);
    const key = `${source.digest} ${rec.box.descriptor.digest}`;
    let index = this.augmented.get(key);
    if (!index) {
      const box = rec.box.descriptor;
      const entry: Descriptor = {
        mediaType: box.mediaType,
        digest: box.digest,
        size: box.size,
        platform: BOX_PLATFORM,
        annotations: { [ANNOTATION_STRATEGY]: rec.box.strategy, 'org.opencontainers.image.base.digest': image.digest },
      };
      let doc: Index;
      if (isIndexType(source.mediaType)) {
        const upstream = JSON.parse(source.bytes.toString('utf8')) as Index;
        doc = { ...upstream, manifests: [...upstream.manifests, entry] };
      } else {
        const platform = await this.imagePlatform(ref, image);
        // Same family as the wrapped manifest, so a client that took it takes the index too.
        const mediaType = source.mediaType === DOCKER_MANIFEST ? DOCKER_LIST : OCI_INDEX;
        doc = { schemaVersion: 2, mediaType, manifests: [{ mediaType: source.mediaType, digest: source.digest, size: source.bytes.length, platform }, entry] };
      }
      const bytes = Buffer.from(JSON.stringify(doc));
      const mediaType = doc.mediaType ?? source.mediaType;
      index = { digest: sha256(bytes), mediaType, bytes };
      await this.store.putBuffer(index.digest, bytes);
      this.augmented.set(key, index);
    }
    const up = ref.entry.upstream.name;
    if ((await this.links.getManifestLink(up, ref.repo, index.digest)) === undefined) await this.links.putManifestLink(up, ref.repo, index.digest, index.mediaType);
    return index;
  }

  private async imagePlatform(ref: RepoRef, image: ManifestBlob): Promise<Platform> {
    const known = this.platformOf.get(image.digest);
    if (known) return known;
    const manifest = JSON.parse(image.bytes.toString('utf8')) as ImageManifest;
    const src = await this.core.blobs.get(ref, manifest.config.digest);
    const chunks: Buffer[] = [];
    for await (const c of src.open()) chunks.push(c as Buffer);
    const config = JSON.parse(Buffer.concat(chunks).toString('utf8')) as ImageConfig;
    const platform: Platform = { os: config.os, architecture: config.architecture, ...(config.variant ? { variant: config.variant } : {}) };
    this.platformOf.set(image.digest, platform);
    return platform;
  }

  private async link(ref: RepoRef, rec: ConversionRecord): Promise<void> {
    const key = `${ref.entry.upstream.name}\0${ref.repo}\0${rec.sourceDigest}`;
    if (this.linked.has(key)) return;
    await this.conversions.linkInto(ref, rec);
    this.linked.set(key, true);
  }
}

