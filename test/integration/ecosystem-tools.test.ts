// The ecosystem's own clients against boxproxy serving real Boxes (docker-registry upstream, real conversions):
// oras pulls a Box's titled files, crane sees the Box entry and copies a Box, cosign verifies every Box's
// signatures offline with the served key and rejects a tampered signature and a foreign key.
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { list } from 'tar';
import { sha256 } from '../../src/oci/digest.js';
import type { ImageIndex, ImageManifest } from '../../src/oci/types.js';
import { dir, elf, file, symlink, type ImageSpec } from '../convert/helpers.js';
import { rubyAppImage, wasiAppImage, wasmtimeWrappedImage } from '../fixtures/images.js';
import { runBoxInEngines } from '../helpers/engines/index.js';
import { hostPlatform } from '../helpers/images.js';
import { makeTempDir, removeTempDir, run, skipUnlessTools, type RunResult } from '../helpers/proc.js';
import type { TestProxy } from '../helpers/proxy.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { skipUnlessTestTools, toolBin } from '../helpers/tools.js';
import { convertThrough, pushSpec, startBoxProxy, type ConversionStatus, type PushedImage } from './boxes-helpers.js';

const ELF = elf({ interpreter: '/lib64/ld-linux-x86-64.so.2' });

/** The shape of python:3.11-slim running /app/main.py: converted with the CPython-for-WASI runtime. */
function pythonAppImage(): ImageSpec {
  return {
    created: '2024-05-01T12:00:00Z',
    layers: [
      {
        entries: [
          dir('usr/'), dir('usr/local/'), dir('usr/local/bin/'),
          file('usr/local/bin/python3.11', ELF, 0o755), symlink('usr/local/bin/python3', 'python3.11'),
          dir('etc/'), file('etc/greeting', 'hello from python'),
        ],
      },
      { entries: [dir('app/'), file('app/main.py', 'import sys\nprint(open("/etc/greeting").read(), sys.argv[1:])\nsys.exit(5)\n')] },
    ],
    config: { Env: ['PYTHON_VERSION=3.11.9'], WorkingDir: '/app', Cmd: ['python3', 'main.py', 'arg'] },
  };
}

/** Every kind of Box the converter makes. */
const IMAGES: Record<string, () => ImageSpec> = {
  'tools/wasi': () => wasiAppImage('hello from a Box (tools)\n'),
  'tools/wrapped': wasmtimeWrappedImage,
  'tools/ruby': rubyAppImage,
  'tools/python': pythonAppImage,
};

interface Made {
  repo: string;
  pushed: PushedImage;
  status: ConversionStatus;
  box: string;
  manifest: ImageManifest;
}

