import { isDigest } from '../oci/digest.js';
import {
  DOCKER_CONFIG,
  DOCKER_LAYER_GZIP,
  IMAGE_MANIFEST_TYPES,
  OCI_CONFIG,
  OCI_LAYER_GZIP,
  OCI_LAYER_TAR,
  OCI_LAYER_ZSTD,
  isIndexType,
} from '../oci/mediatypes.js';
import type { Descriptor, ImageConfig, ImageIndex, ImageManifest, ManifestBlob, Platform } from '../oci/types.js';
import { ConvertError } from './errors.js';
import { MAX_DOCUMENT_BYTES, readSmall, type ImageSource } from '../image/source.js';

export const DEFAULT_PLATFORMS: readonly string[] = ['linux/amd64', 'linux/arm64'];

export type LayerCompression = 'gzip' | 'zstd' | 'none';

export interface ResolvedLayer {
  descriptor: Descriptor;
  /** What the media type says; flatten still sniffs the bytes (Docker layers are sometimes uncompressed). */
  compression: LayerCompression;
}

export interface ResolvedImage {
  /** The index the reference pointed to, when it was one. */
  index?: ManifestBlob;
  /** The image manifest chosen (the Box's `subject`). */
  manifest: ManifestBlob;
  parsed: ImageManifest;
  /** "os/arch[/variant]" of the chosen image, from its config. */
  platform: string;
  config: ImageConfig;
  configDescriptor: Descriptor;
  layers: ResolvedLayer[];
}

const LAYER_TYPES: ReadonlyMap<string, LayerCompression> = new Map<string, LayerCompression>([
  [OCI_LAYER_TAR, 'none'],
  [OCI_LAYER_GZIP, 'gzip'],
  [OCI_LAYER_ZSTD, 'zstd'],
  [DOCKER_LAYER_GZIP, 'gzip'],
  // Non-distributable variants carry the same bytes.
  ['application/vnd.oci.image.layer.nondistributable.v1.tar', 'none'],
  ['application/vnd.oci.image.layer.nondistributable.v1.tar+gzip', 'gzip'],
  ['application/vnd.oci.image.layer.nondistributable.v1.tar+zstd', 'zstd'],
  ['application/vnd.docker.image.rootfs.foreign.diff.tar.gzip', 'gzip'],
]);

export function platformString(p: Platform | { os?: string; architecture?: string; variant?: string }): string {
  return [p.os ?? 'unknown', p.architecture ?? 'unknown', p.variant].filter((s): s is string => !!s).join('/');
}

function parseJson<T>(bytes: Buffer, what: string): T {
  try {
    return JSON.parse(bytes.toString('utf8')) as T;
  } catch (err) {
    throw new ConvertError('MANIFEST_INVALID', `${what} is not valid JSON`, { cause: err });
  }
}

function matches(p: Platform | undefined, want: string): boolean {
  if (!p) return false;
  const [os, arch, variant] = want.split('/');
  return p.os === os && p.architecture === arch && (variant === undefined || p.variant === variant);
}

/**
 * Chooses an index entry: the first preference that matches, else the first entry that is a real platform
 * (BuildKit attestation manifests are `unknown/unknown`).
 */
export function choosePlatform(index: ImageIndex, preferences: readonly string[]): Descriptor | undefined {
  for (const want of preferences) {
    const hit = index.manifests.find((d) => matches(d.platform, want));
    if (hit) return hit;
  }
  return index.manifests.find(
    (d) => d.platform?.os !== 'unknown' && d.annotations?.['vnd.docker.reference.type'] !== 'attestation-manifest',
  );
}

