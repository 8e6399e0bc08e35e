// An in-process upstream for faults a real registry cannot produce: bytes that do not match their digest,
// connections cut mid-body, 5xx and 429 answers. It serves the content of a BuiltImage (see images.ts).
import { once } from 'node:events';
import { readFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { hexOf } from '../../src/oci/digest.js';
import type { BuiltImage } from './images.js';

export type FaultMode =
  | { kind: 'ok' }
  /** Same length, different bytes, honest-looking headers. */
  | { kind: 'corrupt' }
  /** Headers and half the body, then the connection is destroyed. */
  | { kind: 'truncate' }
  | { kind: 'status'; status: number };

export interface FakeUpstream {
  readonly url: string;
  readonly host: string;
  /** Fault applied to manifest and blob requests (not to /v2/). */
  mode: FaultMode;
  /** Requests by `METHOD path` (without query). */
  readonly counts: Map<string, number>;
  count(method: string, path: string): number;
  close(): Promise<void>;
}

function corrupt(bytes: Buffer): Buffer {
  const copy = Buffer.from(bytes);
  for (let i = 0; i < copy.length; i += 97) copy[i] = (copy[i] as number) ^ 0xff;
  return copy;
}

/** Serves `repo` with `image`'s tag, manifests and blobs, applying `mode`. */
export async function startFakeUpstream(image: BuiltImage, repo: string): Promise<FakeUpstream> {
  if (image.format !== 'oci') throw new Error('the fake upstream serves OCI layouts only');
  const content = new Map<string, { bytes: Buffer; mediaType: string }>();
  const load = async (digest: string, mediaType: string) => {
    content.set(digest, { bytes: await readFile(join(image.dir, 'blobs', 'sha256', hexOf(digest))), mediaType });
  };
  await load(image.digest, image.mediaType);
  for (const m of image.manifests) {
    await load(m.digest, m.mediaType);
    for (const d of [m.config, ...m.layers]) await load(d.digest, d.mediaType);
  }
  const counts = new Map<string, number>();

  const state: { mode: FaultMode } = { mode: { kind: 'ok' } };
  const handler = (req: IncomingMessage, res: ServerResponse): void => {
    const path = (req.url ?? '/').split('?')[0] as string;
    const key = `${req.method} ${path}`;
    counts.set(key, (counts.get(key) ?? 0) + 1);
    res.setHeader('Docker-Distribution-Api-Version', 'registry/2.0');
    if (path === '/v2/' || path === '/v2') {
      res.writeHead(200, { 'Content-Type': 'application/json' }).end('{}');
      return;
    }
    const mode = state.mode;
    if (mode.kind === 'status') {
      // A failing registry fails whatever is asked, known or not.
      res.writeHead(mode.status, { 'Content-Type': 'application/json', ...(mode.status === 429 ? { 'Retry-After': '1' } : {}) });
      res.end(JSON.stringify({ errors: [{ code: mode.status === 429 ? 'TOOMANYREQUESTS' : 'UNKNOWN', message: 'injected fault' }] }));
      return;
    }
    const m = new RegExp(`^/v2/${repo}/(manifests|blobs)/([^/]+)$`).exec(path);
    const notFound = (code: string) => {
      res.writeHead(404, { 'Content-Type': 'application/json' }).end(JSON.stringify({ errors: [{ code, message: 'unknown' }] }));
    };
    if (!m) return notFound('NAME_UNKNOWN');
    const kind = m[1] as 'manifests' | 'blobs';
    const digest = kind === 'manifests' && m[2] === image.tag ? image.digest : (m[2] as string);
    const item = content.get(digest);
    if (!item) return notFound(kind === 'manifests' ? 'MANIFEST_UNKNOWN' : 'BLOB_UNKNOWN');
    const body = mode.kind === 'corrupt' ? corrupt(item.bytes) : item.bytes;
    res.writeHead(200, {
      'Content-Type': kind === 'manifests' ? item.mediaType : 'application/octet-stream',
      'Content-Length': String(item.bytes.length),
      'Docker-Content-Digest': digest,
    });
    if (req.method === 'HEAD') {
      res.end();
      return;
    }
    if (mode.kind === 'truncate') {
      res.write(body.subarray(0, Math.floor(body.length / 2)), () => res.destroy());
      return;
    }
    res.end(body);
  };

  const server: Server = createServer(handler);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    host: `127.0.0.1:${port}`,
    get mode() {
      return state.mode;
    },
    set mode(m: FaultMode) {
      state.mode = m;
    },
    counts,
    count: (method, path) => counts.get(`${method} ${path}`) ?? 0,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
