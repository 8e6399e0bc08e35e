import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { list, type ReadEntry } from 'tar';
import { RUBY_WASM_BOX_PATH } from '../../src/convert/strategies/ruby.js';
import { convertImage, writeBoxToOciLayout, type ConvertOptions, type ConvertResult } from '../../src/convert/pipeline.js';
import { NpmRuntimeCatalog } from '../../src/runtimes/npm-ruby.js';
import { pickGzip, ZLIB_LEVEL, zlibCodec } from '../../src/convert/gzip/index.js';
import { skipUnlessTools } from '../helpers/proc.js';
import { OciLayoutSource } from '../../src/image/oci-layout.js';
import type { ImageConfig, ImageManifest } from '../../src/oci/types.js';
import { sha256 } from '../../src/oci/digest.js';
import { dir, elf, fakeRuntimes, file, hardlink, noRuntimes, symlink, tempDir, writeLayout, wasmModule, type ImageSpec, type LayoutOptions } from './helpers.js';

let root: string;
let cleanup: () => Promise<void>;
let n = 0;
before(async () => {
  ({ path: root, cleanup } = await tempDir());
});
after(async () => cleanup());

const ELF_DYN = elf({ interpreter: '/lib64/ld-linux-x86-64.so.2' });

async function convert(spec: ImageSpec, opts: Partial<ConvertOptions> = {}, layout: LayoutOptions = {}, reference = ''): Promise<ConvertResult> {
  const base = join(root, `p${++n}`);
  await writeLayout(join(base, 'layout'), spec, layout);
  return convertImage(new OciLayoutSource(join(base, 'layout')), reference, { workDir: join(base, 'work'), runtimes: noRuntimes, ...opts });
}

type TarEntryInfo = { type: string; mode: number; mtime: number; uid: number; gid: number; uname: string; linkpath: string; data: string };

async function readLayer(path: string): Promise<Map<string, TarEntryInfo>> {
  const out = new Map<string, TarEntryInfo>();
  const order: string[] = [];
  await list({
    file: path,
    onReadEntry: (e: ReadEntry) => {
      const chunks: Buffer[] = [];
      e.on('data', (c: Buffer) => chunks.push(c));
      e.on('end', () => {
        order.push(e.path);
        out.set(e.path, {
          type: e.type,
          mode: e.mode ?? 0,
          mtime: e.mtime?.getTime() ?? -1,
          uid: e.uid ?? -1,
          gid: e.gid ?? -1,
          uname: e.uname ?? '',
          linkpath: e.linkpath ?? '',
          data: Buffer.concat(chunks).toString('latin1'),
        });
      });
    },
  });
  assert.deepEqual(order, [...order].sort(), 'entries are sorted');
  return out;
}

function boxOf(r: ConvertResult) {
  if (r.kind !== 'box') throw new Error(`expected a Box, got: ${r.reason}`);
  const manifest = JSON.parse(r.box.manifest.bytes.toString()) as ImageManifest;
  const config = JSON.parse(r.box.config.bytes.toString()) as ImageConfig;
  return { ...r, manifest, config };
}

const hello = wasmModule();
const helloImage: ImageSpec = {
  created: '2024-05-06T07:08:09.123Z',
  config: {
    Env: ['PATH=/usr/local/bin:/usr/bin:/bin', 'GREETING=hello from the image'],
    Cmd: ['/app/hello.wasm', 'world'],
    WorkingDir: '/app',
    User: '1000',
    ExposedPorts: { '8080/tcp': {} },
    Labels: { 'org.example': 'yes' },
  },
  layers: [
    {
      entries: [
        dir('usr/bin'),
        file('usr/bin/busybox', ELF_DYN, 0o755),
        hardlink('usr/bin/ls', 'usr/bin/busybox'),
        file('usr/lib/libc.so.6', elf({ type: 3 })),
        dir('var/lib/dpkg'),
        file('var/lib/dpkg/status', 'Package: x\n'),
        file('usr/share/doc/x/copyright', 'text'),
        file('etc/old', 'old'),
        { path: 'dev/null', type: 'CharacterDevice', devmaj: 1, devmin: 3 },
      ],
    },
    {
      entries: [
        dir('app'),
        file('app/hello.wasm', hello, 0o755),
        file('app/data.txt', 'data in the image\n'),
        hardlink('app/data-link.txt', 'app/data.txt'),
        symlink('app/abs', '/app/data.txt'),
        symlink('app/rel', 'data.txt'),
        symlink('app/escape', '../../../../etc/passwd'),
        file('etc/.wh.old', ''),
      ],
    },
  ],
};

