// Convert each fixture image (OCI layout in, Box layout out) with the real pipeline, then run the Box with the
// real runner and check what the program really printed.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { LABEL_DIRS, LABEL_RUNNER, LABEL_SOURCE_DIGEST, LABEL_STRATEGY } from '../../src/box/format.js';
import { loadBox } from '../../src/box/layout.js';
import { planRun, runPlanIsolated, type RunOptions } from '../../src/box/runner.js';
import { convertImage, writeBoxToOciLayout, type ConvertResult } from '../../src/convert/pipeline.js';
import { NpmRuntimeCatalog } from '../../src/runtimes/npm-ruby.js';
import { OciLayoutSource } from '../../src/image/oci-layout.js';
import type { ImageSpec, LayoutOptions } from '../convert/helpers.js';
import { tempDir } from '../convert/helpers.js';
import { assertBoxRunsAlikeInEngines } from '../helpers/engines/index.js';
import {
  expectedHelloOutput,
  multiArch,
  nativeServerImage,
  rubyAppImage,
  toDockerMediaTypes,
  wasiAppImage,
  wasmtimeWrappedImage,
  whiteoutImage,
  writeLayout,
} from '../fixtures/images.js';

let root: string;
let cleanup: () => Promise<void>;
let n = 0;
const runtimes = new NpmRuntimeCatalog();
before(async () => {
  ({ path: root, cleanup } = await tempDir('boxproxy-e2e-'));
});
after(async () => cleanup());

interface Converted {
  result: ConvertResult;
  boxDir: string;
  base: string;
}

async function convertFixture(spec: ImageSpec, layout: LayoutOptions = {}, prepare?: (dir: string) => Promise<void>): Promise<Converted> {
  const base = join(root, `c${++n}`);
  const imageDir = join(base, 'image');
  await writeLayout(imageDir, spec, layout);
  if (prepare) await prepare(imageDir);
  const result = await convertImage(new OciLayoutSource(imageDir), '', { workDir: join(base, 'work'), runtimes });
  const boxDir = join(base, 'box');
  if (result.kind === 'box') await writeBoxToOciLayout(result.box, boxDir, 'latest');
  return { result, boxDir, base };
}

/** Runs the Box with boxproxy's runner, and checks node:wasi, wasmtime and wazero run it the same. */
async function runBoxDir(c: Converted, opts: RunOptions = {}) {
  const unpacked = await loadBox(new OciLayoutSource(c.boxDir), '', { cacheDir: join(c.base, 'cache') });
  const r = await runPlanIsolated(await planRun(unpacked, opts), { stdio: 'pipe' });
  await assertBoxRunsAlikeInEngines(c.boxDir, opts, r);
  return r;
}

function boxOf(c: Converted) {
  assert.equal(c.result.kind, 'box', c.result.kind === 'unconvertible' ? c.result.reason : '');
  if (c.result.kind !== 'box') throw new Error('unreachable');
  return c.result.box;
}

