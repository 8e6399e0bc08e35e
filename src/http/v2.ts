import type { NextFunction, Request, Response } from 'express';
import { pipeline } from 'node:stream/promises';
import { isDigest, looksLikeDigest } from '../oci/digest.js';
import { OciError } from '../oci/errors.js';
import { OCI_INDEX } from '../oci/mediatypes.js';
import { isTag } from '../oci/names.js';
import type { Logger } from '../ops/log.js';
import type { RegistryService } from '../registry/registry.js';
import { sendError } from './errors.js';
import { parseAccept, parseRange } from './negotiate.js';
import { sendFile } from './send-file.js';

/** A request path under /v2/ taken apart: which route, for which name, with which reference. */
export type V2Route =
  | { id: 'base' }
  | { id: 'catalog' }
  | { id: 'manifest'; name: string; reference: string }
  | { id: 'blob'; name: string; digest: string }
  | { id: 'upload'; name: string }
  | { id: 'upload-session'; name: string }
  | { id: 'tags'; name: string }
  | { id: 'referrers'; name: string; digest: string };

/**
 * Splits the raw path (never a URL-normalized one: `..` must not be resolved
 * away) from the end, since names contain slashes but references do not.
 */
export function parseV2Path(path: string): V2Route | undefined {
  if (path === '/v2' || path === '/v2/') return { id: 'base' };
  if (!path.startsWith('/v2/')) return undefined;
  const parts = path.slice(4).split('/');
  if (parts.length === 1 && parts[0] === '_catalog') return { id: 'catalog' };
  const n = parts.length;
  const at = (i: number) => parts[n - i] as string;
  if (n >= 3 && at(2) === 'blobs' && at(1) === 'uploads') return { id: 'upload', name: parts.slice(0, -2).join('/') };
  if (n >= 4 && at(3) === 'blobs' && at(2) === 'uploads') {
    const name = parts.slice(0, -3).join('/');
    return at(1) === '' ? { id: 'upload', name } : { id: 'upload-session', name };
  }
  if (n < 3) return undefined;
  const name = parts.slice(0, -2).join('/');
  // Clients may percent-encode the reference (`sha256%3A…`); names stay raw, where `%` is never valid.
  let last: string;
  try {
    last = decodeURIComponent(at(1));
  } catch {
    last = at(1);
  }
  if (at(2) === 'tags' && at(1) === 'list') return { id: 'tags', name };
  if (at(2) === 'manifests') return { id: 'manifest', name, reference: last };
  if (at(2) === 'blobs') return { id: 'blob', name, digest: last };
  if (at(2) === 'referrers') return { id: 'referrers', name, digest: last };
  return undefined;
}

const READ_METHODS = new Set(['GET', 'HEAD']);

function unsupported(what: string): OciError {
  return new OciError('UNSUPPORTED', `${what} is not supported: boxproxy is a pull-through cache (pull only)`);
}

function checkDigest(value: string): string {
  if (!isDigest(value)) throw new OciError('DIGEST_INVALID', `invalid digest ${JSON.stringify(value.slice(0, 200))}: expected sha256:<64 lowercase hex>`);
  return value;
}

function queryString(req: Request, key: string): string | undefined {
  const v = req.query[key];
  if (v === undefined) return undefined;
  if (typeof v !== 'string') throw new OciError('UNSUPPORTED', `query parameter ${key} must be given once`, undefined, 400);
  return v;
}

