import assert from 'node:assert/strict';
import { lstat, readdir, readFile, readlink, realpath, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { BoxError, readBoxLayout, unpackBox } from '../../src/box/layout.js';
import { containedSymlinkTarget } from '../../src/oci/rootfs.js';
import { LABEL_RUNNER, RUNNER_WASI } from '../../src/box/format.js';
import { hexOf } from '../../src/oci/digest.js';
import type { ImageManifest } from '../../src/oci/types.js';
import { dir, file, hardlink, listTree, symlink, tempDir, type Entry } from '../convert/helpers.js';
import { helloBox, wasiAppImage, writeLayout } from '../fixtures/images.js';

let root: string;
let cleanup: () => Promise<void>;
let n = 0;
before(async () => {
  ({ path: root, cleanup } = await tempDir('boxproxy-box-'));
});
after(async () => cleanup());

/** A fresh directory holding `layout/` and `cache/`. */
async function boxLayout(spec = helloBox(), opts: Parameters<typeof writeLayout>[2] = {}): Promise<{ base: string; layout: string; cache: string }> {
  const base = join(root, `b${++n}`);
  await writeLayout(join(base, 'layout'), spec, opts);
  return { base, layout: join(base, 'layout'), cache: join(base, 'cache') };
}

describe('reading a Box from an OCI layout', () => {
  test('reads manifest and config of the only image', async () => {
    const { layout } = await boxLayout();
    const { box } = await readBoxLayout(layout);
    assert.equal(box.config.os, 'wasip1');
    assert.equal(box.config.architecture, 'wasm');
    assert.deepEqual(box.config.config?.Entrypoint, ['/app/hello.wasm']);
    assert.equal(box.runner, RUNNER_WASI);
    assert.equal(box.manifest.layers.length, 2);
    assert.match(box.manifestDigest, /^sha256:[0-9a-f]{64}$/);
  });

  test('picks the wasip1/wasm entry of an index', async () => {
    const { layout } = await boxLayout(helloBox(), {
      extraPlatforms: [{ os: 'linux', architecture: 'amd64', spec: wasiAppImage() }],
    });
    const index = JSON.parse(await readFile(join(layout, 'index.json'), 'utf8')) as { manifests: Array<{ mediaType: string }> };
    assert.match(index.manifests[0]?.mediaType ?? '', /index/);
    const { box } = await readBoxLayout(layout);
    assert.equal(box.config.os, 'wasip1');
  });

  test('an index without a Box names its platforms and says to convert', async () => {
    const { layout } = await boxLayout(wasiAppImage(), { extraPlatforms: [{ os: 'linux', architecture: 'arm64', spec: wasiAppImage() }] });
    await assert.rejects(readBoxLayout(layout), (err: Error) => err instanceof BoxError && /linux\/arm64, linux\/amd64/.test(err.message) && /convert/.test(err.message));
  });

  test('a linux image is not a Box', async () => {
    const { layout } = await boxLayout(wasiAppImage());
    await assert.rejects(readBoxLayout(layout), (err: Error) => err instanceof BoxError && /linux\/amd64 image, not a Box/.test(err.message));
  });

  test('an unknown runner label is refused', async () => {
    const spec = helloBox({ config: { Labels: { [LABEL_RUNNER]: 'python.wasm' } } });
    const { layout } = await boxLayout(spec);
    await assert.rejects(readBoxLayout(layout), /needs runner "python.wasm"/);
  });

  test('a tag selects among several images', async () => {
    const { layout } = await boxLayout(helloBox(), { tag: 'v1' });
    const { box } = await readBoxLayout(layout, 'v1');
    assert.equal(box.config.os, 'wasip1');
    await assert.rejects(readBoxLayout(layout, 'v2'), /no image tagged "v2"/);
  });
});

describe('unpacking a Box', () => {
  test('layers land in order in a cache entry keyed by manifest digest, reused later', async () => {
    const { layout, cache } = await boxLayout(helloBox({ extraLayers: [{ entries: [dir('etc/'), file('etc/greeting', 'overridden\n')] }] }));
    const { source, box } = await readBoxLayout(layout);
    const first = await unpackBox(source, box, { cacheDir: cache });
    assert.equal(first.reused, false);
    assert.equal(first.rootfs, join(cache, hexOf(box.manifestDigest), 'rootfs'));
    assert.equal(await readFile(join(first.rootfs, 'etc/greeting'), 'utf8'), 'overridden\n');
    assert.equal((await stat(join(first.rootfs, 'app/hello.wasm'))).size > 1000, true);
    const second = await unpackBox(source, box, { cacheDir: cache });
    assert.equal(second.reused, true);
    assert.equal(second.rootfs, first.rootfs);
    assert.deepEqual(await readdir(cache), [hexOf(box.manifestDigest)], 'no temporary directories left');
  });

  test('whiteouts and opaque directories remove what lower layers had', async () => {
    const { layout, cache } = await boxLayout(
      helloBox({
        extraLayers: [
          { entries: [dir('etc/'), file('etc/secret', 's'), dir('var/'), dir('var/cache/'), file('var/cache/old', 'o'), dir('var/cache/sub/'), file('var/cache/sub/deep', 'd')] },
          { entries: [dir('etc/'), file('etc/.wh.secret', ''), dir('var/cache/'), file('var/cache/new', 'n'), file('var/cache/.wh..wh..opq', '')] },
        ],
      }),
    );
    const { source, box } = await readBoxLayout(layout);
    const { rootfs } = await unpackBox(source, box, { cacheDir: cache });
    const tree = await listTree(rootfs);
    assert.ok(!tree.includes('etc/secret'));
    assert.ok(!tree.some((p) => p.includes('.wh.')));
    assert.deepEqual(tree.filter((p) => p.startsWith('var/cache/')), ['var/cache/new']);
    assert.ok(tree.includes('etc/greeting'));
  });

  test('a blob that does not match its digest fails the unpack and leaves no cache entry', async () => {
    const { layout, cache } = await boxLayout();
    const { source, box } = await readBoxLayout(layout);
    const layerPath = join(layout, 'blobs', 'sha256', hexOf((box.manifest as ImageManifest).layers[1]?.digest ?? ''));
    const bytes = await readFile(layerPath);
    bytes.writeUInt8(bytes.readUInt8(bytes.length - 1) ^ 0xff, bytes.length - 1); // the gzip trailer
    await writeFile(layerPath, bytes);
    await assert.rejects(unpackBox(source, box, { cacheDir: cache }));
    assert.deepEqual(await readdir(cache), []);
  });

  test('hostile entries never leave the rootfs', async () => {
    const hostile: Entry[] = [
      dir('ok/'),
      file('ok/file', 'fine'),
      file('../escaped-parent', 'x'),
      file('ok/../../escaped-deep', 'x'),
      file('/abs-path', 'x'),
      symlink('esc', '../../../../../etc'),
      file('esc/passwd', 'through the link'),
      symlink('abs-link', '/etc/greeting'),
      symlink('ok/up', '../../../..'),
      hardlink('hl', '../../outside'),
      { path: 'dev-null', type: 'CharacterDevice', mode: 0o666, devmaj: 1, devmin: 3 },
      { path: 'disk', type: 'BlockDevice', mode: 0o660, devmaj: 8, devmin: 0 },
      { path: 'fifo', type: 'FIFO', mode: 0o644 },
      file('suid', '#!/bin/sh\n', 0o4755),
    ];
    const { base, layout, cache } = await boxLayout(helloBox({ extraLayers: [{ entries: hostile }] }));
    const before = await listTree(base);
    const { source, box } = await readBoxLayout(layout);
    const { rootfs, notes } = await unpackBox(source, box, { cacheDir: cache });
    // Nothing appeared next to the cache (or anywhere under base) except the cache entry itself.
    const outside = (await listTree(base)).filter((p) => !p.startsWith('cache/') && p !== 'cache');
    assert.deepEqual(outside, before);
    const tree = await listTree(rootfs);
    for (const gone of ['escaped-parent', 'escaped-deep', 'abs-path', 'hl', 'dev-null', 'disk', 'fifo', 'esc/passwd']) {
      assert.ok(!tree.includes(gone), `${gone} is not in the rootfs`);
    }
    const realRoot = await realpath(rootfs);
    for (const link of ['esc', 'abs-link', 'ok/up']) {
      assert.ok((await lstat(join(rootfs, link))).isSymbolicLink(), `${link} is a symlink`);
      const target = await readlink(join(rootfs, link));
      const resolved = join(realRoot, link, '..', target);
      assert.ok(resolved === realRoot || resolved.startsWith(realRoot + '/'), `${link} -> ${target} resolves inside the rootfs`);
    }
    assert.equal(await readlink(join(rootfs, 'abs-link')), 'etc/greeting');
    assert.equal(await readFile(join(rootfs, 'abs-link'), 'utf8'), 'Hello from the image\n');
    assert.equal((await stat(join(rootfs, 'suid'))).mode & 0o7777, 0o755, 'setuid bit dropped');
    assert.ok(notes.some((m) => /CharacterDevice/.test(m)));
    assert.ok(notes.some((m) => /under the symlink esc/.test(m)));
  });

  test('entry limits abort the unpack', async () => {
    const { layout, cache } = await boxLayout();
    const { source, box } = await readBoxLayout(layout);
    await assert.rejects(unpackBox(source, box, { cacheDir: cache, limits: { maxEntries: 3 } }), (err: Error) => err instanceof BoxError && /unpack limits/.test(err.message));
    await assert.rejects(unpackBox(source, box, { cacheDir: cache, limits: { maxBytes: 1000 } }), /unpack limits/);
    assert.deepEqual(await readdir(cache), []);
  });

  test('symlinks in merged-/usr style chains are kept', async () => {
    const { layout, cache } = await boxLayout(
      helloBox({ extraLayers: [{ entries: [dir('usr/'), dir('usr/lib/'), file('usr/lib/libx', 'x'), symlink('lib', 'usr/lib'), symlink('libx-link', 'lib/libx')] }] }),
    );
    const { source, box } = await readBoxLayout(layout);
    const { rootfs } = await unpackBox(source, box, { cacheDir: cache });
    assert.equal(await readFile(join(rootfs, 'libx-link'), 'utf8'), 'x');
  });
});

describe('containedSymlinkTarget', () => {
  test('keeps relative targets that stay inside, rewrites the rest with chroot meaning', () => {
    assert.equal(containedSymlinkTarget('usr/bin/ruby', 'ruby3.3'), 'ruby3.3');
    assert.equal(containedSymlinkTarget('usr/bin/ruby', '../lib/x'), '../lib/x');
    assert.equal(containedSymlinkTarget('usr/bin/ruby', '/usr/local/bin/ruby'), '../local/bin/ruby');
    assert.equal(containedSymlinkTarget('esc', '../../etc'), 'etc');
    assert.equal(containedSymlinkTarget('a/b', '../../../x/y'), '../x/y');
    assert.equal(containedSymlinkTarget('root-link', '/'), '.');
  });
});