describe('oras, crane and cosign against boxproxy serving Boxes', {
  skip: skipUnlessTools('docker-registry', 'skopeo') || skipUnlessTestTools('oras', 'crane', 'cosign', 'wasmtime', 'wazero'),
}, () => {
  let upstream: TestRegistry;
  let target: TestRegistry;
  let proxy: TestProxy;
  let work: string;
  let keyFile: string;
  const made = new Map<string, Made>();
  const arch = hostPlatform().architecture;

  const oras = (args: string[]) => run(toolBin('oras'), args, { allowFailure: true, env: { ...process.env, HOME: work } });
  const crane = (args: string[]) => run(toolBin('crane'), [...args, '--insecure'], { allowFailure: true, env: { ...process.env, HOME: work } });
  // Offline: no transparency log, no TUF root from the network, plain-http registries.
  const cosign = (args: string[]) =>
    run(toolBin('cosign'), args, {
      allowFailure: true,
      env: { ...process.env, HOME: work, TUF_ROOT: join(work, 'tuf'), SIGSTORE_NO_CACHE: '1', COSIGN_EXPERIMENTAL: '' },
      timeoutMs: 60_000,
    });
  const cosignVerify = (ref: string, key = keyFile, extra: string[] = []) =>
    cosign(['verify', '--key', key, '--insecure-ignore-tlog=true', '--allow-http-registry=true', '--output', 'json', ...extra, ref]);
  const ok = (r: RunResult, what: string) => assert.equal(r.code, 0, `${what}: exit ${r.code}\n${r.stderr}\n${r.stdout}`);
  const the = (repo: string): Made => made.get(repo) ?? assert.fail(`${repo} was not converted`);

  before(async () => {
    [upstream, target] = await Promise.all([startRegistry(), startRegistry()]);
    work = await makeTempDir('ecosystem-tools');
    proxy = await startBoxProxy({ registry: upstream });
    for (const [repo, spec] of Object.entries(IMAGES)) {
      const pushed = await pushSpec(upstream, repo, '1', { ...spec(), architecture: arch });
      const status = await convertThrough(proxy, `${upstream.host}/${repo}:1`, pushed.digest);
      assert.equal(status.state, 'done', `${repo}: ${JSON.stringify(status)}`);
      const box = status.box as string;
      const res = await fetch(`${proxy.url}/v2/wasm/${repo}/manifests/${box}`);
      made.set(repo, { repo, pushed, status, box, manifest: (await res.json()) as ImageManifest });
    }
    const key = await fetch(`${proxy.url}/boxproxy/v1/signing-key`);
    assert.equal(key.status, 200);
    keyFile = join(work, 'boxproxy.pub');
    await writeFile(keyFile, await key.text());
  });

  after(async () => {
    await proxy?.stop();
    await Promise.all([upstream?.stop(), target?.stop()]);
    for (const m of made.values()) await removeTempDir(m.pushed.layout);
    if (work) await removeTempDir(work);
  });

  /** The files oras wrote are the Box's layers, byte for byte, and the module layer holds the entrypoint module. */
  async function assertPulledFiles(outDir: string, m: Made): Promise<void> {
    const titled = m.manifest.layers.map((l) => l.annotations?.['org.opencontainers.image.title']);
    assert.ok(titled.every(Boolean), 'every Box layer has a title');
    assert.deepEqual((await readdir(outDir)).sort(), [...(titled as string[])].sort());
    for (const layer of m.manifest.layers) {
      const bytes = await readFile(join(outDir, layer.annotations?.['org.opencontainers.image.title'] as string));
      assert.equal(sha256(bytes), layer.digest, `${layer.annotations?.['org.opencontainers.image.title']} is the layer ${layer.digest}`);
    }
    const config = JSON.parse(await (await fetch(`${proxy.url}/v2/wasm/${m.repo}/blobs/${m.manifest.config.digest}`)).text()) as {
      config: { Entrypoint: string[] };
    };
    const entries: string[] = [];
    for (const name of titled as string[]) await list({ file: join(outDir, name), onReadEntry: (e) => entries.push(e.path) });
    const module = (config.config.Entrypoint[0] as string).replace(/^\//, '');
    assert.ok(entries.includes(module), `the pulled layers hold the module ${module}`);
  }

  test('oras pull of a Box reference writes the Box\'s titled files, byte for byte', async () => {
    for (const m of made.values()) {
      const out = join(work, `oras-${m.repo.replace('/', '-')}`);
      const r = await oras(['pull', '--plain-http', '-o', out, `${proxy.host}/wasm/${m.repo}:1`]);
      ok(r, `oras pull ${m.repo}`);
      await assertPulledFiles(out, m);
    }
  });

  test('oras pull --platform wasip1/wasm of the source tag gets the same Box files', async () => {
    const m = the('tools/wasi');
    const out = join(work, 'oras-platform');
    ok(await oras(['pull', '--plain-http', '--platform', 'wasip1/wasm', '-o', out, `${proxy.host}/${m.repo}:1`]), 'oras pull --platform');
    await assertPulledFiles(out, m);
  });

  test('crane manifest shows the Box entry; crane digest --platform wasip1/wasm is the Box, linux the upstream image', async () => {
    const m = the('tools/wasi');
    const ref = `${proxy.host}/${m.repo}:1`;
    const index = await crane(['manifest', ref]);
    ok(index, 'crane manifest');
    const entries = (JSON.parse(index.stdout) as ImageIndex).manifests;
    assert.deepEqual(entries.map((d) => [d.digest, `${d.platform?.os}/${d.platform?.architecture}`]), [
      [m.pushed.digest, `linux/${arch}`],
      [m.box, 'wasip1/wasm'],
    ]);
    const boxDigest = await crane(['digest', '--platform', 'wasip1/wasm', ref]);
    ok(boxDigest, 'crane digest --platform wasip1/wasm');
    assert.equal(boxDigest.stdout.trim(), m.box);
    const linux = await crane(['digest', '--platform', `linux/${arch}`, ref]);
    ok(linux, 'crane digest --platform linux');
    assert.equal(linux.stdout.trim(), m.pushed.digest);
    const boxManifest = await crane(['manifest', '--platform', 'wasip1/wasm', ref]);
    assert.equal(sha256(Buffer.from(boxManifest.stdout)), m.box, 'crane manifest --platform gets the Box manifest bytes');
  });

  test('crane copy copies a Box to another registry, digest preserved, and the copy runs in every engine', async () => {
    const m = the('tools/wasi');
    const copy = `${target.host}/copied/wasi:1`;
    ok(await crane(['copy', `${proxy.host}/wasm/${m.repo}:1`, copy]), 'crane copy');
    const digest = await crane(['digest', copy]);
    assert.equal(digest.stdout.trim(), m.box);
    const layout = join(work, 'crane-pulled');
    ok(await crane(['pull', '--format', 'oci', copy, layout]), 'crane pull --format oci');
    const ran = await runBoxInEngines(layout, { args: ['cat:/etc/greeting', 'exit:2'] });
    assert.deepEqual(ran.engines, ['node:wasi', 'wasmtime', 'wazero']);
    assert.match(ran.stdout, /^\/etc\/greeting: hello from a Box \(tools\)$/m);
    assert.equal(ran.exitCode, 2);
  });

  test('cosign verify --key <served key> accepts every Box, offline', async () => {
    for (const m of made.values()) {
      for (const ref of [`${proxy.host}/wasm/${m.repo}:1`, `${proxy.host}/wasm/${m.repo}@${m.box}`]) {
        const r = await cosignVerify(ref);
        ok(r, `cosign verify ${ref}`);
        const claims = JSON.parse(r.stdout) as Array<{ critical: { image: { 'docker-manifest-digest': string } } }>;
        assert.ok(claims.length >= 1);
        for (const c of claims) assert.equal(c.critical.image['docker-manifest-digest'], m.box);
      }
    }
  });

  test('cosign verify rejects a foreign key', async () => {
    const foreign = join(work, 'foreign.pub');
    const { publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    await writeFile(foreign, publicKey.export({ type: 'spki', format: 'pem' }));
    const m = the('tools/wasi');
    const r = await cosignVerify(`${proxy.host}/wasm/${m.repo}:1`, foreign);
    assert.notEqual(r.code, 0, r.stdout);
    assert.match(r.stderr, /no matching signatures|invalid signature|verification failed|failed to verify/i);
  });

  test('cosign verify rejects a tampered signature (Box and .sig copied to a real registry, then the signature altered)', async () => {
    const m = the('tools/wasi');
    const sigTag = `sha256-${m.box.slice('sha256:'.length)}.sig`;
    const copy = `${target.host}/tamper/wasi`;
    ok(await crane(['copy', `${proxy.host}/wasm/${m.repo}:1`, `${copy}:1`]), 'crane copy Box');
    ok(await crane(['copy', `${proxy.host}/wasm/${m.repo}:${sigTag}`, `${copy}:${sigTag}`]), 'crane copy .sig');
    ok(await cosignVerify(`${copy}:1`), 'the untouched copy verifies');

    const sig = JSON.parse((await crane(['manifest', `${copy}:${sigTag}`])).stdout) as ImageManifest;
    const layer = sig.layers[0] as { annotations: Record<string, string> };
    const good = Buffer.from(layer.annotations['dev.cosignproject.cosign/signature'] as string, 'base64');
    good[good.length - 1] = (good[good.length - 1] as number) ^ 0x01;
    layer.annotations['dev.cosignproject.cosign/signature'] = good.toString('base64');
    const tamperedFile = join(work, 'tampered-sig.json');
    await writeFile(tamperedFile, JSON.stringify(sig));
    ok(await oras(['manifest', 'push', '--plain-http', '--media-type', 'application/vnd.oci.image.manifest.v1+json', `${copy}:${sigTag}`, tamperedFile]), 'oras manifest push');
    const r = await cosignVerify(`${copy}:1`);
    assert.notEqual(r.code, 0, `cosign accepted a tampered signature:\n${r.stdout}`);
    assert.match(r.stderr, /no matching signatures|invalid signature|verification failed|failed to verify/i);
  });
});
