// HTTP client for one upstream registry: keep-alive pool, auth challenges, redirects to blob storage,
// retries, metrics. Credentials stay in here: never in errors, logs, or requests to other origins.
import { Readable, Transform } from 'node:stream';
import { Agent, Pool, type Dispatcher } from 'undici';
import type { UpstreamConfig } from '../config/schema.js';
import type { Logger } from '../ops/log.js';
import { upstreamBytes, upstreamErrors, upstreamRequests } from '../ops/metrics.js';
import { UpstreamAuth, pullScope, type TokenEndpointAnswer } from './auth.js';
import { RetryableError, parseRetryAfter, withRetries, type RetryTiming } from './retry.js';
import { UpstreamError, type UpstreamMethod, type UpstreamRequest, type UpstreamResponse } from './types.js';

const MAX_REDIRECTS = 5;
const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);
const MAX_TOKEN_RESPONSE_BYTES = 1024 * 1024;
const MAX_ERROR_BODY_BYTES = 64 * 1024;
/** How long close() lets in-flight requests finish before cutting them. */
const CLOSE_GRACE_MS = 1_000;
const USER_AGENT = 'boxproxy/0.1';

// undici codes and errnos that mean the upstream did not answer in time.
const TIMEOUT_CODES = new Set(['UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'ETIMEDOUT']);
// undici codes for misuse of the client itself: bugs, not upstream failures.
const PROGRAMMING_CODES = new Set(['UND_ERR_INVALID_ARG', 'UND_ERR_INVALID_RETURN_VALUE', 'UND_ERR_NOT_SUPPORTED', 'UND_ERR_CLOSED', 'UND_ERR_DESTROYED']);

/** Test hooks; production code passes none. */
export interface UpstreamClientOptions {
  /** Clock for token expiry, ms since the epoch. */
  now?: () => number;
  retryTiming?: Partial<RetryTiming>;
  /** Replaces the sleep between retries. */
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
}

type Response = Dispatcher.ResponseData;

export class UpstreamClient {
  readonly name: string;
  private readonly origin: string;
  /** Path prefix of the configured URL, without a trailing slash (usually ''). */
  private readonly basePath: string;
  private readonly pool: Pool;
  /** For redirect targets and token endpoints on other origins; created on first use. */
  private foreign: Agent | undefined;
  private readonly auth: UpstreamAuth;
  private readonly log: Logger;
  private readonly bytesCounter: { inc(n: number): void };

  constructor(
    private readonly config: UpstreamConfig,
    logger: Logger,
    private readonly options: UpstreamClientOptions = {},
  ) {
    this.name = config.name;
    const url = new URL(config.url);
    this.origin = url.origin;
    this.basePath = url.pathname.replace(/\/+$/, '');
    this.log = logger.child({ upstream: config.name });
    this.pool = new Pool(this.origin, this.dispatcherOptions());
    this.bytesCounter = upstreamBytes.labels({ upstream: config.name });
    const credentials = config.username !== undefined ? { username: config.username, password: config.password ?? '' } : undefined;
    this.auth = new UpstreamAuth({
      upstream: config.name,
      ...(credentials ? { credentials } : {}),
      fetchToken: (u, headers) => this.fetchToken(u, headers),
      logger: this.log,
      ...(options.now ? { now: options.now } : {}),
    });
  }

  async request(req: UpstreamRequest): Promise<UpstreamResponse> {
    const headers: Record<string, string> = { 'user-agent': USER_AGENT };
    for (const [k, v] of Object.entries(req.headers ?? {})) {
      // The client's own credentials are never passed on; ours are added per origin below.
      const lower = k.toLowerCase();
      if (lower !== 'authorization' && lower !== 'proxy-authorization' && lower !== 'host') headers[lower] = v;
    }
    const scope = pullScope(req.repository);
    try {
      return await withRetries(() => this.attempt(req, headers, scope), {
        retries: this.config.retries,
        ...(req.signal ? { signal: req.signal } : {}),
        ...this.options.retryTiming,
        ...(this.options.sleep ? { sleep: this.options.sleep } : {}),
        onRetry: ({ retry, delayMs, error }) =>
          this.log.debug({ method: req.method, path: req.path, retry, delayMs, reason: error.message }, 'retrying upstream request'),
      });
    } catch (err) {
      if (err instanceof UpstreamError) {
        upstreamErrors.inc({ upstream: this.name, kind: err.kind });
        this.log.warn({ method: req.method, path: req.path, kind: err.kind, status: err.status }, err.message);
      }
      throw err;
    }
  }

  async close(): Promise<void> {
    const dispatchers: Dispatcher[] = [this.pool, ...(this.foreign ? [this.foreign] : [])];
    await Promise.all(dispatchers.map((d) => closeWithGrace(d)));
  }

  /** One try: auth challenge, redirects, and the verdict on the final status. */
  private async attempt(req: UpstreamRequest, headers: Record<string, string>, scope: string): Promise<UpstreamResponse> {
    const { method, signal } = req;
    let url = new URL(this.basePath + req.path, this.origin);
    let authorization = this.auth.cached(scope);
    let res = await this.send(method, url, headers, authorization, signal);

    if (res.statusCode === 401) {
      // Read first: the connection is free again for a token endpoint on the same origin.
      const refusal = await readSmall(res, MAX_ERROR_BODY_BYTES);
      this.bytesCounter.inc(refusal.length);
      if (authorization !== undefined) this.auth.invalidate(scope);
      const next = await this.auth.respond(res.headers['www-authenticate'], scope);
      // Nothing new to try: the 401 is the caller's to interpret.
      if (next === undefined || next === authorization) {
        return { status: 401, headers: res.headers, body: Readable.from(method === 'HEAD' ? [] : [refusal], { objectMode: false }) };
      }
      authorization = next;
      res = await this.send(method, url, headers, authorization, signal);
    }

    for (let hops = 0; REDIRECT_STATUSES.has(res.statusCode); hops++) {
      const location = header(res, 'location');
      if (location === undefined) break;
      await discard(res);
      if (hops >= MAX_REDIRECTS) {
        throw new UpstreamError(this.name, 'redirect', `upstream ${this.name}: more than ${MAX_REDIRECTS} redirects for ${method} ${req.path}`);
      }
      url = new URL(location, url);
      if (url.protocol !== 'http:' && url.protocol !== 'https:') {
        throw new UpstreamError(this.name, 'redirect', `upstream ${this.name}: redirect to a non-HTTP URL for ${method} ${req.path}`);
      }
      // Authorization goes to the upstream's own origin only, never to blob storage elsewhere.
      res = await this.send(method, url, headers, url.origin === this.origin ? authorization : undefined, signal);
    }

    if (res.statusCode >= 500 || res.statusCode === 429) {
      const retryAfterMs = parseRetryAfter(res.headers['retry-after']);
      await discard(res);
      const error = new UpstreamError(this.name, 'status', `upstream ${this.name} answered ${res.statusCode} for ${method} ${req.path}`, res.statusCode);
      throw new RetryableError(error, retryAfterMs);
    }
    return { status: res.statusCode, headers: res.headers, body: this.wrapBody(res, method, url, signal) };
  }

  /** One HTTP exchange; transport failures become retryable UpstreamErrors. */
  private async send(method: UpstreamMethod, url: URL, headers: Record<string, string>, authorization: string | undefined, signal: AbortSignal | undefined): Promise<Response> {
    const sameOrigin = url.origin === this.origin;
    const dispatcher = sameOrigin ? this.pool : this.foreignAgent();
    try {
      const res = await dispatcher.request({
        origin: url.origin,
        path: url.pathname + url.search,
        method,
        headers: authorization !== undefined ? { ...headers, authorization } : headers,
        ...(signal ? { signal } : {}),
      });
      upstreamRequests.inc({ upstream: this.name, method, status: String(res.statusCode) });
      return res;
    } catch (err) {
      if (signal?.aborted) throw err;
      const mapped = this.transportError(err, sameOrigin ? undefined : url);
      if (!mapped) throw err;
      upstreamRequests.inc({ upstream: this.name, method, status: mapped.kind });
      throw new RetryableError(mapped);
    }
  }

  /** Names the upstream and the errno; `foreign` is a redirect target, named by host only (its query may be a signature). */
  private transportError(err: unknown, foreign: URL | undefined): UpstreamError | undefined {
    const e = err as NodeJS.ErrnoException & { cause?: NodeJS.ErrnoException };
    const code = e.code ?? e.cause?.code;
    if (code === undefined || PROGRAMMING_CODES.has(code) || code === 'UND_ERR_ABORTED' || code === 'ABORT_ERR') return undefined;
    const via = foreign ? ` (redirect target ${foreign.host})` : '';
    if (TIMEOUT_CODES.has(code)) {
      const what = code === 'UND_ERR_CONNECT_TIMEOUT' ? 'connecting' : code === 'UND_ERR_BODY_TIMEOUT' ? 'reading the body' : 'waiting for a response';
      return new UpstreamError(this.name, 'timeout', `upstream ${this.name} timed out ${what}${via}`);
    }
    const reason = code === 'UND_ERR_SOCKET' ? `connection closed (${e.message})` : code.startsWith('UND_ERR_') ? e.message : code;
    return new UpstreamError(this.name, 'unreachable', `upstream ${this.name} unreachable${via}: ${reason}`);
  }

  /** Counts body bytes as they flow and turns transport failures mid-body into UpstreamErrors. */
  private wrapBody(res: Response, method: UpstreamMethod, url: URL, signal: AbortSignal | undefined): Readable {
    if (method === 'HEAD') {
      void discard(res);
      return new Readable({ read() { this.push(null); } });
    }
    const source = res.body;
    const counter = this.bytesCounter;
    const counted = new Transform({
      transform(chunk: Buffer, _enc, done) {
        counter.inc(chunk.length);
        done(null, chunk);
      },
    });
    source.on('error', (err) => {
      if (counted.destroyed) return;
      const mapped = signal?.aborted ? undefined : this.transportError(err, url.origin === this.origin ? undefined : url);
      if (mapped) {
        upstreamErrors.inc({ upstream: this.name, kind: mapped.kind });
        this.log.warn({ path: url.origin === this.origin ? url.pathname : undefined, kind: mapped.kind }, `${mapped.message} mid-body`);
        mapped.message += ' while reading the body';
      }
      counted.destroy(mapped ?? err);
    });
    // A caller that stops reading (destroys the body) ends the upstream exchange too.
    counted.on('close', () => {
      if (!source.destroyed) source.destroy();
    });
    source.pipe(counted);
    return counted;
  }

  private async fetchToken(url: URL, headers: Record<string, string>): Promise<TokenEndpointAnswer> {
    const dispatcher = url.origin === this.origin ? this.pool : this.foreignAgent();
    const res = await dispatcher.request({
      origin: url.origin,
      path: url.pathname + url.search,
      method: 'GET',
      headers: { ...headers, 'user-agent': USER_AGENT },
    });
    return { status: res.statusCode, body: (await readSmall(res, MAX_TOKEN_RESPONSE_BYTES)).toString('utf8') };
  }

  private foreignAgent(): Agent {
    this.foreign ??= new Agent(this.dispatcherOptions());
    return this.foreign;
  }

  private dispatcherOptions(): Pool.Options {
    const { timeout, connections, insecure } = this.config;
    return {
      connections,
      headersTimeout: timeout,
      bodyTimeout: timeout,
      // insecure: the operator vouches for this upstream's certificate (self-signed, private CA).
      connect: { timeout, ...(insecure ? { rejectUnauthorized: false } : {}) },
    };
  }
}

function header(res: Response, name: string): string | undefined {
  const v = res.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

/** Reads a body of at most `limit` bytes; a longer one is cut (the rest is not wanted). */
async function readSmall(res: Response, limit: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of res.body as AsyncIterable<Buffer>) {
      chunks.push(chunk);
      size += chunk.length;
      if (size >= limit) break; // leaving the loop destroys the body
    }
  } catch {
    // Only the start of an error body matters; a cut connection leaves what arrived.
  }
  return Buffer.concat(chunks).subarray(0, limit);
}

/** Reads and drops a small body (redirects, errors) so the connection can be reused. */
async function discard(res: Response): Promise<void> {
  try {
    await res.body.dump({ limit: 64 * 1024 });
  } catch {
    // A broken connection is undici's to replace; the body was unwanted anyway.
  }
}

async function closeWithGrace(dispatcher: Dispatcher): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const graceOver = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), CLOSE_GRACE_MS);
    timer.unref();
  });
  const outcome = await Promise.race([dispatcher.close().then(() => 'closed' as const), graceOver]);
  clearTimeout(timer);
  if (outcome === 'timeout') await dispatcher.destroy();
}