describe('convertImage', () => {
  test('wasi-module: a deterministic Box with the image config, module layer and filtered rootfs', async () => {
    const r = boxOf(await convert(helloImage));
    assert.equal(r.report.chosen, 'wasi-module');
    const { manifest, config } = r;
    assert.equal(manifest.mediaType, 'application/vnd.oci.image.manifest.v1+json');
    assert.equal(manifest.config.mediaType, 'application/vnd.oci.image.config.v1+json');
    assert.equal(config.os, 'wasip1');
    assert.equal(config.architecture, 'wasm');
    assert.deepEqual(config.config?.Entrypoint, ['/app/hello.wasm']);
    assert.deepEqual(config.config?.Cmd, ['world']);
    assert.deepEqual(config.config?.Env, ['PATH=/usr/local/bin:/usr/bin:/bin', 'GREETING=hello from the image']);
    assert.equal(config.config?.WorkingDir, '/app');
    assert.equal(config.config?.User, '1000');
    assert.deepEqual(config.config?.ExposedPorts, { '8080/tcp': {} });
    const labels = config.config?.Labels ?? {};
    assert.equal(labels['org.example'], 'yes');
    assert.equal(labels['dev.boxproxy.strategy'], 'wasi-module');
    assert.equal(labels['dev.boxproxy.runner'], 'wasi');
    assert.equal(labels['dev.boxproxy.source.digest'], r.report.source.digest);
    assert.ok(labels['dev.boxproxy.converter.version']);
    // Which gzip wrote the layers: the bytes depend on it.
    assert.equal(labels['dev.boxproxy.converter.gzip'], (await pickGzip()).name);
    assert.equal(r.report.gzip, labels['dev.boxproxy.converter.gzip']);
    assert.equal(manifest.subject?.digest, r.report.source.digest);
    assert.equal(manifest.annotations?.['org.opencontainers.image.base.digest'], r.report.source.digest);
    assert.match(manifest.annotations?.['org.opencontainers.image.base.name'] ?? '', /^oci-layout:/);
    assert.equal(manifest.annotations?.['dev.boxproxy.strategy'], 'wasi-module');
    assert.deepEqual(manifest.layers.map((l) => l.annotations?.['org.opencontainers.image.title']), ['box-module.tar.gz', 'box-rootfs.tar.gz']);
    assert.equal(config.rootfs.diff_ids.length, 2);

    const [moduleLayer, rootfsLayer] = r.box.layers;
    assert.ok(moduleLayer && rootfsLayer);
    for (const l of r.box.layers) {
      const bytes = await readFile(l.path);
      assert.equal(sha256(bytes), l.descriptor.digest);
      assert.equal(bytes.length, l.descriptor.size);
      // gzip header: magic, deflate, no flags (no name), mtime 0.
      assert.deepEqual([...bytes.subarray(0, 8)], [0x1f, 0x8b, 8, 0, 0, 0, 0, 0]);
    }
    const mod = await readLayer(moduleLayer.path);
    assert.deepEqual([...mod.keys()], ['app/', 'app/hello.wasm']);
    assert.equal(mod.get('app/hello.wasm')?.data, hello.toString('latin1'));
    const fs = await readLayer(rootfsLayer.path);
    const mtime = Math.floor(Date.parse('2024-05-06T07:08:09Z') / 1000) * 1000;
    for (const [path, e] of fs) {
      assert.equal(e.mtime, mtime, path);
      assert.equal(e.uid, 0);
      assert.equal(e.gid, 0);
      assert.equal(e.uname, '');
    }
    // Hard links: the first path in tar order carries the bytes, the other links to it.
    assert.equal(fs.get('app/data-link.txt')?.data, 'data in the image\n');
    assert.equal(fs.get('app/data.txt')?.type, 'Link');
    assert.equal(fs.get('app/data.txt')?.linkpath, 'app/data-link.txt');
    assert.equal(fs.get('app/abs')?.linkpath, 'data.txt', 'absolute symlink made relative');
    assert.equal(fs.get('app/rel')?.linkpath, 'data.txt');
    assert.equal(fs.get('app/escape')?.linkpath, '../etc/passwd', 'escaping symlink clamped at the root');
    for (const gone of ['app/hello.wasm', 'usr/bin/busybox', 'usr/bin/ls', 'usr/lib/libc.so.6', 'var/lib/dpkg/status', 'usr/share/doc/x/copyright', 'etc/old', 'dev/null']) {
      assert.ok(!fs.has(gone), gone);
    }
    const dropped = Object.fromEntries(r.report.dropped.map((d) => [d.reason, d.files]));
    assert.equal(dropped['native code (ELF executable or library)'], 3, 'busybox, its hard link ls, libc');
    assert.equal(dropped['package-manager database'], 1);
    assert.equal(dropped['documentation'], 1);
    assert.ok(r.report.skipped.some((s) => s.path === 'dev/null' && /device node/.test(s.reason)));
    assert.deepEqual(Object.keys(r.report.timings), ['resolve', 'flatten', 'detect', 'plan', 'assemble']);
    assert.deepEqual(r.report.strategies.map((s) => s.verdict), ['chosen', 'not tried', 'not tried', 'not tried', 'not tried', 'not tried']);

    // Determinism: the same source converted again (another work dir) gives the same bytes...
    const layoutDir = join(root, `p${n}`, 'layout');
    const same = boxOf(await convertImage(new OciLayoutSource(layoutDir), '', { workDir: join(root, 'again-work'), runtimes: noRuntimes }));
    assert.equal(same.box.manifest.digest, r.box.manifest.digest);
    assert.deepEqual(same.box.layers.map((l) => l.descriptor.digest), r.box.layers.map((l) => l.descriptor.digest));
    // ...and a copy of it elsewhere differs only by the base.name annotation (where it came from).
    const again = boxOf(await convert(helloImage));
    assert.deepEqual(again.box.layers.map((l) => l.descriptor.digest), r.box.layers.map((l) => l.descriptor.digest));
    assert.equal(again.box.config.digest, r.box.config.digest);
  });

  test('writeBoxToOciLayout writes a layout that converts... and reads back', async () => {
    const r = boxOf(await convert(helloImage));
    const out = join(root, 'out-layout');
    await writeBoxToOciLayout(r.box, out, 'box');
    const source = new OciLayoutSource(out);
    const m = await source.getManifest('box');
    assert.equal(m.digest, r.box.manifest.digest);
    const index = JSON.parse(await readFile(join(out, 'index.json'), 'utf8')) as { manifests: Array<{ platform?: unknown }> };
    assert.deepEqual(index.manifests[0]?.platform, { os: 'wasip1', architecture: 'wasm' });
    // Converting a Box again works too: it is a wasi module image.
    const again = await convertImage(source, 'box', { workDir: join(root, 'again'), runtimes: noRuntimes });
    assert.equal(again.kind, 'box');
  });

  test('wasm-runtime-wrapper: wasmtime unwrapped, flags become config', async () => {
    const r = boxOf(
      await convert({
        config: {
          Env: ['PATH=/usr/local/bin:/usr/bin', 'GREETING=hi', 'OTHER=not passed'],
          Entrypoint: ['wasmtime', 'run', '--dir', '/data', '--dir', '/srv/files::/files', '--env', 'GREETING', '--env', 'MODE=wrapped', '/app/app.wasm', 'fixed'],
          Cmd: ['replaceable'],
        },
        layers: [{ entries: [file('usr/local/bin/wasmtime', ELF_DYN, 0o755), file('app/app.wasm', hello), file('srv/files/x', 'x'), dir('data')] }],
      }),
    );
    assert.equal(r.report.chosen, 'wasm-runtime-wrapper');
    assert.deepEqual(r.config.config?.Entrypoint, ['/app/app.wasm', 'fixed']);
    assert.deepEqual(r.config.config?.Cmd, ['replaceable']);
    assert.deepEqual(r.config.config?.Env, ['GREETING=hi', 'MODE=wrapped']);
    assert.equal(r.config.config?.Labels?.['dev.boxproxy.dirs'], JSON.stringify([{ guest: '/files', path: '/srv/files' }]));
    const fs = await readLayer(r.box.layers[1]?.path ?? '');
    assert.ok(!fs.has('usr/local/bin/wasmtime'));
    assert.ok(fs.has('data/'));
  });

  test('ruby: ruby.wasm from the installed package closest to the image Ruby', async () => {
    const catalog = new NpmRuntimeCatalog();
    const r = boxOf(
      await convert(
        {
          config: { Env: ['PATH=/usr/local/bin:/usr/bin', 'RUBY_VERSION=3.3.5'], Cmd: ['ruby', '/app/main.rb'], WorkingDir: '/app' },
          layers: [
            {
              entries: [
                file('usr/local/bin/ruby', ELF_DYN, 0o755),
                file('usr/local/lib/ruby/gems/3.3.0/gems/json-2.7/lib/json/ext/parser.so', elf({ type: 3 })),
                file('app/main.rb', 'puts "hi"\n'),
              ],
            },
          ],
        },
        { runtimes: catalog },
      ),
    );
    assert.equal(r.report.chosen, 'ruby');
    assert.deepEqual(r.config.config?.Entrypoint, [RUBY_WASM_BOX_PATH]);
    assert.deepEqual(r.config.config?.Cmd, ['/app/main.rb']);
    const labels = r.config.config?.Labels ?? {};
    assert.equal(labels['dev.boxproxy.runner'], 'ruby.wasm');
    assert.equal(labels['dev.boxproxy.runtime'], 'ruby@3.3');
    assert.ok(r.report.notes.some((x) => /native extension/.test(x)));
    const mod = await readLayer(r.box.layers[0]?.path ?? '');
    const wasm = await readFile((await catalog.ruby('3.3'))?.wasmPath ?? '');
    assert.equal(mod.get(RUBY_WASM_BOX_PATH.slice(1))?.data.length, wasm.length);
    assert.deepEqual([...mod.keys()], ['.boxproxy/', '.boxproxy/runtime/', '.boxproxy/runtime/ruby.wasm']);
  });

  test('ruby via shebang, and the refusal when no runtime is installed', async () => {
    const spec: ImageSpec = {
      config: { Env: ['PATH=/usr/bin'], Entrypoint: ['/app/run'], Cmd: ['--verbose'] },
      layers: [{ entries: [file('usr/bin/ruby3.1', ELF_DYN, 0o755), symlink('usr/bin/ruby', 'ruby3.1'), file('app/run', '#!/usr/bin/env ruby\nputs 1\n', 0o755)] }],
    };
    const box = join(root, 'fake-ruby.wasm');
    await writeFile(box, wasmModule());
    const r = boxOf(await convert(spec, { runtimes: fakeRuntimes(box, '3.3') }));
    assert.deepEqual(r.config.config?.Entrypoint, [RUBY_WASM_BOX_PATH, '/app/run']);
    assert.deepEqual(r.config.config?.Cmd, ['--verbose']);
    const none = await convert(spec);
    assert.equal(none.kind, 'unconvertible');
    assert.match(none.kind === 'unconvertible' ? none.reason : '', /no ruby\.wasm runtime is installed.*Ruby 3\.1/);
  });

  test('native: a precise refusal reason', async () => {
    const r = await convert({
      config: { Env: ['PATH=/usr/local/sbin:/usr/sbin:/usr/bin'], Entrypoint: ['nginx'], Cmd: ['-g', 'daemon off;'] },
      layers: [{ entries: [file('usr/sbin/nginx', ELF_DYN, 0o755)] }],
    });
    assert.equal(r.kind, 'unconvertible');
    assert.equal(r.kind === 'unconvertible' && r.reason, '/usr/sbin/nginx is an x86-64 ELF executable (dynamically linked); no Wasm build of it is known');
    assert.deepEqual(r.report.strategies.map((s) => s.verdict), ['declined', 'declined', 'declined', 'declined', 'declined', 'declined']);
    assert.equal(r.report.unconvertible, r.kind === 'unconvertible' ? r.reason : '');
    const script = await convert({
      config: { Cmd: ['/app/start.pl'] },
      layers: [{ entries: [file('app/start.pl', '#!/usr/bin/env perl\n', 0o755)] }],
    });
    assert.equal(script.kind === 'unconvertible' && script.reason, '/app/start.pl is a script for /usr/bin/env perl; no Wasm build of perl is known');
    const shell = await convert({ config: { Cmd: ['/bin/sh', '-c', 'nginx | tee log'] }, layers: [{ entries: [file('bin/sh', ELF_DYN, 0o755)] }] });
    assert.match(shell.kind === 'unconvertible' ? shell.reason : '', /shell script.*pipe/);
  });

  test('multi-arch index: linux/amd64 preferred, platforms option honoured', async () => {
    const arm: ImageSpec = { config: { Cmd: ['/app/hello.wasm', 'arm'] }, layers: [{ entries: [file('app/hello.wasm', hello)] }] };
    const layoutOpts: LayoutOptions = { tag: 'multi', extraPlatforms: [{ os: 'linux', architecture: 'arm64', spec: arm }] };
    const amd: ImageSpec = { config: { Cmd: ['/app/hello.wasm', 'amd'] }, layers: [{ entries: [file('app/hello.wasm', hello)] }] };
    const r = boxOf(await convert(amd, {}, layoutOpts, 'multi'));
    assert.deepEqual(r.config.config?.Cmd, ['amd']);
    assert.equal(r.report.source.platform, 'linux/amd64');
    assert.ok(r.report.source.indexDigest);
    const a = boxOf(await convert(amd, { platforms: ['linux/arm64'] }, layoutOpts, 'multi'));
    assert.deepEqual(a.config.config?.Cmd, ['arm']);
    const none = await convert(amd, { platforms: ['linux/s390x'] }, { tag: 'x', extraPlatforms: [] }, 'x');
    assert.equal(none.kind, 'box', 'falls back to the first entry');
  });

  test('hostile layers: skipped entries are reported, bombs make the image unconvertible', async () => {
    const r = boxOf(
      await convert({
        config: { Cmd: ['/app/hello.wasm'] },
        layers: [{ entries: [file('app/hello.wasm', hello), file('../../escape', 'x'), symlink('app/out', '/../../etc')] }],
      }),
    );
    assert.ok(r.report.skipped.some((s) => s.path === '../../escape'));
    const over = await convert({ config: { Cmd: ['/app/hello.wasm'] }, layers: [{ entries: [file('app/hello.wasm', hello), file('big', Buffer.alloc(10_000))] }] }, { limits: { maxFileBytes: 5000 } });
    assert.equal(over.kind, 'unconvertible');
    assert.match(over.kind === 'unconvertible' ? over.reason : '', /maxFileBytes/);
    assert.ok(over.report.skipped.some((s) => /maxFileBytes/.test(s.reason)));
  });

  test('the gzip changes the layer bytes, never the tars: igzip and zlib Boxes have the same diff_ids', { skip: skipUnlessTools('igzip') }, async () => {
    const spec: ImageSpec = {
      config: { Cmd: ['/app/hello.wasm'] },
      layers: [{ entries: [dir('app'), file('app/hello.wasm', hello, 0o755), file('app/data.txt', 'some text\n'.repeat(5000))] }],
    };
    const viaIgzip = boxOf(await convert(spec, { gzip: await pickGzip('igzip') }));
    const viaZlib = boxOf(await convert(spec, { gzip: zlibCodec(ZLIB_LEVEL) }));
    assert.deepEqual(viaIgzip.config.rootfs.diff_ids, viaZlib.config.rootfs.diff_ids);
    assert.notEqual(viaIgzip.manifest.layers[1]?.digest, viaZlib.manifest.layers[1]?.digest);
    assert.match(viaIgzip.config.config?.Labels?.['dev.boxproxy.converter.gzip'] ?? '', /^igzip /);
    assert.match(viaZlib.config.config?.Labels?.['dev.boxproxy.converter.gzip'] ?? '', /^zlib /);
  });

  test('big and many files come back from the scratch packs intact, in tar order and against it', async () => {
    const noise = (n: number, seed: number): Buffer => {
      const out = Buffer.alloc(n);
      let x = seed;
      for (let i = 0; i < n; i++) out[i] = (x = (x * 1103515245 + 12345) >>> 0) >>> 24;
      return out;
    };
    const body = (i: number): string => `file ${i}\n`.repeat(i * 7);
    // Layer 1 in sorted order, layer 2 in reverse: the Box reads the second pack backwards, across its windows.
    const entries = [dir('app'), file('app/hello.wasm', hello, 0o755), dir('data')];
    for (let i = 0; i < 300; i++) entries.push(file(`data/f${String(i).padStart(3, '0')}`, body(i)));
    entries.push(file('data/big.bin', noise(3 * 1024 * 1024 + 5, 1)), file('data/mid.txt', 'middle sized\n'.repeat(40_000)));
    const reversed = [dir('more')];
    for (let i = 399; i >= 0; i--) reversed.push(file(`more/g${String(i).padStart(3, '0')}`, body(i + 1)));
    const spec: ImageSpec = { config: { Cmd: ['/app/hello.wasm'] }, layers: [{ entries }, { entries: [file('data/f001', 'replaced'), ...reversed] }] };
    const { box } = boxOf(await convert(spec));
    const rootfs = await readLayer((box.layers[1] as { path: string }).path);
    assert.equal(rootfs.get('data/f001')?.data, 'replaced');
    for (const i of [0, 2, 150, 299]) assert.equal(rootfs.get(`data/f${String(i).padStart(3, '0')}`)?.data, body(i));
    for (let i = 0; i < 400; i++) assert.equal(rootfs.get(`more/g${String(i).padStart(3, '0')}`)?.data, body(i + 1), `more/g${i}`);
    assert.equal(rootfs.get('data/big.bin')?.data, noise(3 * 1024 * 1024 + 5, 1).toString('latin1'));
    assert.equal(rootfs.get('data/mid.txt')?.data.length, 'middle sized\n'.length * 40_000);
  });
});
