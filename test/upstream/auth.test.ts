import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { silentLogger } from '../../src/ops/log.js';
import { UpstreamAuth, parseWwwAuthenticate, pullScope, type TokenEndpointAnswer } from '../../src/upstream/auth.js';
import { UpstreamError } from '../../src/upstream/types.js';

describe('parseWwwAuthenticate', () => {
  test('Docker Hub style Bearer challenge', () => {
    const [c, ...rest] = parseWwwAuthenticate(
      'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/nginx:pull"',
    );
    assert.equal(rest.length, 0);
    assert.deepEqual(c, {
      scheme: 'bearer',
      params: { realm: 'https://auth.docker.io/token', service: 'registry.docker.io', scope: 'repository:library/nginx:pull' },
    });
  });

  test('commas inside quoted values do not split parameters', () => {
    const [c] = parseWwwAuthenticate('Bearer realm="https://a.example/token",scope="repository:a:pull,push",service="reg,istry"');
    assert.equal(c?.params.scope, 'repository:a:pull,push');
    assert.equal(c?.params.service, 'reg,istry');
    assert.equal(c?.params.realm, 'https://a.example/token');
  });

  test('escaped quotes and backslashes in quoted strings', () => {
    const [c] = parseWwwAuthenticate('Bearer realm="a\\"b\\\\c",error="insufficient_scope"');
    assert.equal(c?.params.realm, 'a"b\\c');
    assert.equal(c?.params.error, 'insufficient_scope');
  });

  test('Basic with quoted and unquoted realm; scheme and names are case-insensitive', () => {
    assert.deepEqual(parseWwwAuthenticate('Basic realm="test"'), [{ scheme: 'basic', params: { realm: 'test' } }]);
    assert.deepEqual(parseWwwAuthenticate('BASIC Realm=test'), [{ scheme: 'basic', params: { realm: 'test' } }]);
  });

  test('several challenges in one header, and in several headers', () => {
    const one = parseWwwAuthenticate('Basic realm="x", Bearer realm="https://t/token",service="s"');
    assert.deepEqual(one.map((c) => c.scheme), ['basic', 'bearer']);
    assert.equal(one[1]?.params.service, 's');
    const many = parseWwwAuthenticate(['Basic realm="x"', 'Bearer realm="https://t/token"']);
    assert.deepEqual(many.map((c) => c.scheme), ['basic', 'bearer']);
  });

  test('whitespace around = and commas', () => {
    const [c] = parseWwwAuthenticate('Bearer  realm = "https://t/token" ,  service = reg , scope="s"');
    assert.deepEqual(c?.params, { realm: 'https://t/token', service: 'reg', scope: 's' });
  });

  test('token68 challenges and schemes without parameters', () => {
    const cs = parseWwwAuthenticate('Negotiate abc+/==, NTLM, Basic realm="r"');
    assert.deepEqual(cs, [
      { scheme: 'negotiate', params: {}, token68: 'abc+/==' },
      { scheme: 'ntlm', params: {} },
      { scheme: 'basic', params: { realm: 'r' } },
    ]);
  });

  test('empty, missing and malformed headers do not throw', () => {
    assert.deepEqual(parseWwwAuthenticate(undefined), []);
    assert.deepEqual(parseWwwAuthenticate(''), []);
    assert.deepEqual(parseWwwAuthenticate(' , ,'), []);
    const [c] = parseWwwAuthenticate('Bearer realm="unterminated');
    assert.equal(c?.params.realm, 'unterminated');
    assert.equal(parseWwwAuthenticate('"junk", Basic realm=r')[0]?.scheme, 'basic');
  });
});

interface FakeEndpoint {
  calls: Array<{ url: URL; headers: Record<string, string> }>;
  answers: TokenEndpointAnswer[];
  fetch(url: URL, headers: Record<string, string>): Promise<TokenEndpointAnswer>;
}

function fakeEndpoint(...answers: TokenEndpointAnswer[]): FakeEndpoint {
  const ep: FakeEndpoint = {
    calls: [],
    answers,
    fetch: async (url, headers) => {
      ep.calls.push({ url, headers });
      const answer = ep.answers.length > 1 ? ep.answers.shift() : ep.answers[0];
      assert.ok(answer, 'no answer left');
      return answer;
    },
  };
  return ep;
}

const json = (body: unknown, status = 200): TokenEndpointAnswer => ({ status, body: JSON.stringify(body) });
const CHALLENGE = 'Bearer realm="https://auth.example/token",service="registry.example",scope="repository:team/app:pull"';
const SCOPE = pullScope('team/app');
const CREDS = { username: 'robot', password: 's3cret-pa55' };

function authWith(ep: FakeEndpoint, clock: { t: number }, credentials: typeof CREDS | null = CREDS): UpstreamAuth {
  return new UpstreamAuth({
    upstream: 'registry.example',
    ...(credentials ? { credentials } : {}),
    fetchToken: ep.fetch,
    logger: silentLogger(),
    now: () => clock.t,
  });
}

