// The ecosystem's own clients against boxproxy serving real Boxes (docker-registry upstream, real conversions):
// oras pulls a Box's titled files, crane sees the Box entry and copies a Box, cosign verifies every Box's
// signatures offline with the served key (the sigstore bundle referrer on boxproxy, the `.sig` tag on a registry
// without the referrers API) and rejects a tampered signature and a foreign key. Tampered bundles and the other
// forgeries cosign must reject are in signing-tamper.test.ts.
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
import { COSIGN_REJECTED, COSIGN_VERIFIED_BUNDLE, COSIGN_VERIFIED_SIG, cosignVerify as cosignVerifyAt } from '../helpers/cosign.js';
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
  const cosignVerify = (ref: string, key = keyFile) => cosignVerifyAt(ref, key, join(work, 'cosign-home'));
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

  test('cosign verify --key <served key> accepts every Box offline, through its sigstore bundle referrer', async () => {
    for (const m of made.values()) {
      // The Box reference by tag and by digest, and the Box by digest in its source repository.
      for (const ref of [`${proxy.host}/wasm/${m.repo}:1`, `${proxy.host}/wasm/${m.repo}@${m.box}`, `${proxy.host}/${m.repo}@${m.box}`]) {
        const r = await cosignVerify(ref);
        ok(r, `cosign verify ${ref}`);
        // boxproxy answers the referrers API: cosign 3 verifies the bundle referrer and stops there.
        assert.deepEqual(r.verified, [{ digest: m.box, type: COSIGN_VERIFIED_BUNDLE }], ref);
      }
    }
  });

  test('cosign verify rejects a foreign key', async () => {
    const foreign = join(work, 'foreign.pub');
    const { publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    await writeFile(foreign, publicKey.export({ type: 'spki', format: 'pem' }));
    for (const m of made.values()) {
      const r = await cosignVerify(`${proxy.host}/wasm/${m.repo}:1`, foreign);
      assert.notEqual(r.code, 0, r.stdout);
      assert.match(r.stderr, COSIGN_REJECTED);
    }
  });

  test('the .sig signature, on a registry without the referrers API, verifies with cosign; altered, it is rejected', async () => {
    const m = the('tools/wasi');
    const sigTag = `sha256-${m.box.slice('sha256:'.length)}.sig`;
    const copy = `${target.host}/tamper/wasi`;
    ok(await crane(['copy', `${proxy.host}/wasm/${m.repo}:1`, `${copy}:1`]), 'crane copy Box');
    ok(await crane(['copy', `${proxy.host}/wasm/${m.repo}:${sigTag}`, `${copy}:${sigTag}`]), 'crane copy .sig');
    // docker-registry 2.8 has no referrers API and the copy has no referrers tag: cosign falls back to the .sig tag.
    const untouched = await cosignVerify(`${copy}:1`);
    ok(untouched, 'the untouched copy verifies');
    assert.deepEqual(untouched.verified, [{ digest: m.box, type: COSIGN_VERIFIED_SIG }]);

    const sig = JSON.parse((await crane(['manifest', `${copy}:${sigTag}`])).stdout) as ImageManifest;
    const layer = sig.layers[0] as { annotations: Record<string, string> };
    const der = Buffer.from(layer.annotations['dev.cosignproject.cosign/signature'] as string, 'base64');
    der[der.length - 1] = (der[der.length - 1] as number) ^ 0x01;
    layer.annotations['dev.cosignproject.cosign/signature'] = der.toString('base64');
    const tamperedFile = join(work, 'tampered-sig.json');
    await writeFile(tamperedFile, JSON.stringify(sig));
    ok(await oras(['manifest', 'push', '--plain-http', '--media-type', 'application/vnd.oci.image.manifest.v1+json', `${copy}:${sigTag}`, tamperedFile]), 'oras manifest push');
    const r = await cosignVerify(`${copy}:1`);
    assert.notEqual(r.code, 0, `cosign accepted a tampered signature:\n${r.stdout}`);
    assert.match(r.stderr, COSIGN_REJECTED);
  });
});
