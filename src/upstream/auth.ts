// Upstream registry authentication: WWW-Authenticate parsing, bearer tokens from a token endpoint
// (distribution docs/content/spec/auth/token.md) and Basic credentials. Knows nothing about HTTP
// transport: the client hands it a TokenFetcher.
import { LRUCache } from 'lru-cache';
import type { Logger } from '../ops/log.js';
import { UpstreamError } from './types.js';

export interface AuthChallenge {
  /** Lower-cased scheme, e.g. `bearer`, `basic`. */
  scheme: string;
  /** Lower-cased parameter names; values unquoted and unescaped. */
  params: Record<string, string>;
  /** A token68 credential instead of parameters (e.g. `Negotiate abc==`). */
  token68?: string;
}

// RFC 7230 tchar.
const TCHAR = /[!#$%&'*+\-.^_`|~0-9A-Za-z]/;
const TOKEN68_AHEAD = /^([A-Za-z0-9\-._~+/]+=*)[ \t]*(?:,|$)/;

/**
 * Parses WWW-Authenticate (RFC 7235): one or more challenges, each a scheme followed by a token68 or
 * comma-separated `name=value` params where values may be quoted strings containing commas and escapes,
 * e.g. `Bearer realm="https://a/token",scope="repository:a:pull,push"`. Malformed parts are skipped.
 */
export function parseWwwAuthenticate(header: string | readonly string[] | undefined): AuthChallenge[] {
  if (header === undefined) return [];
  if (typeof header !== 'string') return header.flatMap((h) => parseWwwAuthenticate(h));
  const s = header;
  const challenges: AuthChallenge[] = [];
  let current: AuthChallenge | undefined;
  let i = 0;

  const skipWs = (): void => {
    while (i < s.length && (s[i] === ' ' || s[i] === '\t')) i++;
  };
  const readToken = (): string => {
    const start = i;
    while (i < s.length && TCHAR.test(s[i] as string)) i++;
    return s.slice(start, i);
  };
  const readQuoted = (): string => {
    i++; // opening quote
    let out = '';
    while (i < s.length && s[i] !== '"') {
      if (s[i] === '\\' && i + 1 < s.length) i++;
      out += s[i];
      i++;
    }
    i++; // closing quote (or past the end when unterminated)
    return out;
  };

  while (i < s.length) {
    while (i < s.length && (s[i] === ',' || s[i] === ' ' || s[i] === '\t')) i++;
    if (i >= s.length) break;
    const name = readToken();
    if (name === '') {
      // Not a token: skip to the next element.
      while (i < s.length && s[i] !== ',') i++;
      continue;
    }
    skipWs();
    if (s[i] === '=' && current) {
      i++;
      skipWs();
      const value = s[i] === '"' ? readQuoted() : readToken();
      const key = name.toLowerCase();
      if (!(key in current.params)) current.params[key] = value;
      skipWs();
      continue;
    }
    current = { scheme: name.toLowerCase(), params: {} };
    challenges.push(current);
    const token68 = TOKEN68_AHEAD.exec(s.slice(i));
    if (token68) {
      current.token68 = token68[1];
      i += (token68[1] as string).length;
    }
  }
  return challenges;
}

export interface Credentials {
  username: string;
  password: string;
}

export interface TokenEndpointAnswer {
  status: number;
  body: string;
}

/** Performs `GET url` with the given headers; throws on transport failure. */
export type TokenFetcher = (url: URL, headers: Record<string, string>) => Promise<TokenEndpointAnswer>;

export interface UpstreamAuthOptions {
  /** Upstream name, for error messages. */
  upstream: string;
  credentials?: Credentials;
  fetchToken: TokenFetcher;
  logger: Logger;
  /** Clock in ms since the epoch; injectable for tests. */
  now?: () => number;
  /** Most scopes (repositories) whose tokens are kept. */
  maxCachedTokens?: number;
}

interface CachedToken {
  authorization: string;
  expiresAt: number;
}

const DEFAULT_EXPIRES_IN_S = 60;
/** Tokens are dropped this long before they expire, so one does not lapse in flight. */
const EXPIRY_MARGIN_MS = 10_000;

/** The token scope a request about `repository` needs; '' for requests about no repository (`/v2/`). */
export function pullScope(repository: string | undefined): string {
  return repository ? `repository:${repository}:pull` : '';
}

/**
 * Holds what it takes to authenticate to one upstream: bearer tokens cached per scope, or Basic
 * credentials once the upstream asked for Basic. Concurrent requests needing the same token share
 * one token fetch.
 */
export class UpstreamAuth {
  private readonly tokens: LRUCache<string, CachedToken>;
  private readonly pending = new Map<string, Promise<string>>();
  private readonly now: () => number;
  /** Set once the upstream challenged with Basic: from then on Basic is sent pre-emptively. */
  private basic: string | undefined;

  constructor(private readonly opts: UpstreamAuthOptions) {
    this.now = opts.now ?? Date.now;
    this.tokens = new LRUCache({ max: opts.maxCachedTokens ?? 4096 });
  }

  /** Authorization to send before any challenge, if one is known for `scope`. */
  cached(scope: string): string | undefined {
    if (this.basic) return this.basic;
    const token = this.tokens.get(scope);
    if (!token) return undefined;
    if (this.now() >= token.expiresAt) {
      this.tokens.delete(scope);
      return undefined;
    }
    return token.authorization;
  }

  /** Forgets a token the upstream refused. */
  invalidate(scope: string): void {
    this.tokens.delete(scope);
  }

  /**
   * Answers a 401's challenge for `scope`: the Authorization to resend with, or undefined when there
   * is nothing to try (no usable challenge, or Basic without credentials) and the 401 stands.
   * Throws UpstreamError kind 'auth' when the token endpoint fails.
   */
  async respond(header: string | readonly string[] | undefined, scope: string): Promise<string | undefined> {
    const challenges = parseWwwAuthenticate(header);
    const bearer = challenges.find((c) => c.scheme === 'bearer' && c.params.realm);
    if (bearer) return this.bearerToken(bearer.params, scope);
    if (challenges.some((c) => c.scheme === 'basic') && this.opts.credentials) {
      const { username, password } = this.opts.credentials;
      this.basic = 'Basic ' + Buffer.from(`${username}:${password}`).toString('base64');
      return this.basic;
    }
    return undefined;
  }

  private bearerToken(params: Record<string, string>, scope: string): Promise<string> {
    let realm: URL;
    try {
      realm = new URL(params.realm as string);
    } catch {
      return Promise.reject(this.failure('the upstream named an invalid token realm'));
    }
    if (realm.protocol !== 'https:' && realm.protocol !== 'http:') return Promise.reject(this.failure('the upstream named a non-HTTP token realm'));
    // The challenge's scope is what the upstream wants; ours stands in when it names none.
    const scopes = (params.scope ?? scope).split(' ').filter((x) => x !== '');
    const service = params.service;
    const url = new URL(realm);
    if (service !== undefined) url.searchParams.append('service', service);
    for (const sc of scopes) url.searchParams.append('scope', sc);

    const key = `${scope}\n${url.href}`;
    const inFlight = this.pending.get(key);
    if (inFlight) return inFlight;
    const fetching = this.fetchToken(url, realm, scope).finally(() => this.pending.delete(key));
    this.pending.set(key, fetching);
    return fetching;
  }

  private async fetchToken(url: URL, realm: URL, scope: string): Promise<string> {
    const where = `${realm.origin}${realm.pathname}`;
    const headers: Record<string, string> = { accept: 'application/json' };
    if (this.opts.credentials) {
      const { username, password } = this.opts.credentials;
      headers.authorization = 'Basic ' + Buffer.from(`${username}:${password}`).toString('base64');
    }
    const requestedAt = this.now();
    let answer: TokenEndpointAnswer;
    try {
      answer = await this.opts.fetchToken(url, headers);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? (err as Error).name;
      throw this.failure(`token endpoint ${where} unreachable: ${code}`);
    }
    if (answer.status !== 200) {
      const why = answer.status === 401 || answer.status === 403 ? ' (credentials refused)' : '';
      throw this.failure(`token endpoint ${where} answered ${answer.status}${why}`, answer.status);
    }
    let body: { token?: unknown; access_token?: unknown; expires_in?: unknown; issued_at?: unknown };
    try {
      body = JSON.parse(answer.body) as typeof body;
    } catch {
      throw this.failure(`token endpoint ${where} answered with invalid JSON`);
    }
    const token = typeof body.token === 'string' && body.token !== '' ? body.token : body.access_token;
    if (typeof token !== 'string' || token === '') throw this.failure(`token endpoint ${where} answered without a token`);
    const expiresInS = typeof body.expires_in === 'number' && body.expires_in > 0 ? body.expires_in : DEFAULT_EXPIRES_IN_S;
    // issued_at is the server's clock; it only shortens the lifetime (a token cached server-side), and
    // one in our future (clock skew) is ignored.
    const issuedAt = typeof body.issued_at === 'string' ? Date.parse(body.issued_at) : Number.NaN;
    const base = Number.isFinite(issuedAt) && issuedAt < requestedAt ? issuedAt : requestedAt;
    const lifetime = expiresInS * 1000;
    const margin = Math.min(EXPIRY_MARGIN_MS, lifetime / 10);
    const authorization = `Bearer ${token}`;
    this.tokens.set(scope, { authorization, expiresAt: base + lifetime - margin });
    this.opts.logger.debug({ scope: scope || '(none)', expiresIn: expiresInS }, 'upstream token obtained');
    return authorization;
  }

  private failure(message: string, status?: number): UpstreamError {
    return new UpstreamError(this.opts.upstream, 'auth', `upstream ${this.opts.upstream}: ${message}`, status);
  }
}