/** The /v2/ API: a thin translation between HTTP and the pull-through core. */
export function v2Handler<Ref>(registry: RegistryService<Ref>, logger: Logger) {
  const resolve = (req: Request, name: string): Ref => registry.resolve(name, queryString(req, 'ns'));

  async function manifest(req: Request, res: Response, name: string, reference: string): Promise<void> {
    if (!READ_METHODS.has(req.method)) throw unsupported(req.method === 'PUT' ? 'pushing manifests' : `${req.method} on manifests`);
    const ref = resolve(req, name);
    if (!isTag(reference) && !isDigest(reference)) {
      if (looksLikeDigest(reference)) checkDigest(reference);
      throw new OciError('MANIFEST_INVALID', `invalid reference ${JSON.stringify(reference.slice(0, 200))}: not a tag or a sha256 digest`, undefined, 400);
    }
    const accepts = parseAccept(req.headers.accept);
    const m = await registry.manifest(ref, reference, accepts);
    res.status(200);
    res.setHeader('Content-Type', m.mediaType);
    res.setHeader('Docker-Content-Digest', m.digest);
    res.setHeader('ETag', `"${m.digest}"`);
    res.setHeader('Content-Length', m.bytes.length);
    res.end(req.method === 'HEAD' ? undefined : m.bytes);
  }

  async function blob(req: Request, res: Response, name: string, digestParam: string): Promise<void> {
    if (!READ_METHODS.has(req.method)) throw unsupported(`${req.method} on blobs`);
    const ref = resolve(req, name);
    const digest = checkDigest(digestParam);
    res.setHeader('Docker-Content-Digest', digest);
    res.setHeader('Accept-Ranges', 'bytes');
    if (req.method === 'HEAD') {
      const size = await registry.blobSize(ref, digest);
      res.status(200).type('application/octet-stream');
      if (size !== undefined) res.setHeader('Content-Length', size);
      res.end();
      return;
    }
    const source = await registry.blob(ref, digest);
    const range = source.size === undefined ? undefined : parseRange(req.headers.range, source.size);
    if (range === 'unsatisfiable') {
      res.setHeader('Content-Range', `bytes */${source.size}`);
      throw new OciError('RANGE_INVALID', `range ${req.headers.range} is not satisfiable for a blob of ${source.size} bytes`);
    }
    res.type('application/octet-stream');
    if (range) {
      res.status(206);
      res.setHeader('Content-Range', `bytes ${range.start}-${range.end}/${source.size}`);
      res.setHeader('Content-Length', range.end - range.start + 1);
    } else {
      res.status(200);
      if (source.size !== undefined) res.setHeader('Content-Length', source.size);
    }
    const file = source.file?.();
    if (file) {
      try {
        await sendFile(res, file.path, range?.start ?? 0, range?.end ?? (source.size as number) - 1);
      } catch (err) {
        if (!res.destroyed) res.destroy(err as Error);
        logger.warn({ digest, err: (err as Error).message }, 'blob transfer aborted');
      } finally {
        file.release();
      }
      return;
    }
    const stream = source.open(range);
    try {
      await pipeline(stream, res);
    } catch (err) {
      // The client went away, or the content failed verification mid-stream:
      // either way the transfer is cut, never completed with wrong bytes.
      if (!res.destroyed) res.destroy(err as Error);
      if ((err as NodeJS.ErrnoException).code !== 'ERR_STREAM_PREMATURE_CLOSE') {
        logger.warn({ digest, err: (err as Error).message }, 'blob transfer aborted');
      }
    }
  }

  async function tags(req: Request, res: Response, name: string): Promise<void> {
    if (req.method !== 'GET') throw unsupported(`${req.method} on tags`);
    const ref = resolve(req, name);
    const nParam = queryString(req, 'n');
    const last = queryString(req, 'last');
    let n: number | undefined;
    if (nParam !== undefined) {
      if (!/^\d{1,9}$/.test(nParam)) throw new OciError('UNSUPPORTED', `query parameter n must be a non-negative integer`, undefined, 400);
      n = Number(nParam);
    }
    const page = await registry.tags(ref, n, last);
    if (page.next) {
      const q = new URLSearchParams({ n: String(page.next.n), last: page.next.last });
      const ns = queryString(req, 'ns');
      if (ns !== undefined) q.set('ns', ns);
      res.setHeader('Link', `</v2/${name}/tags/list?${q.toString()}>; rel="next"`);
    }
    res.status(200).json({ name: page.name, tags: page.tags });
  }

  async function referrers(req: Request, res: Response, name: string, digestParam: string): Promise<void> {
    if (req.method !== 'GET') throw unsupported(`${req.method} on referrers`);
    const ref = resolve(req, name);
    const digest = checkDigest(digestParam);
    const artifactType = queryString(req, 'artifactType');
    const index = await registry.referrers(ref, digest, artifactType);
    if (artifactType !== undefined) res.setHeader('OCI-Filters-Applied', 'artifactType');
    const body = Buffer.from(JSON.stringify(index));
    res.status(200).setHeader('Content-Type', OCI_INDEX);
    res.setHeader('Content-Length', body.length);
    res.end(body);
  }

  return async (req: Request, res: Response, next: NextFunction): Promise<void> => {
    const rawPath = req.originalUrl.split('?')[0] ?? '';
    const route = parseV2Path(rawPath);
    res.setHeader('Docker-Distribution-Api-Version', 'registry/2.0');
    res.locals.route = route?.id ?? 'unknown';
    try {
      if (!route) throw new OciError('UNSUPPORTED', `no registry endpoint at ${JSON.stringify(rawPath.slice(0, 200))}`, undefined, 404);
      switch (route.id) {
        case 'base':
          if (!READ_METHODS.has(req.method)) throw unsupported(`${req.method} on /v2/`);
          res.status(200).type('application/json').end(req.method === 'HEAD' ? undefined : '{}');
          return;
        case 'catalog':
          throw unsupported('the catalog');
        case 'upload':
        case 'upload-session':
          throw unsupported('pushing blobs');
        case 'manifest':
          return await manifest(req, res, route.name, route.reference);
        case 'blob':
          return await blob(req, res, route.name, route.digest);
        case 'tags':
          return await tags(req, res, route.name);
        case 'referrers':
          return await referrers(req, res, route.name, route.digest);
      }
    } catch (err) {
      if (err instanceof OciError) sendError(res, err);
      else next(err);
    }
  };
}
