import { OciError } from '../oci/errors.js';
import { UpstreamError, type UpstreamResponse } from '../upstream/types.js';

/** True when a failure means "upstream is unavailable", so cached content may be served instead. */
export function isUpstreamOutage(err: unknown): boolean {
  return err instanceof UpstreamError || (err instanceof OciError && (err.code === 'UPSTREAM_UNAVAILABLE' || err.code === 'TOOMANYREQUESTS'));
}

/** Translates a transport failure into the error the client sees; names the upstream, never its credentials. */
export function upstreamFailure(err: unknown, what: string): OciError {
  if (err instanceof OciError) return err;
  if (err instanceof UpstreamError) {
    if (err.status === 429) return new OciError('TOOMANYREQUESTS', `upstream ${err.upstream} is rate limiting; ${what} is not cached`);
    const status = err.kind === 'timeout' ? 504 : 502;
    return new OciError('UPSTREAM_UNAVAILABLE', `${what} is not cached and upstream ${err.upstream} failed: ${err.message}`, { upstream: err.upstream, kind: err.kind }, status);
  }
  return new OciError('UPSTREAM_UNAVAILABLE', `${what} is not cached and the upstream request failed: ${(err as Error).message}`);
}

/** Maps an upstream answer that is not a success to the client's error. Drains the body. */
export function upstreamStatusError(res: UpstreamResponse, upstream: string, what: string, notFound: OciError): OciError {
  res.body.resume();
  if (res.status === 404) return notFound;
  if (res.status === 401 || res.status === 403) {
    // Docker Hub answers 401 for repositories that do not exist; clients must not be asked for credentials.
    return new OciError('NAME_UNKNOWN', `upstream ${upstream} refused ${what} (${res.status}): the repository does not exist or needs credentials boxproxy lacks`);
  }
  if (res.status === 429) return new OciError('TOOMANYREQUESTS', `upstream ${upstream} is rate limiting`);
  return new OciError('UPSTREAM_UNAVAILABLE', `upstream ${upstream} answered ${res.status} for ${what}`, { status: res.status });
}