describe('UpstreamAuth', () => {
  test('pullScope', () => {
    assert.equal(pullScope('library/nginx'), 'repository:library/nginx:pull');
    assert.equal(pullScope(undefined), '');
  });

  test('Bearer: token fetched with service, scope and Basic credentials, then cached for the scope', async () => {
    const ep = fakeEndpoint(json({ token: 'tok-1', expires_in: 300 }));
    const auth = authWith(ep, { t: 1_000_000 });
    assert.equal(auth.cached(SCOPE), undefined);
    assert.equal(await auth.respond(CHALLENGE, SCOPE), 'Bearer tok-1');
    assert.equal(ep.calls.length, 1);
    const call = ep.calls[0];
    assert.ok(call);
    assert.equal(call.url.origin + call.url.pathname, 'https://auth.example/token');
    assert.equal(call.url.searchParams.get('service'), 'registry.example');
    assert.deepEqual(call.url.searchParams.getAll('scope'), ['repository:team/app:pull']);
    assert.equal(call.headers.authorization, 'Basic ' + Buffer.from('robot:s3cret-pa55').toString('base64'));
    assert.equal(auth.cached(SCOPE), 'Bearer tok-1');
    assert.equal(auth.cached(pullScope('team/other')), undefined, 'tokens are per scope');
  });

  test('access_token is accepted; anonymous fetches send no credentials', async () => {
    const ep = fakeEndpoint(json({ access_token: 'anon-tok' }));
    const auth = authWith(ep, { t: 0 }, null);
    assert.equal(await auth.respond(CHALLENGE, SCOPE), 'Bearer anon-tok');
    assert.equal(ep.calls[0]?.headers.authorization, undefined);
  });

  test('a challenge without scope uses the request scope; several scopes become several params', async () => {
    const ep = fakeEndpoint(json({ token: 't' }));
    const auth = authWith(ep, { t: 0 });
    await auth.respond('Bearer realm="https://auth.example/token",service="s"', SCOPE);
    assert.deepEqual(ep.calls[0]?.url.searchParams.getAll('scope'), [SCOPE]);
    await auth.respond('Bearer realm="https://auth.example/token",scope="repository:a:pull repository:b:pull"', 'x');
    assert.deepEqual(ep.calls[1]?.url.searchParams.getAll('scope'), ['repository:a:pull', 'repository:b:pull']);
  });

  test('expires_in defaults to 60 s and the token is dropped shortly before expiry', async () => {
    const clock = { t: 5_000_000 };
    const ep = fakeEndpoint(json({ token: 'short' }));
    const auth = authWith(ep, clock);
    await auth.respond(CHALLENGE, SCOPE);
    clock.t += 50_000;
    assert.equal(auth.cached(SCOPE), 'Bearer short');
    clock.t += 9_000; // 59 s: inside the safety margin
    assert.equal(auth.cached(SCOPE), undefined);
  });

  test('expiry follows expires_in, and a past issued_at shortens it; a future issued_at (skew) is ignored', async () => {
    const clock = { t: Date.parse('2025-01-01T00:10:00Z') };
    const ep = fakeEndpoint(
      json({ token: 'long', expires_in: 3600 }),
      json({ token: 'old', expires_in: 600, issued_at: '2025-01-01T00:05:00Z' }),
      json({ token: 'skewed', expires_in: 600, issued_at: '2025-01-01T01:00:00Z' }),
    );
    const auth = authWith(ep, clock);
    await auth.respond(CHALLENGE, 'a');
    await auth.respond(CHALLENGE, 'b');
    await auth.respond(CHALLENGE, 'c');
    clock.t += 240_000; // 4 min after the fetch: 'old' (issued 5 min before) has 1 min left
    assert.equal(auth.cached('b'), 'Bearer old');
    assert.equal(auth.cached('c'), 'Bearer skewed');
    clock.t += 60_000;
    assert.equal(auth.cached('b'), undefined, 'issued_at + expires_in has passed');
    assert.equal(auth.cached('c'), 'Bearer skewed', 'counted from receipt, not from a future issued_at');
    clock.t += 600_000;
    assert.equal(auth.cached('a'), 'Bearer long');
    assert.equal(auth.cached('c'), undefined);
  });

  test('expired tokens are fetched again', async () => {
    const clock = { t: 0 };
    const ep = fakeEndpoint(json({ token: 'first', expires_in: 60 }), json({ token: 'second', expires_in: 60 }));
    const auth = authWith(ep, clock);
    assert.equal(await auth.respond(CHALLENGE, SCOPE), 'Bearer first');
    clock.t += 61_000;
    assert.equal(auth.cached(SCOPE), undefined);
    assert.equal(await auth.respond(CHALLENGE, SCOPE), 'Bearer second');
    assert.equal(ep.calls.length, 2);
  });

  test('concurrent requests for the same scope share one token fetch', async () => {
    let release: (a: TokenEndpointAnswer) => void = () => {};
    const calls: URL[] = [];
    const auth = new UpstreamAuth({
      upstream: 'registry.example',
      credentials: CREDS,
      logger: silentLogger(),
      fetchToken: (url) => {
        calls.push(url);
        return new Promise((resolve) => (release = resolve));
      },
    });
    const waiting = Array.from({ length: 8 }, () => auth.respond(CHALLENGE, SCOPE));
    release(json({ token: 'shared' }));
    assert.deepEqual(await Promise.all(waiting), Array(8).fill('Bearer shared'));
    assert.equal(calls.length, 1);
  });

  test('invalidate forgets a token', async () => {
    const auth = authWith(fakeEndpoint(json({ token: 't' })), { t: 0 });
    await auth.respond(CHALLENGE, SCOPE);
    auth.invalidate(SCOPE);
    assert.equal(auth.cached(SCOPE), undefined);
  });

  test('Basic: used once challenged, then pre-emptively for every scope; nothing without credentials', async () => {
    const ep = fakeEndpoint();
    const auth = authWith(ep, { t: 0 });
    const basic = 'Basic ' + Buffer.from('robot:s3cret-pa55').toString('base64');
    assert.equal(auth.cached(SCOPE), undefined, 'not before the upstream asks');
    assert.equal(await auth.respond('Basic realm="test"', SCOPE), basic);
    assert.equal(auth.cached(pullScope('any/repo')), basic);
    assert.equal(ep.calls.length, 0);

    const anonymous = authWith(ep, { t: 0 }, null);
    assert.equal(await anonymous.respond('Basic realm="test"', SCOPE), undefined);
    assert.equal(anonymous.cached(SCOPE), undefined);
  });

  test('no usable challenge: undefined', async () => {
    const auth = authWith(fakeEndpoint(), { t: 0 });
    assert.equal(await auth.respond(undefined, SCOPE), undefined);
    assert.equal(await auth.respond('Bearer service="no-realm"', SCOPE), undefined);
    assert.equal(await auth.respond('Negotiate abc=', SCOPE), undefined);
  });

  test('token endpoint failures are auth errors that never carry credentials', async () => {
    const secrets = [CREDS.password, Buffer.from(`${CREDS.username}:${CREDS.password}`).toString('base64')];
    const cases: Array<[FakeEndpoint['fetch'], RegExp]> = [
      [fakeEndpoint({ status: 401, body: `{"details":"bad password ${CREDS.password}"}` }).fetch, /token endpoint https:\/\/auth\.example\/token answered 401 \(credentials refused\)/],
      [fakeEndpoint({ status: 500, body: '' }).fetch, /answered 500/],
      [fakeEndpoint({ status: 200, body: 'not json' }).fetch, /invalid JSON/],
      [fakeEndpoint(json({ expires_in: 60 })).fetch, /without a token/],
      [
        async () => {
          throw Object.assign(new Error(`connect ECONNREFUSED robot:${CREDS.password}`), { code: 'ECONNREFUSED' });
        },
        /token endpoint https:\/\/auth\.example\/token unreachable: ECONNREFUSED/,
      ],
    ];
    for (const [fetchToken, message] of cases) {
      const auth = new UpstreamAuth({ upstream: 'registry.example', credentials: CREDS, fetchToken, logger: silentLogger() });
      await assert.rejects(auth.respond(CHALLENGE, SCOPE), (err: unknown) => {
        assert.ok(err instanceof UpstreamError);
        assert.equal(err.kind, 'auth');
        assert.equal(err.upstream, 'registry.example');
        assert.match(err.message, message);
        const shown = `${err.message} ${err.stack} ${JSON.stringify(err)}`;
        for (const s of secrets) assert.ok(!shown.includes(s), `credential in error: ${err.message}`);
        return true;
      });
      assert.equal(auth.cached(SCOPE), undefined);
    }
  });

  test('a failed fetch is not shared with later requests', async () => {
    const ep = fakeEndpoint({ status: 503, body: '' }, json({ token: 'later' }));
    const auth = authWith(ep, { t: 0 });
    await assert.rejects(auth.respond(CHALLENGE, SCOPE), UpstreamError);
    assert.equal(await auth.respond(CHALLENGE, SCOPE), 'Bearer later');
  });

  test('an invalid or non-HTTP realm is an auth error', async () => {
    const auth = authWith(fakeEndpoint(), { t: 0 });
    await assert.rejects(auth.respond('Bearer realm="not a url"', SCOPE), { name: 'UpstreamError', kind: 'auth' });
    await assert.rejects(auth.respond('Bearer realm="file:///etc/passwd"', SCOPE), { name: 'UpstreamError', kind: 'auth' });
  });
});
