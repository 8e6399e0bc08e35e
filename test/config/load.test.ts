import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, loadConfig, parseConfig } from '../../src/config/load.js';

const dir = mkdtempSync(join(tmpdir(), 'boxproxy-config-'));
function write(name: string, text: string): string {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
}

test('the default config is valid and proxies docker.io, ghcr.io and quay.io', () => {
  const c = loadConfig(new URL('../../config/default.yaml', import.meta.url).pathname);
  assert.deepEqual(c.upstreams.map((u) => u.name), ['docker.io', 'ghcr.io', 'quay.io']);
  assert.equal(c.upstreams[0]?.url, 'https://registry-1.docker.io');
  assert.equal(c.listen, '0.0.0.0:5000');
});

test('defaults: listen, storage path, tagTtl in ms', () => {
  const c = parseConfig({ upstreams: [{ name: 'r.example', url: 'https://r.example' }] });
  assert.equal(c.listen, '0.0.0.0:5000');
  assert.equal(c.storage.path, './data');
  assert.equal(c.upstreams[0]?.tagTtl, 300_000);
  assert.equal(parseConfig({ upstreams: [{ name: 'r', url: 'http://r', tagTtl: '2m' }] }).upstreams[0]?.tagTtl, 120_000);
});

test('invalid config names the key and the reason', () => {
  const cases: Array<[unknown, RegExp]> = [
    [{ upstreams: [] }, /upstreams: at least one upstream/],
    [{ upstreams: [{ name: 'a', url: 'ftp://x' }] }, /upstreams\.0\.url/],
    [{ upstreams: [{ name: 'a', url: 'http://x', tagTtl: 'soon' }] }, /upstreams\.0\.tagTtl: .*duration/],
    [{ upstreams: [{ name: 'a', url: 'http://x' }], listen: 'nope' }, /listen: expected host:port/],
    [{ upstreams: [{ name: 'a', url: 'http://x' }], storage: { maxBytes: 'lots' } }, /storage\.maxBytes/],
    [{ upstreams: [{ name: 'a', url: 'http://x' }], defaultUpstream: 'b' }, /defaultUpstream: no upstream is named b/],
    [{ upstreams: [{ name: 'a', url: 'http://x' }, { name: 'a', url: 'http://y' }] }, /upstreams\.1\.name: duplicate/],
    [{ upstreams: [{ name: 'a', url: 'http://x', pasword: 'typo' }] }, /upstreams\.0: .*pasword/],
    [{ upstreams: [{ name: 'a', url: 'http://x', password: 'p' }] }, /upstreams\.0\.username: a password needs a username/],
  ];
  for (const [raw, re] of cases) {
    assert.throws(() => parseConfig(raw), (e: unknown) => e instanceof ConfigError && re.test(e.message), JSON.stringify(raw));
  }
});

test('flags override listen and storage; passwordFile is read relative to the config', () => {
  write('pw', 's3cret\n');
  const file = write('c.yaml', 'upstreams:\n  - name: r.example\n    url: https://r.example\n    username: u\n    passwordFile: pw\n');
  const c = loadConfig(file, { listen: '127.0.0.1:0', storage: 'relstore' });
  assert.equal(c.listen, '127.0.0.1:0');
  assert.equal(c.storage.path, join(process.cwd(), 'relstore'));
  assert.equal(c.upstreams[0]?.password, 's3cret');
});

test('a missing passwordFile or broken YAML stops start-up with the reason', () => {
  const file = write('c2.yaml', 'upstreams:\n  - name: r\n    url: https://r\n    username: u\n    passwordFile: nope\n');
  assert.throws(() => loadConfig(file), /passwordFile: cannot read .*ENOENT/);
  assert.throws(() => loadConfig(write('c3.yaml', 'upstreams: [')), /not valid YAML/);
  assert.throws(() => loadConfig(join(dir, 'absent.yaml')), /cannot read config/);
});

test('conversion.runtimes: catalog relative to the config file, registry as host/repository', () => {
  const file = write('c4.yaml', 'upstreams:\n  - name: r\n    url: https://r\nconversion:\n  runtimes:\n    catalog: rt\n    registry: 127.0.0.1:5001/runtimes\n');
  const c = loadConfig(file);
  assert.deepEqual(c.conversion.runtimes, { catalog: join(dir, 'rt'), registry: '127.0.0.1:5001/runtimes', insecure: false, build: 'auto' });
  assert.deepEqual(parseConfig({ upstreams: [{ name: 'r', url: 'http://r' }] }).conversion.runtimes, { insecure: false, build: 'auto' });
  assert.equal(parseConfig({ upstreams: [{ name: 'r', url: 'http://r' }], conversion: { runtimes: { build: 'never' } } }).conversion.runtimes.build, 'never');
  assert.throws(() => parseConfig({ upstreams: [{ name: 'r', url: 'http://r' }], conversion: { runtimes: { build: 'sometimes' } } }), /conversion.runtimes.build/);
  for (const [runtimes, re] of [
    [{ registry: 'runtimes' }, /conversion\.runtimes\.registry: expected host\[:port\]\/repository/],
    [{ registry: 'ghcr.io/Boxproxy/runtimes' }, /conversion\.runtimes\.registry/],
    [{ registry: 'ghcr.io/boxproxy/runtimes', tls: false }, /conversion\.runtimes: .*tls/],
  ] as Array<[unknown, RegExp]>) {
    assert.throws(() => parseConfig({ upstreams: [{ name: 'r', url: 'http://r' }], conversion: { runtimes } }), re, JSON.stringify(runtimes));
  }
});