/** Resolves a reference to one image manifest, its config and its layer descriptors. */
export async function resolveImage(
  source: ImageSource,
  reference: string,
  platforms: readonly string[] = DEFAULT_PLATFORMS,
): Promise<ResolvedImage> {
  let blob = await source.getManifest(reference);
  let index: ManifestBlob | undefined;
  // An index may point at another index (rare, but legal); two hops is plenty and bounds hostile chains.
  for (let depth = 0; isIndexType(blob.mediaType) || isIndexFile(blob); depth++) {
    if (depth >= 2) throw new ConvertError('MANIFEST_INVALID', 'image index nesting is deeper than 2');
    const parsedIndex = parseJson<ImageIndex>(blob.bytes, `index ${blob.digest}`);
    if (!Array.isArray(parsedIndex.manifests)) throw new ConvertError('MANIFEST_INVALID', `index ${blob.digest} has no manifests`);
    const chosen = choosePlatform(parsedIndex, platforms);
    if (!chosen || !isDigest(chosen.digest)) {
      const have = parsedIndex.manifests.map((d) => (d.platform ? platformString(d.platform) : '?')).join(', ');
      throw new ConvertError('PLATFORM_NOT_FOUND', `no image for ${platforms.join(' or ')} in index ${blob.digest} (has: ${have || 'nothing'})`);
    }
    index ??= blob;
    blob = await source.getManifest(chosen.digest);
  }
  if (blob.mediaType.startsWith('application/vnd.docker.distribution.manifest.v1')) {
    throw new ConvertError('UNSUPPORTED_MEDIA_TYPE', 'Docker schema 1 manifests are not supported (deprecated); push the image again with a current client');
  }
  const parsed = parseJson<ImageManifest>(blob.bytes, `manifest ${blob.digest}`);
  if (!IMAGE_MANIFEST_TYPES.has(blob.mediaType) && parsed.schemaVersion !== 2) {
    throw new ConvertError('UNSUPPORTED_MEDIA_TYPE', `manifest media type ${blob.mediaType} is not an image manifest`);
  }
  if (!parsed.config || !isDigest(parsed.config.digest) || !Array.isArray(parsed.layers)) {
    throw new ConvertError('MANIFEST_INVALID', `manifest ${blob.digest} lacks a config or layers`);
  }
  if (parsed.config.mediaType !== OCI_CONFIG && parsed.config.mediaType !== DOCKER_CONFIG) {
    throw new ConvertError('UNSUPPORTED_MEDIA_TYPE', `config media type ${parsed.config.mediaType} is not an image config (an artifact, not a container image)`);
  }
  const layers = parsed.layers.map((descriptor): ResolvedLayer => {
    const compression = LAYER_TYPES.get(descriptor.mediaType);
    if (!compression) {
      throw new ConvertError('UNSUPPORTED_MEDIA_TYPE', `layer ${descriptor.digest} has media type ${descriptor.mediaType}, not a filesystem layer`);
    }
    if (!isDigest(descriptor.digest)) throw new ConvertError('MANIFEST_INVALID', `layer digest ${descriptor.digest} is not sha256`);
    return { descriptor, compression };
  });
  const configBytes = await readSmall(await source.openBlob(parsed.config.digest), MAX_DOCUMENT_BYTES, `config ${parsed.config.digest}`);
  const config = parseJson<ImageConfig>(configBytes, `config ${parsed.config.digest}`);
  if (typeof config !== 'object' || config === null) throw new ConvertError('CONFIG_INVALID', 'image config is not an object');
  const result: ResolvedImage = {
    manifest: blob,
    parsed,
    platform: platformString(config),
    config,
    configDescriptor: parsed.config,
    layers,
  };
  if (index) result.index = index;
  return result;
}

/** Some stores lose the media type; an index is recognizable by its `manifests` array. */
function isIndexFile(blob: ManifestBlob): boolean {
  if (IMAGE_MANIFEST_TYPES.has(blob.mediaType)) return false;
  try {
    const parsed = JSON.parse(blob.bytes.toString('utf8')) as { manifests?: unknown; layers?: unknown };
    return Array.isArray(parsed.manifests) && !Array.isArray(parsed.layers);
  } catch {
    return false;
  }
}
