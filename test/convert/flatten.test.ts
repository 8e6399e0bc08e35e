import assert from 'node:assert/strict';
import { mkdir, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { gzipSync } from 'node:zlib';
import { ConvertError } from '../../src/convert/errors.js';
import { flattenLayers, zstdDecompressor, type FlattenResult } from '../../src/convert/flatten.js';
import { resolveImage } from '../../src/convert/resolve.js';
import { OciLayoutSource } from '../../src/image/oci-layout.js';
import { readContent } from '../../src/convert/pack.js';
import type { VNode } from '../../src/convert/vfs.js';
import { dir, elf, file, hardlink, listTree, symlink, tarOf, tempDir, writeLayout, type ImageSpec } from './helpers.js';

let root: string;
let cleanup: () => Promise<void>;
let counter = 0;

before(async () => {
  ({ path: root, cleanup } = await tempDir());
});
after(async () => cleanup());

async function flatten(spec: ImageSpec, limits?: Parameters<typeof flattenLayers>[2]['limits']): Promise<{ result: FlattenResult; workDir: string; base: string }> {
  const base = join(root, `case-${++counter}`);
  const layout = join(base, 'layout');
  const workDir = join(base, 'work');
  await mkdir(workDir, { recursive: true });
  await writeLayout(layout, spec);
  const source = new OciLayoutSource(layout);
  const image = await resolveImage(source, '');
  const result = await flattenLayers(source, image.layers, { workDir, ...(limits ? { limits } : {}) });
  return { result, workDir, base };
}

async function text(node: VNode | undefined): Promise<string> {
  assert.equal(node?.type, 'file');
  if (node?.type !== 'file' || !node.inode.content) throw new Error('no content');
  return (await readContent(node.inode.content)).toString();
}

function get(r: FlattenResult, path: string): VNode | undefined {
  return r.fs.get(path.split('/').filter(Boolean));
}

describe('flatten', () => {
  test('later layers win; whiteouts delete; opaque dirs hide lower content but keep their own', async () => {
    const { result } = await flatten({
      layers: [
        { entries: [dir('etc'), file('etc/a', 'A1'), file('etc/gone', 'x'), dir('data'), file('data/old', 'o'), dir('data/sub'), file('data/sub/deep', 'd'), dir('tree'), file('tree/x', 'x')] },
        { entries: [file('etc/a', 'A2'), file('etc/.wh.gone', ''), file('data/new', 'n'), file('data/.wh..wh..opq', ''), file('.wh.tree', '')] },
      ],
    });
    assert.equal(await text(get(result, 'etc/a')), 'A2');
    assert.equal(get(result, 'etc/gone'), undefined);
    assert.equal(await text(get(result, 'data/new')), 'n', 'opaque marker after a same-layer entry keeps it');
    assert.equal(get(result, 'data/old'), undefined);
    assert.equal(get(result, 'data/sub'), undefined);
    assert.equal(get(result, 'tree'), undefined);
    assert.equal(get(result, 'etc/.wh.gone'), undefined, 'whiteout markers are not files');
  });

  test('hard links share content; symlink chains resolve inside the root', async () => {
    const { result } = await flatten({
      layers: [
        {
          entries: [
            dir('usr/bin'),
            file('usr/bin/real', 'payload', 0o755),
            hardlink('usr/bin/hard', 'usr/bin/real'),
            symlink('usr/bin/one', 'two'),
            symlink('usr/bin/two', '/usr/bin/real'),
            symlink('usr/bin/up', '../../../../../usr/bin/real'),
            symlink('loop1', 'loop2'),
            symlink('loop2', 'loop1'),
          ],
        },
      ],
    });
    const real = get(result, 'usr/bin/real');
    const hard = get(result, 'usr/bin/hard');
    assert.ok(real?.type === 'file' && hard?.type === 'file' && real.inode === hard.inode);
    const r1 = result.fs.resolve('/usr/bin/one');
    assert.ok(r1.ok);
    assert.equal(r1.path, '/usr/bin/real');
    const r2 = result.fs.resolve('/usr/bin/up');
    assert.ok(r2.ok && r2.path === '/usr/bin/real', '.. past the root stays at the root');
    const loop = result.fs.resolve('/loop1');
    assert.ok(!loop.ok && loop.error === 'symlink-loop');
  });

  test('path traversal, absolute paths and symlink escapes never write outside the work dir', async () => {
    const { result, base } = await flatten({
      layers: [
        {
          entries: [
            file('../../canary/escape1', 'bad'),
            file('a/../../canary/escape2', 'bad'),
            file('/abs/file', 'absolute ok'),
            symlink('evil', '/../../../canary'),
            file('evil/escape3', 'through symlink'),
            hardlink('hl', '../../../etc/passwd'),
          ],
        },
      ],
    });
    await mkdir(join(base, 'canary'), { recursive: true });
    assert.deepEqual(await listTree(join(base, 'canary')), []);
    assert.deepEqual(await listTree(base).then((all) => all.filter((p) => !p.startsWith('layout') && !p.startsWith('work'))), ['canary']);
    assert.equal(await text(get(result, 'abs/file')), 'absolute ok');
    // A file below a symlink replaces the symlink with a directory: the entry never follows it.
    assert.equal(await text(get(result, 'evil/escape3')), 'through symlink');
    const reasons = result.notes.map((n) => `${n.path}: ${n.reason}`);
    assert.ok(reasons.some((r) => r.startsWith('../../canary/escape1: path escapes')), reasons.join('\n'));
    assert.ok(reasons.some((r) => r.startsWith('a/../../canary/escape2: path escapes')));
    assert.ok(reasons.some((r) => r.startsWith('hl: hard link to ../../../etc/passwd escapes')));
    // Only the scratch pack exists in the work dir.
    assert.deepEqual(await listTree(join(base, 'work')), ['flatten', 'flatten/layer-0.pack']);
  });

  test('device nodes and FIFOs are skipped with a report line and hide lower files', async () => {
    const { result } = await flatten({
      layers: [
        { entries: [dir('dev'), file('dev/null', 'not a device')] },
        {
          entries: [
            { path: 'dev/null', type: 'CharacterDevice', devmaj: 1, devmin: 3, mode: 0o666 },
            { path: 'dev/sda', type: 'BlockDevice', devmaj: 8, devmin: 0 },
            { path: 'run/fifo', type: 'FIFO' },
          ],
        },
      ],
    });
    assert.equal(get(result, 'dev/null'), undefined);
    assert.equal(get(result, 'dev/sda'), undefined);
    assert.equal(get(result, 'run/fifo'), undefined);
    assert.deepEqual(
      result.notes.map((n) => `${n.path}: ${n.reason}`),
      ['dev/null: device node skipped', 'dev/sda: device node skipped', 'run/fifo: FIFO skipped'],
    );
  });

  test('ELF files and docs are indexed but their bytes are not kept', async () => {
    const big = elf({ interpreter: '/lib64/ld-linux-x86-64.so.2' });
    const { result, workDir } = await flatten({
      layers: [{ entries: [file('usr/bin/app', big, 0o755), file('usr/share/doc/x/README', 'doc'), file('app/data.txt', 'keep me')] }],
    });
    const app = get(result, 'usr/bin/app');
    assert.ok(app?.type === 'file');
    assert.equal(app.inode.kind.kind, 'elf');
    assert.equal(app.inode.content, undefined);
    assert.match(app.inode.dropped ?? '', /ELF/);
    const doc = get(result, 'usr/share/doc/x/README');
    assert.ok(doc?.type === 'file' && doc.inode.dropped === 'documentation');
    assert.equal(await text(get(result, 'app/data.txt')), 'keep me');
    assert.equal((await stat(join(workDir, 'flatten', 'layer-0.pack'))).size, 'keep me'.length);
  });

  test('uncompressed layers and gzip layers labelled as tar are read by their bytes', async () => {
    const { result } = await flatten({
      layers: [
        { entries: [file('plain', 'p')], compression: 'none' },
        { raw: gzipSync(tarOf([file('sniffed', 's')])), mediaType: 'application/vnd.oci.image.layer.v1.tar' },
      ],
    });
    assert.equal(await text(get(result, 'plain')), 'p');
    assert.equal(await text(get(result, 'sniffed')), 's');
  });

  test('entry and file-size limits refuse with a typed error', async () => {
    await assert.rejects(
      flatten({ layers: [{ entries: [file('a', '1'), file('b', '2'), file('c', '3')] }] }, { maxEntries: 2 }),
      (err: unknown) => err instanceof ConvertError && err.code === 'LIMIT_EXCEEDED' && err.refusal && /maxEntries/.test(err.message),
    );
    await assert.rejects(
      flatten({ layers: [{ entries: [file('big', Buffer.alloc(5000))] }] }, { maxFileBytes: 4096 }),
      (err: unknown) => err instanceof ConvertError && /maxFileBytes/.test(err.message),
    );
  });

  test('a gzip bomb (200 MB of zeros) is refused by ratio and by byte cap, with bounded memory', async () => {
    const size = 200 * 1024 * 1024;
    // Build the tar+gzip as a stream-friendly buffer: header + zeros compress to ~200 KB.
    const zlib = await import('node:zlib');
    const header = tarOf([file('zeros', '')]).subarray(0, 512);
    const { tarHeader } = await import('../../src/convert/tar-writer.js');
    const realHeader = tarHeader({ path: 'zeros', type: 'File', mode: 0o644, size, mtime: new Date(0) });
    assert.equal(header.length, 512);
    const gz = zlib.createGzip();
    const chunks: Buffer[] = [];
    gz.on('data', (c: Buffer) => chunks.push(c));
    const done = new Promise((r) => gz.on('end', r));
    gz.write(realHeader);
    const zero = Buffer.alloc(1024 * 1024);
    for (let i = 0; i < 200; i++) gz.write(zero);
    gz.end(Buffer.alloc(1024));
    await done;
    const bomb = Buffer.concat(chunks);
    assert.ok(bomb.length < 1024 * 1024);
    const rssBefore = process.memoryUsage().rss;
    await assert.rejects(
      flatten({ layers: [{ raw: bomb }] }),
      (err: unknown) => err instanceof ConvertError && err.code === 'LIMIT_EXCEEDED' && /maxRatio/.test(err.message),
    );
    await assert.rejects(
      flatten({ layers: [{ raw: bomb }] }, { maxRatio: 1e9, maxBytes: 50 * 1024 * 1024 }),
      (err: unknown) => err instanceof ConvertError && /maxBytes/.test(err.message),
    );
    const grown = process.memoryUsage().rss - rssBefore;
    assert.ok(grown < 150 * 1024 * 1024, `RSS grew by ${grown} bytes`);
  });

  test('zstd layers are handled when Node has zstd, else refused clearly', async () => {
    const tar = tarOf([file('z', 'zstd!')]);
    if (zstdDecompressor()) {
      const { result } = await flatten({ layers: [{ entries: [file('z', 'zstd!')], compression: 'zstd' }] });
      assert.equal(await text(get(result, 'z')), 'zstd!');
    } else {
      // Any bytes with the zstd magic: refused before decoding.
      const fake = Buffer.concat([Buffer.from([0x28, 0xb5, 0x2f, 0xfd]), tar]);
      await assert.rejects(
        flatten({ layers: [{ raw: fake, mediaType: 'application/vnd.oci.image.layer.v1.tar+zstd' }] }),
        (err: unknown) => err instanceof ConvertError && err.code === 'UNSUPPORTED_COMPRESSION' && /zstd/.test(err.message) && /Node/.test(err.message),
      );
    }
  });

  test('corrupt and doubly compressed layers are refused, not crashed on', async () => {
    await assert.rejects(
      flatten({ layers: [{ raw: Buffer.from([0x1f, 0x8b, 8, 0, 1, 2, 3, 4, 5, 6, 7]) }] }),
      (err: unknown) => err instanceof ConvertError && err.code === 'LAYER_CORRUPT',
    );
    await assert.rejects(
      flatten({ layers: [{ raw: gzipSync(gzipSync(tarOf([file('x', 'y')]))) }] }),
      (err: unknown) => err instanceof ConvertError && /compressed twice/.test(err.message),
    );
    await assert.rejects(
      flatten({ layers: [{ raw: gzipSync(Buffer.alloc(4096, 0x41)) }] }),
      (err: unknown) => err instanceof ConvertError && err.code === 'LAYER_CORRUPT',
    );
    const truncated = tarOf([file('t', Buffer.alloc(3000, 1))]).subarray(0, 1024);
    await assert.rejects(
      flatten({ layers: [{ raw: truncated, compression: 'none' }] }),
      (err: unknown) => err instanceof ConvertError && /truncated/.test(err.message),
    );
  });

  test('an empty layer (two zero blocks) is fine', async () => {
    const { result } = await flatten({ layers: [{ raw: gzipSync(Buffer.alloc(1024)) }, { entries: [file('a', 'b')] }] });
    assert.equal(await text(get(result, 'a')), 'b');
    assert.deepEqual(await readdir(join(root)).then((x) => x.length > 0), true);
  });
});
