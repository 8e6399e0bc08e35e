// Plain HTTP against boxproxy: raw paths (fetch would resolve `..` away) and OCI error bodies.
import assert from 'node:assert/strict';
import { request } from 'node:http';

export interface RawResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

/** Sends `path` exactly as written, with no URL normalization. */
export function rawRequest(baseUrl: string, method: string, path: string, headers: Record<string, string> = {}, body?: Buffer): Promise<RawResponse> {
  const base = new URL(baseUrl);
  return new Promise((resolve, reject) => {
    const req = request({ host: base.hostname, port: base.port, method, path, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

export interface OciErrorBody {
  errors: Array<{ code: string; message: string; detail?: unknown }>;
}

/** Asserts an OCI error response (JSON `errors` array) with this status and first code; returns the body. */
export function assertOciError(res: { status: number; body: Buffer }, status: number, code: string | readonly string[], context = ''): OciErrorBody {
  const text = res.body.toString('utf8');
  const where = context ? ` (${context})` : '';
  assert.equal(res.status, status, `status for ${context}: body ${text.slice(0, 300)}`);
  let parsed: OciErrorBody;
  try {
    parsed = JSON.parse(text) as OciErrorBody;
  } catch {
    assert.fail(`expected OCI error JSON${where}, got ${JSON.stringify(text.slice(0, 300))}`);
  }
  assert.ok(Array.isArray(parsed.errors) && parsed.errors.length > 0, `errors array missing${where}: ${text.slice(0, 300)}`);
  const codes = typeof code === 'string' ? [code] : code;
  assert.ok(codes.includes(parsed.errors[0]?.code ?? ''), `expected code ${codes.join('|')}${where}, got ${text.slice(0, 300)}`);
  return parsed;
}
