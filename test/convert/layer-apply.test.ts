// The whiteout/link applier on plain entry records: no tar stream, no pack files.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { applyEntry, type ApplyContext, type LayerEntry } from '../../src/convert/layer-apply.js';
import type { FlattenNote } from '../../src/convert/flatten.js';
import { VirtualFs } from '../../src/convert/vfs.js';

function applier() {
  const fs = new VirtualFs();
  const notes: FlattenNote[] = [];
  let ids = 0;
  const apply = (layer: number, ...entries: LayerEntry[]) => {
    const ctx: ApplyContext = { fs, layer, note: (n) => notes.push(n), nextInode: () => ++ids };
    return entries.map((e) => applyEntry(ctx, e));
  };
  const paths = () => [...fs.walk()].map((e) => e.path + (e.node.type === 'dir' ? '/' : ''));
  return { fs, notes, apply, paths };
}

const dir = (path: string, mode = 0o755): LayerEntry => ({ path, type: 'Directory', mode, size: 0 });
const file = (path: string, size = 1, mode = 0o644): LayerEntry => ({ path, type: 'File', mode, size });
const symlink = (path: string, linkpath: string): LayerEntry => ({ path, type: 'SymbolicLink', linkpath, size: 0 });
const hardlink = (path: string, linkpath: string): LayerEntry => ({ path, type: 'Link', linkpath, size: 0 });

describe('layer applier', () => {
  test('a regular file gets a fresh inode and its normalized path; other entries are complete on return', () => {
    const { apply, fs } = applier();
    const [d, f, l] = apply(0, dir('etc/'), file('./etc//hosts', 12, 0o4755), symlink('etc/link', 'hosts'));
    assert.equal(d, undefined);
    assert.equal(l, undefined);
    assert.equal(f?.path, 'etc/hosts');
    assert.equal(f?.inode.size, 12);
    // setuid/setgid mean nothing in Wasm: only permission and sticky bits are kept.
    assert.equal(f?.inode.mode, 0o755);
    assert.equal(f?.inode.kind.kind, 'data');
    const node = fs.get(['etc', 'hosts']);
    assert.equal(node?.type === 'file' ? node.inode : undefined, f?.inode);
  });

  test('a whiteout removes what lower layers had, not what its own layer adds', () => {
    const { apply, paths } = applier();
    apply(0, dir('var/'), file('var/old'), file('var/keep'), dir('var/cache/'), file('var/cache/x'));
    apply(1, file('var/new'), { path: 'var/.wh.old', type: 'File', size: 0 }, { path: 'var/.wh.cache', type: 'File', size: 0 });
    assert.deepEqual(paths(), ['/var/', '/var/keep', '/var/new']);
    // A layer's whiteout never hides an entry of the same layer, whatever the order.
    apply(2, file('var/again'), { path: 'var/.wh.again', type: 'File', size: 0 });
    assert.ok(paths().includes('/var/again'));
  });

  test('an opaque directory drops everything lower layers had below it', () => {
    const { apply, paths } = applier();
    apply(0, dir('opt/'), dir('opt/app/'), file('opt/app/a'), dir('opt/app/sub/'), file('opt/app/sub/b'));
    apply(1, dir('opt/app/'), { path: 'opt/app/.wh..wh..opq', type: 'File', size: 0 }, file('opt/app/c'));
    assert.deepEqual(paths(), ['/opt/', '/opt/app/', '/opt/app/c']);
  });

  test('hard links share the inode of a file already in the tree; dangling and escaping ones are noted', () => {
    const { apply, fs, notes } = applier();
    const [target] = apply(0, file('bin/python3.11', 100, 0o755));
    apply(0, hardlink('bin/python3', 'bin/python3.11'), hardlink('bin/gone', 'bin/missing'), hardlink('bin/out', '../../etc/shadow'));
    const linked = fs.get(['bin', 'python3']);
    assert.equal(linked?.type === 'file' ? linked.inode : undefined, target?.inode);
    assert.equal(fs.get(['bin', 'gone']), undefined);
    assert.deepEqual(notes.map((n) => n.reason), ['hard link to missing file bin/missing; skipped', 'hard link to ../../etc/shadow escapes the image root; skipped']);
  });

  test('device nodes are skipped but still hide lower layers; escaping paths and AUFS metadata do nothing', () => {
    const { apply, paths, notes } = applier();
    apply(0, dir('dev/'), file('dev/null'), file('ok'));
    apply(1, { path: 'dev/null', type: 'CharacterDevice', size: 0 }, file('../escape'), { path: '.wh..wh.plnk', type: 'File', size: 0 });
    assert.deepEqual(paths(), ['/dev/', '/ok']);
    assert.deepEqual(notes.map((n) => n.reason), ['device node skipped', 'path escapes the image root; entry skipped']);
  });

  test('a directory over a directory keeps the children and takes the new mode; a file over a directory replaces it', () => {
    const { apply, fs, paths } = applier();
    apply(0, dir('srv/', 0o700), file('srv/a'));
    apply(1, dir('srv/', 0o755));
    const srv = fs.get(['srv']);
    assert.equal(srv?.type === 'dir' ? srv.mode : 0, 0o755);
    assert.deepEqual(paths(), ['/srv/', '/srv/a']);
    apply(2, file('srv'));
    assert.deepEqual(paths(), ['/srv']);
  });
});
