// Debian's docker-registry (distribution 2.8) as a real upstream for integration tests: open, behind htpasswd
// Basic auth, behind bearer-token auth served by a token endpoint in this process, or in proxy mode in front of
// boxproxy. Upstream requests are counted from the registry's access log (Apache combined format on stdout).
import { randomBytes, randomUUID, sign, X509Certificate, type KeyObject, createPrivateKey } from 'node:crypto';
import { once } from 'node:events';
import { readFile, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { stringify as toYaml } from 'yaml';
import { freePort, makeTempDir, removeTempDir, run, startProcess, tail, waitUntil, type ManagedProcess } from './proc.js';

export type RegistryAuthMode = 'none' | 'basic' | 'token';

export interface Credentials {
  username: string;
  password: string;
}

export interface StartRegistryOptions {
  auth?: RegistryAuthMode;
  /** Credentials for basic/token modes; generated when omitted. */
  credentials?: Credentials;
  /** Proxy mode: pull through this registry URL (e.g. boxproxy's). */
  proxyRemoteUrl?: string;
}

export interface AccessLogEntry {
  method: string;
  /** Request target as sent: path and query. */
  target: string;
  path: string;
  status: number;
  bytes: number;
}

export interface TestRegistry {
  /** http://127.0.0.1:PORT */
  readonly url: string;
  /** 127.0.0.1:PORT, the registry host as clients write it. */
  readonly host: string;
  readonly port: number;
  readonly auth: RegistryAuthMode;
  /** Set in basic and token modes: what a client must present to push or pull. */
  readonly credentials: Credentials | undefined;
  readonly tokenServer: TokenServer | undefined;
  readonly dataDir: string;
  readonly process: ManagedProcess;
  /** Every request the registry served so far, in completion order (waits for the log to catch up). */
  accessLog(): Promise<AccessLogEntry[]>;
  /** How many requests matched; e.g. countRequests('GET', `/v2/foo/blobs/${digest}`). */
  countRequests(method: string, path: string | RegExp): Promise<number>;
  /** Kills the registry process only (its data stays): an upstream going down. */
  kill(): Promise<void>;
  /** Kills everything this registry started and removes its files. */
  stop(): Promise<void>;
}

const ACCESS_LINE = /^\S+ \S+ \S+ \[[^\]]*\] "(\S+) (\S+) HTTP\/[\d.]+" (\d{3}) (\d+|-)/;

export function parseAccessLog(text: string): AccessLogEntry[] {
  const entries: AccessLogEntry[] = [];
  for (const line of text.split('\n')) {
    const m = ACCESS_LINE.exec(line);
    if (!m) continue;
    const target = m[2] as string;
    entries.push({
      method: m[1] as string,
      target,
      path: target.split('?')[0] as string,
      status: Number(m[3]),
      bytes: m[4] === '-' ? 0 : Number(m[4]),
    });
  }
  return entries;
}

export async function startRegistry(opts: StartRegistryOptions = {}): Promise<TestRegistry> {
  const auth = opts.auth ?? 'none';
  const dir = await makeTempDir(`registry-${auth}`);
  const credentials = auth === 'none' ? undefined : (opts.credentials ?? { username: 'tester', password: randomBytes(9).toString('base64url') });
  let tokenServer: TokenServer | undefined;
  let proc: ManagedProcess | undefined;
  try {
    const port = await freePort();
    const config: Record<string, unknown> = {
      version: 0.1,
      log: { level: 'info', formatter: 'text', accesslog: { disabled: false } },
      storage: { filesystem: { rootdirectory: join(dir, 'data') }, delete: { enabled: true } },
      http: { addr: `127.0.0.1:${port}`, secret: randomBytes(16).toString('hex') },
    };
    if (auth === 'basic' && credentials) {
      const line = (await run('htpasswd', ['-Bbn', credentials.username, credentials.password])).stdout.trim();
      await writeFile(join(dir, 'htpasswd'), line + '\n');
      config.auth = { htpasswd: { realm: 'boxproxy-test', path: join(dir, 'htpasswd') } };
    } else if (auth === 'token' && credentials) {
      tokenServer = await startTokenServer(dir, credentials);
      config.auth = {
        token: { realm: tokenServer.realm, service: tokenServer.service, issuer: tokenServer.issuer, rootcertbundle: tokenServer.certFile },
      };
    }
    if (opts.proxyRemoteUrl) config.proxy = { remoteurl: opts.proxyRemoteUrl };
    const configFile = join(dir, 'config.yml');
    await writeFile(configFile, toYaml(config));

    const accessLogFile = join(dir, 'access.log');
    const running = await startProcess('docker-registry', 'docker-registry', ['serve', configFile], {
      logFile: join(dir, 'registry.log'),
      stdoutFile: accessLogFile,
    });
    proc = running;
    const url = `http://127.0.0.1:${port}`;
    await waitUntil(`docker-registry to answer on ${url}/v2/`, async () => {
      const res = await fetch(`${url}/v2/`);
      await res.arrayBuffer();
      return res.status === 200 || res.status === 401;
    }, { proc: running });

    // The log line is written after a response completes: a marker request
    // answered after the requests of interest proves their lines are in.
    const settledLog = async (): Promise<AccessLogEntry[]> => {
      if (running.exited) return parseAccessLog(await readFile(accessLogFile, 'utf8'));
      const marker = `/v2/?log-marker=${randomUUID()}`;
      await (await fetch(url + marker)).arrayBuffer();
      let entries: AccessLogEntry[] = [];
      await waitUntil('the registry access log to catch up', async () => {
        entries = parseAccessLog(await readFile(accessLogFile, 'utf8'));
        return entries.some((e) => e.target === marker);
      }, { timeoutMs: 10_000 });
      return entries.filter((e) => !e.target.startsWith('/v2/?log-marker='));
    };

    const token = tokenServer;
    return {
      url,
      host: `127.0.0.1:${port}`,
      port,
      auth,
      credentials,
      tokenServer: token,
      dataDir: join(dir, 'data'),
      process: running,
      accessLog: settledLog,
      async countRequests(method, path) {
        const entries = await settledLog();
        return entries.filter((e) => e.method === method && (typeof path === 'string' ? e.path === path : path.test(e.target))).length;
      },
      kill: () => running.stop(),
      async stop() {
        await running.stop();
        await token?.close();
        await removeTempDir(dir);
      },
    };
  } catch (err) {
    await proc?.stop();
    await tokenServer?.close();
    const log = proc ? tail(await proc.log()) : '';
    await removeTempDir(dir);
    if (log && err instanceof Error && !err.message.includes(log)) err.message += `\ndocker-registry log:\n${log}`;
    throw err;
  }
}

