// Turns a command-line image argument into an ImageSource: an OCI image layout directory, or a registry reference.
import { stat } from 'node:fs/promises';
import { upstreamSchema } from '../../config/schema.js';
import type { ImageSource } from '../../image/source.js';
import { OciLayoutSource } from '../../image/oci-layout.js';
import { RegistrySource } from '../../image/registry.js';
import { isDigest } from '../../oci/digest.js';
import { isRepositoryName, isTag, looksLikeRegistryHost } from '../../oci/names.js';
import { silentLogger } from '../../ops/log.js';
import { UpstreamClient } from '../../upstream/client.js';

export interface OpenedImage {
  source: ImageSource;
  /** Tag or digest within the source ("" for a layout's only image). */
  reference: string;
  /** The tag to give a Box written from it. */
  tag: string;
  close(): Promise<void>;
}

export class ImageRefError extends Error {
  override name = 'ImageRefError';
}

async function isDirectory(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isDirectory();
  } catch {
    return false;
  }
}

/** `path`, `path:tag`, `path@sha256:…` where path is a layout directory. */
async function layoutRef(arg: string): Promise<{ dir: string; reference: string } | undefined> {
  const explicit = /^(oci|oci-layout):/.exec(arg);
  const rest = explicit ? arg.slice(explicit[0].length) : arg;
  if (await isDirectory(rest)) return { dir: rest, reference: '' };
  const at = rest.lastIndexOf('@');
  if (at > 0 && isDigest(rest.slice(at + 1)) && (await isDirectory(rest.slice(0, at)))) return { dir: rest.slice(0, at), reference: rest.slice(at + 1) };
  const colon = rest.lastIndexOf(':');
  if (colon > 0 && isTag(rest.slice(colon + 1)) && (await isDirectory(rest.slice(0, colon)))) return { dir: rest.slice(0, colon), reference: rest.slice(colon + 1) };
  if (explicit) throw new ImageRefError(`${rest} is not an OCI image layout directory`);
  return undefined;
}

export interface RegistryRef {
  host: string;
  repository: string;
  /** Tag or digest. */
  reference: string;
  tag: string;
}

/** Parses `host[:port]/repo[:tag][@digest]`; a first component that is no host means Docker Hub. */
export function parseRegistryRef(arg: string): RegistryRef {
  let rest = arg;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at !== -1) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!isDigest(digest)) throw new ImageRefError(`${arg}: ${digest} is not a sha256 digest`);
  }
  const slash = rest.indexOf('/');
  let host = 'docker.io';
  if (slash > 0 && looksLikeRegistryHost(rest.slice(0, slash))) {
    host = rest.slice(0, slash);
    rest = rest.slice(slash + 1);
  }
  let tag = 'latest';
  const colon = rest.lastIndexOf(':');
  if (colon > 0) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!isTag(tag)) throw new ImageRefError(`${arg}: ${tag} is not a valid tag`);
  }
  const repository = host === 'docker.io' && !rest.includes('/') ? `library/${rest}` : rest;
  if (!isRepositoryName(repository)) throw new ImageRefError(`${arg}: ${rest} is not a valid repository name`);
  return { host, repository, reference: digest ?? tag, tag };
}

function isLoopback(host: string): boolean {
  const name = host.replace(/:\d+$/, '').replace(/^\[|\]$/g, '');
  return name === 'localhost' || name === '::1' || /^127\.\d+\.\d+\.\d+$/.test(name);
}

/**
 * Opens an image argument: an existing OCI layout directory (optionally `oci:` prefixed, with `:tag` or
 * `@digest`), else a registry reference reached over https, or plain http for loopback hosts and `insecure`.
 */
export async function openImage(arg: string, opts: { insecure?: boolean } = {}): Promise<OpenedImage> {
  const layout = await layoutRef(arg);
  if (layout) {
    return {
      source: new OciLayoutSource(layout.dir),
      reference: layout.reference,
      tag: layout.reference && !isDigest(layout.reference) ? layout.reference : 'latest',
      close: async () => undefined,
    };
  }
  const ref = parseRegistryRef(arg);
  const endpoint = ref.host === 'docker.io' ? 'registry-1.docker.io' : ref.host;
  const scheme = opts.insecure || isLoopback(ref.host) ? 'http' : 'https';
  const config = upstreamSchema.parse({ name: ref.host, url: `${scheme}://${endpoint}`, insecure: Boolean(opts.insecure) });
  const client = new UpstreamClient(config, silentLogger());
  return {
    source: new RegistrySource((req) => client.request(req), ref.repository, `${ref.host}/${ref.repository}`),
    reference: ref.reference,
    tag: ref.tag,
    close: () => client.close(),
  };
}
