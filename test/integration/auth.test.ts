// Upstreams that need credentials (htpasswd Basic, bearer tokens from a token endpoint): boxproxy holds the
// credentials, clients stay anonymous, and the credentials never reach a client or the log.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { assertSkopeoGetsDigest, buildImage, pushImage, skopeo, type BuiltImage } from '../helpers/images.js';
import { skipUnlessTools } from '../helpers/proc.js';
import { startTestProxy, upstreamOf, type TestProxy } from '../helpers/proxy.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';

for (const mode of ['basic', 'token'] as const) {
  describe(`${mode} auth upstream`, { skip: skipUnlessTools('docker-registry', 'skopeo', 'htpasswd', 'openssl') }, () => {
    let registry: TestRegistry;
    let proxy: TestProxy;
    let wrongProxy: TestProxy;
    let image: BuiltImage;
    const repo = `private/${mode}`;

    before(async () => {
      registry = await startRegistry({ auth: mode });
      image = await buildImage({ tag: 'v1', platforms: [{ os: 'linux', architecture: 'amd64' }, { os: 'linux', architecture: 'arm64' }] });
      await pushImage(image, registry, repo);
      proxy = await startTestProxy({ upstreams: [upstreamOf(registry)] });
      wrongProxy = await startTestProxy({ upstreams: [upstreamOf(registry, { password: 'not-the-password' })] });
    });

    after(async () => {
      await proxy?.stop();
      await wrongProxy?.stop();
      await registry?.stop();
      await image?.remove();
    });

    test('anonymous clients are refused by the upstream itself', async () => {
      const res = await skopeo(['inspect', '--raw', '--tls-verify=false', '--no-creds', `docker://${registry.host}/${repo}:v1`], { allowFailure: true });
      assert.notEqual(res.code, 0, 'the upstream must require credentials for this test to mean anything');
    });

    test('anonymous skopeo inspect and copy through boxproxy, by tag and by digest', async () => {
      // From here on only boxproxy talks to the upstream (and its token endpoint).
      const tokenRequestsBefore = registry.tokenServer?.requests.length ?? 0;
      for (const ref of [`${proxy.host}/${repo}:v1`, `${proxy.host}/${repo}@${image.digest}`]) {
        await assertSkopeoGetsDigest(ref, image.digest);
      }
      if (mode === 'token') {
        const requests = (registry.tokenServer?.requests ?? []).slice(tokenRequestsBefore);
        const fromProxy = requests.filter((r) => r.scopes.some((s) => s === `repository:${repo}:pull`));
        assert.ok(fromProxy.length > 0, 'boxproxy asked the token endpoint for a pull scope');
        assert.ok(fromProxy.every((r) => r.account === registry.credentials?.username && r.granted), 'with its configured account');
      }
    });

    test('a client Authorization header is not forwarded upstream', async () => {
      // A bogus client credential: if boxproxy passed it on, the upstream would refuse the request.
      const res = await fetch(`${proxy.url}/v2/${repo}/manifests/${image.digest}`, {
        headers: { authorization: 'Basic ' + Buffer.from('intruder:guess').toString('base64'), accept: image.mediaType },
      });
      await res.arrayBuffer();
      assert.equal(res.status, 200);
      if (mode === 'token') {
        assert.ok(!(registry.tokenServer?.requests ?? []).some((r) => r.account === 'intruder'));
      }
    });

    test('wrong upstream credentials: a clear OCI error that does not leak them', async () => {
      for (const path of [`/v2/${repo}/manifests/v1`, `/v2/${repo}/blobs/${image.blobs[0]?.digest}`]) {
        const res = await fetch(`${wrongProxy.url}${path}`);
        const text = await res.text();
        assert.ok(res.status >= 400, `${path}: ${res.status}`);
        assert.ok(Array.isArray((JSON.parse(text) as { errors?: unknown }).errors), `OCI error JSON: ${text}`);
        assert.ok(!text.includes('not-the-password'), 'password not in the response');
        assert.ok(!text.includes(registry.credentials?.password ?? '\0'), 'password not in the response');
      }
    });

    test('credentials never appear in responses or logs', async () => {
      const password = registry.credentials?.password ?? '';
      assert.ok(password.length > 0);
      for (const p of [proxy, wrongProxy]) {
        const log = await p.log();
        assert.ok(log.length > 0, 'boxproxy logged something');
        assert.ok(!log.includes(password), 'upstream password in the log');
        assert.ok(!log.includes('not-the-password'), 'configured password in the log');
        assert.ok(!log.includes(Buffer.from(`${registry.credentials?.username}:${password}`).toString('base64')), 'Basic credentials in the log');
      }
      const metrics = await (await fetch(`${proxy.url}/metrics`)).text();
      assert.ok(!metrics.includes(password));
    });
  });
}
