// Applies one layer's entries to the VirtualFs: OCI whiteouts and opaque directories, directories, symlinks,
// hard links, device nodes, and the tree node of a regular file (whose bytes the stream reader handles).
// Works on plain entry records, so it is tested without a tar stream.
import type { FlattenNote } from './flatten.js';
import { splitPath, type FileNode, type Inode, type VirtualFs } from './vfs.js';

/** A tar entry's header as the applier needs it. */
export interface LayerEntry {
  path: string;
  /** node-tar's type names: File, OldFile, ContiguousFile, Directory, SymbolicLink, Link, CharacterDevice, … */
  type: string;
  mode?: number;
  linkpath?: string;
  size: number;
}

export interface ApplyContext {
  fs: VirtualFs;
  /** Index of the layer being applied (whiteouts only remove what lower layers put there). */
  layer: number;
  note: (n: FlattenNote) => void;
  /** A fresh inode id. */
  nextInode: () => number;
}

export const OPAQUE_MARKER = '.wh..wh..opq';
export const WHITEOUT_PREFIX = '.wh.';

/** A regular file the applier placed: the reader fills its inode from the entry's body. */
export interface PlacedFile {
  /** Kind `data` until the reader sniffs the bytes. */
  inode: Inode;
  /** The normalized path, without a leading slash. */
  path: string;
}

/** Applies `entry`. For a regular file, returns what the caller reads its body into; the rest is complete on return. */
export function applyEntry(ctx: ApplyContext, entry: LayerEntry): PlacedFile | undefined {
  const { fs, layer, note } = ctx;
  const parts = splitPath(entry.path);
  if (!parts) {
    note({ layer, path: entry.path, reason: 'path escapes the image root; entry skipped' });
    return undefined;
  }
  const name = parts[parts.length - 1];
  const parent = parts.slice(0, -1);
  const mode = (entry.mode ?? 0o644) & 0o1777;
  if (name !== undefined && name.startsWith(WHITEOUT_PREFIX)) {
    if (name === OPAQUE_MARKER) fs.opaque(parent, layer);
    // `.wh..wh.*` names other than the opaque marker are AUFS metadata: nothing to apply.
    else if (!name.startsWith(WHITEOUT_PREFIX + WHITEOUT_PREFIX)) fs.whiteout([...parent, name.slice(WHITEOUT_PREFIX.length)], layer);
    return undefined;
  }
  switch (entry.type) {
    case 'Directory':
      fs.set(parts, { type: 'dir', mode, children: new Map(), touched: layer }, layer);
      return undefined;
    case 'SymbolicLink':
      if (parts.length === 0) note({ layer, path: entry.path, reason: 'symlink at the root skipped' });
      else fs.set(parts, { type: 'symlink', target: entry.linkpath ?? '', touched: layer }, layer);
      return undefined;
    case 'Link':
      applyHardLink(ctx, entry, parts);
      return undefined;
    case 'File':
    case 'OldFile':
    case 'ContiguousFile': {
      if (parts.length === 0) {
        note({ layer, path: entry.path, reason: 'file at the root path skipped' });
        return undefined;
      }
      const inode: Inode = { id: ctx.nextInode(), size: entry.size, mode, kind: { kind: 'data' } };
      const node: FileNode = { type: 'file', inode, touched: layer };
      fs.set(parts, node, layer);
      return { inode, path: parts.join('/') };
    }
    case 'CharacterDevice':
    case 'BlockDevice':
    case 'FIFO':
      // Not representable in Wasm; it still hides what lower layers had at that path.
      fs.whiteout(parts, layer + 1);
      note({ layer, path: entry.path, reason: `${entry.type === 'FIFO' ? 'FIFO' : 'device node'} skipped` });
      return undefined;
    default:
      note({ layer, path: entry.path, reason: `unsupported tar entry type ${entry.type} skipped` });
      return undefined;
  }
}

/** A hard link shares its target's inode; the target must be a regular file already in the tree. */
function applyHardLink(ctx: ApplyContext, entry: LayerEntry, parts: string[]): void {
  const { fs, layer, note } = ctx;
  const targetParts = splitPath(entry.linkpath ?? '');
  const target = targetParts ? fs.get(targetParts) : undefined;
  if (!targetParts) note({ layer, path: entry.path, reason: `hard link to ${entry.linkpath} escapes the image root; skipped` });
  else if (target?.type !== 'file') note({ layer, path: entry.path, reason: `hard link to missing file ${entry.linkpath}; skipped` });
  else if (parts.length > 0) fs.set(parts, { type: 'file', inode: target.inode, touched: layer }, layer);
}
