// Runtime artifacts: OCI 1.1 artifact manifests with one tar+gzip layer holding a runtime's files, and the
// check that a manifest is one (catalog entries, pulled tags).
import { isDigest } from '../oci/digest.js';
import { OCI_LAYER_GZIP, OCI_MANIFEST } from '../oci/mediatypes.js';
import type { Descriptor, ImageManifest } from '../oci/types.js';

/** The catalog's artifacts: OCI 1.1 artifact manifests, one tar+gzip layer holding the runtime's files. */
export const RUNTIME_ARTIFACT_TYPE = 'application/vnd.dev.boxproxy.runtime.v1';
/** Config blob: the runtime's build manifest (or, for imported runtimes, where they came from). */
export const RUNTIME_CONFIG_TYPE = 'application/vnd.dev.boxproxy.runtime.config.v1+json';
export const ANNOTATION_RUNTIME_NAME = 'dev.boxproxy.runtime.name';
export const ANNOTATION_RUNTIME_VERSION = 'dev.boxproxy.runtime.version';
/** The build's input key (scripts/runtimes/<name>/build.sh): a catalog never packages the same build twice. */
export const ANNOTATION_RUNTIME_BUILD_KEY = 'dev.boxproxy.runtime.build-key';
export const REF_NAME = 'org.opencontainers.image.ref.name';
export const TITLE = 'org.opencontainers.image.title';

export interface CatalogEntry {
  name: string;
  version: string;
  descriptor: Descriptor;
}

/** A manifest that passed parseRuntimeArtifact. */
export interface RuntimeArtifact {
  name: string;
  version: string;
  manifest: ImageManifest;
}

/**
 * Parses an artifact manifest and checks it is a runtime artifact a catalog can hold (its type, its name and
 * version annotations, tar+gzip layers); throws saying what is wrong. `source` names where the bytes came from.
 */
export function parseRuntimeArtifact(manifestBytes: Buffer, source: string): RuntimeArtifact {
  let manifest: ImageManifest;
  try {
    manifest = JSON.parse(manifestBytes.toString('utf8')) as ImageManifest;
  } catch {
    throw new Error(`${source} is not a JSON manifest`);
  }
  if (manifest.mediaType !== OCI_MANIFEST || manifest.artifactType !== RUNTIME_ARTIFACT_TYPE) {
    throw new Error(
      `${source} is not a boxproxy runtime artifact (media type ${manifest.mediaType ?? 'none'}, artifact type ${manifest.artifactType ?? 'none'}; expected ${RUNTIME_ARTIFACT_TYPE})`,
    );
  }
  const name = manifest.annotations?.[ANNOTATION_RUNTIME_NAME];
  const version = manifest.annotations?.[ANNOTATION_RUNTIME_VERSION];
  if (!name || !version) throw new Error(`${source}: runtime artifact without ${ANNOTATION_RUNTIME_NAME} and ${ANNOTATION_RUNTIME_VERSION} annotations`);
  if (manifest.config?.mediaType !== RUNTIME_CONFIG_TYPE || !isDigest(manifest.config.digest)) throw new Error(`${source}: runtime artifact config is not a ${RUNTIME_CONFIG_TYPE} sha256 blob`);
  if (!Array.isArray(manifest.layers) || manifest.layers.length === 0) throw new Error(`${source}: runtime artifact has no layers`);
  for (const l of manifest.layers) {
    if (l.mediaType !== OCI_LAYER_GZIP || !isDigest(l.digest)) throw new Error(`${source}: runtime layer ${l.digest} is not a tar+gzip sha256 blob`);
  }
  return { name, version, manifest };
}
