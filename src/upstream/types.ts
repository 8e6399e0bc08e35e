import type { Readable } from 'node:stream';

export type UpstreamMethod = 'GET' | 'HEAD';

export interface UpstreamRequest {
  method: UpstreamMethod;
  /** Path and query on the upstream, starting with /v2/. */
  path: string;
  /** Repository the request is about; drives the token scope `repository:<name>:pull`. */
  repository?: string;
  headers?: Record<string, string>;
  signal?: AbortSignal;
}

export interface UpstreamResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  /** Must be consumed or destroyed by the caller (empty for HEAD). */
  body: Readable;
}

/** Why an upstream could not answer; never carries credentials. */
export type UpstreamFailureKind = 'unreachable' | 'timeout' | 'status' | 'auth' | 'redirect';

export class UpstreamError extends Error {
  constructor(
    readonly upstream: string,
    readonly kind: UpstreamFailureKind,
    message: string,
    readonly status?: number,
  ) {
    super(message);
    this.name = 'UpstreamError';
  }
}

/** A response header as one string (the first, when repeated). */
export function headerValue(res: Pick<UpstreamResponse, 'headers'>, name: string): string | undefined {
  const v = res.headers[name];
  return Array.isArray(v) ? v[0] : v;
}