// ---------------------------------------------------------------------------
// Token endpoint (distribution docs/content/spec/auth/token.md and jwt.md)

export interface TokenRequest {
  /** Account from Basic credentials; undefined for anonymous requests. */
  account: string | undefined;
  service: string | undefined;
  scopes: string[];
  /** Whether a bearer token was issued (false for wrong credentials). */
  granted: boolean;
}

export interface TokenServer {
  readonly realm: string;
  readonly service: string;
  readonly issuer: string;
  /** PEM certificate the registry trusts (rootcertbundle). */
  readonly certFile: string;
  /** Every token request received, in order. */
  readonly requests: TokenRequest[];
  close(): Promise<void>;
}

interface AccessClaim {
  type: string;
  name: string;
  actions: string[];
}

/** `repository:foo/bar:pull,push` -> access claim; registry:catalog:* style scopes work the same way. */
function parseScope(scope: string): AccessClaim | undefined {
  const lastColon = scope.lastIndexOf(':');
  const firstColon = scope.indexOf(':');
  if (firstColon < 0 || lastColon === firstColon) return undefined;
  return {
    type: scope.slice(0, firstColon),
    name: scope.slice(firstColon + 1, lastColon),
    actions: scope.slice(lastColon + 1).split(',').filter(Boolean),
  };
}

function b64url(data: Buffer | string): string {
  return Buffer.from(data).toString('base64url');
}

/** An ES256 JWT whose x5c header carries the self-signed certificate the registry trusts. */
function signJwt(key: KeyObject, certDer: Buffer, claims: Record<string, unknown>): string {
  const header = { typ: 'JWT', alg: 'ES256', x5c: [certDer.toString('base64')] };
  const input = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`;
  // JWS wants r||s, not DER.
  const signature = sign('sha256', Buffer.from(input), { key, dsaEncoding: 'ieee-p1363' });
  return `${input}.${b64url(signature)}`;
}

async function startTokenServer(dir: string, credentials: Credentials): Promise<TokenServer> {
  const keyFile = join(dir, 'token-key.pem');
  const certFile = join(dir, 'token-cert.pem');
  await run('openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-keyout', keyFile, '-out', certFile, '-days', '2', '-subj', '/CN=boxproxy-test-token-issuer',
  ]);
  const key = createPrivateKey(await readFile(keyFile));
  const certDer = new X509Certificate(await readFile(certFile)).raw;
  const service = 'boxproxy-test-registry';
  const issuer = 'boxproxy-test-issuer';
  const requests: TokenRequest[] = [];

  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://token');
    if (url.pathname !== '/token') {
      res.writeHead(404).end();
      return;
    }
    const scopes = url.searchParams.getAll('scope').flatMap((s) => s.split(' ')).filter(Boolean);
    const serviceParam = url.searchParams.get('service') ?? undefined;
    let account: string | undefined;
    let authorized = false;
    const header = req.headers.authorization;
    if (header?.startsWith('Basic ')) {
      const decoded = Buffer.from(header.slice(6), 'base64').toString();
      const colon = decoded.indexOf(':');
      account = decoded.slice(0, colon);
      authorized = account === credentials.username && decoded.slice(colon + 1) === credentials.password;
      if (!authorized) {
        requests.push({ account, service: serviceParam, scopes, granted: false });
        res.writeHead(401, { 'Content-Type': 'application/json' }).end(JSON.stringify({ details: 'wrong username or password' }));
        return;
      }
    }
    requests.push({ account, service: serviceParam, scopes, granted: true });
    // Anonymous callers get a token granting nothing, as public token services do for private repositories.
    const access = authorized ? scopes.map(parseScope).filter((a): a is AccessClaim => a !== undefined) : [];
    const now = Math.floor(Date.now() / 1000);
    const token = signJwt(key, certDer, {
      iss: issuer,
      sub: account ?? '',
      aud: serviceParam ?? service,
      exp: now + 300,
      nbf: now - 10,
      iat: now,
      jti: randomUUID(),
      access,
    });
    res.writeHead(200, { 'Content-Type': 'application/json' });
    res.end(JSON.stringify({ token, access_token: token, expires_in: 300, issued_at: new Date(now * 1000).toISOString() }));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as AddressInfo).port;
  return {
    realm: `http://127.0.0.1:${port}/token`,
    service,
    issuer,
    certFile,
    requests,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