describe('convert and run', () => {
  test('WASI app: file from the image, env from the config, WorkingDir, Cmd, exit status', async () => {
    const c = await convertFixture(wasiAppImage());
    const box = boxOf(c);
    const config = JSON.parse(box.config.bytes.toString('utf8')) as { os: string; architecture: string; config: { Labels: Record<string, string> } };
    assert.equal(config.os, 'wasip1');
    assert.equal(config.architecture, 'wasm');
    assert.equal(config.config.Labels[LABEL_STRATEGY], 'wasi-module');
    assert.equal(config.config.Labels[LABEL_RUNNER], 'wasi');
    assert.equal(config.config.Labels[LABEL_SOURCE_DIGEST], c.result.report.source.digest);
    const r = await runBoxDir(c);
    assert.equal(
      r.stdout,
      expectedHelloOutput({
        args: ['/app/hello.wasm', 'cat:message.txt', 'env:GREETING_NAME', 'exit:7'],
        cwd: '/work',
        name: 'Box',
        extra: ['message.txt: relative read works', 'GREETING_NAME=Box'],
      }),
    );
    assert.equal(r.stderr, '');
    assert.equal(r.exitCode, 7);
    const replaced = await runBoxDir(c, { args: ['exit:0'], env: ['GREETING_NAME=cli'] });
    assert.match(replaced.stdout, /^name: cli$/m);
    assert.equal(replaced.exitCode, 0);
  });

  test('converting twice gives byte-identical Boxes', async () => {
    for (const spec of [wasiAppImage(), rubyAppImage(), wasmtimeWrappedImage()]) {
      const first = await convertFixture(spec);
      // The same layout again, with a fresh work directory (the layout path is part of the Box's base.name).
      const again = await convertImage(new OciLayoutSource(join(first.base, 'image')), '', { workDir: join(first.base, 'work2'), runtimes });
      const a = boxOf(first);
      assert.equal(again.kind, 'box');
      if (again.kind !== 'box') return;
      assert.equal(again.box.manifest.digest, a.manifest.digest);
      assert.equal(again.box.config.digest, a.config.digest);
      assert.deepEqual(again.box.layers.map((l) => l.descriptor.digest), a.layers.map((l) => l.descriptor.digest));
    }
    // From another copy of the image, only the manifest's base.name annotation differs.
    const a = boxOf(await convertFixture(wasiAppImage()));
    const b = boxOf(await convertFixture(wasiAppImage()));
    assert.equal(a.config.digest, b.config.digest);
    assert.deepEqual(a.layers.map((l) => l.descriptor.digest), b.layers.map((l) => l.descriptor.digest));
  });

  test('wasmtime-wrapped module: the runtime is dropped, its --dir/--env become Box config', async () => {
    const c = await convertFixture(wasmtimeWrappedImage());
    const box = boxOf(c);
    const config = JSON.parse(box.config.bytes.toString('utf8')) as { config: { Entrypoint: string[]; Labels: Record<string, string> } };
    assert.deepEqual(config.config.Entrypoint, ['/app/hello.wasm']);
    assert.equal(config.config.Labels[LABEL_STRATEGY], 'wasm-runtime-wrapper');
    assert.ok(config.config.Labels[LABEL_DIRS]);
    const r = await runBoxDir(c);
    assert.equal(
      r.stdout,
      expectedHelloOutput({
        args: ['/app/hello.wasm', 'cat:/data/input.txt', 'cat:/static/index.html', 'env:X', 'env:HIDDEN'],
        cwd: '/',
        name: 'Wrapped',
        extra: ['/data/input.txt: data dir content', '/static/index.html: <h1>static</h1>', 'X=1', 'HIDDEN=(unset)'],
      }),
    );
    assert.equal(r.exitCode, 0);
  });

  test('Ruby app prints its real output through ruby.wasm', async () => {
    const c = await convertFixture(rubyAppImage());
    const box = boxOf(c);
    const config = JSON.parse(box.config.bytes.toString('utf8')) as { config: { Labels: Record<string, string> } };
    assert.equal(config.config.Labels[LABEL_RUNNER], 'ruby.wasm');
    const r = await runBoxDir(c, { args: ['/app/main.rb', 'hello world', 'exit:4'] });
    assert.equal(r.stderr, '');
    assert.equal(
      r.stdout,
      ['Hello, Rubyist!', 'ruby 3.3.3', 'program /app/main.rb', 'argv ["hello world", "exit:4"]', 'cwd /app', 'data from the working dir', ''].join('\n'),
    );
    assert.equal(r.exitCode, 4);
  });

  test('native ELF server is refused with a reason', async () => {
    const c = await convertFixture(nativeServerImage());
    assert.equal(c.result.kind, 'unconvertible');
    if (c.result.kind !== 'unconvertible') return;
    assert.match(c.result.reason, /\/usr\/sbin\/nginx is an x86-64 ELF executable/);
    assert.match(c.result.reason, /no Wasm build/);
    assert.equal(c.result.report.unconvertible, c.result.reason);
  });

  test('multi-arch index: the linux/amd64 image is converted', async () => {
    const { spec, layout } = multiArch();
    const c = await convertFixture(spec, layout);
    assert.equal(c.result.report.source.platform, 'linux/amd64');
    const r = await runBoxDir(c);
    assert.match(r.stdout, /^greeting: Hello from amd64$/m);
    assert.equal(r.exitCode, 7);
  });

  test('Docker schema2 media types', async () => {
    const c = await convertFixture(wasiAppImage(), {}, toDockerMediaTypes);
    const manifest = JSON.parse(await readFile(join(c.base, 'image', 'index.json'), 'utf8')) as { manifests: Array<{ mediaType: string }> };
    assert.equal(manifest.manifests[0]?.mediaType, 'application/vnd.docker.distribution.manifest.v2+json');
    const r = await runBoxDir(c);
    assert.match(r.stdout, /^message.txt: relative read works$/m);
    assert.equal(r.exitCode, 7);
  });

  test('files deleted by whiteouts are absent from the Box', async () => {
    const c = await convertFixture(whiteoutImage());
    const r = await runBoxDir(c);
    assert.match(r.stdout, /^\/etc\/secret: cat \/etc\/secret: No such file or directory$/m);
    assert.match(r.stdout, /^\/var\/cache\/old: cat \/var\/cache\/old: No such file or directory$/m);
    assert.match(r.stdout, /^\/var\/cache\/new: new$/m);
  });
});
