import type { FileKind } from './detect.js';
import type { ContentRef } from './pack.js';

/** A regular file's data; hard links share one. */
export interface Inode {
  id: number;
  size: number;
  mode: number;
  kind: FileKind;
  /** Absent when the bytes were not kept (see `dropped`). */
  content?: ContentRef;
  /** Why the bytes were not kept (the file will not be in the Box). */
  dropped?: string;
}

/** `touched` is the index of the last layer that created or passed through the node (whiteout semantics). */
export interface FileNode {
  type: 'file';
  inode: Inode;
  touched: number;
}
export interface DirNode {
  type: 'dir';
  mode: number;
  children: Map<string, VNode>;
  touched: number;
}
export interface SymlinkNode {
  type: 'symlink';
  target: string;
  touched: number;
}
export type VNode = FileNode | DirNode | SymlinkNode;

/**
 * Splits a path into components the way a chroot sees it: leading "/" and "." dropped, ".." applied.
 * Returns undefined when ".." climbs above the root (a hostile tar entry).
 */
export function splitPath(path: string): string[] | undefined {
  const out: string[] = [];
  for (const part of path.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') {
      if (out.length === 0) return undefined;
      out.pop();
    } else out.push(part);
  }
  return out;
}

/** Like splitPath but ".." at the root stays at the root (how the kernel resolves inside a chroot). */
export function clampPath(path: string, base: string[] = []): string[] {
  const out = path.startsWith('/') ? [] : [...base];
  for (const part of path.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') out.pop();
    else out.push(part);
  }
  return out;
}

export function joinPath(parts: readonly string[]): string {
  return '/' + parts.join('/');
}

export type ResolveResult =
  | { ok: true; path: string; node: VNode }
  | { ok: false; error: 'not-found' | 'not-a-directory' | 'symlink-loop'; path: string };

const MAX_SYMLINK_HOPS = 40;

/** The image's final filesystem as an in-memory tree; file bytes live in scratch pack files. */
export class VirtualFs {
  readonly root: DirNode = { type: 'dir', mode: 0o755, children: new Map(), touched: -1 };

  /** Node at a path without following symlinks. */
  get(parts: readonly string[]): VNode | undefined {
    let node: VNode = this.root;
    for (const part of parts) {
      if (node.type !== 'dir') return undefined;
      const next: VNode | undefined = node.children.get(part);
      if (!next) return undefined;
      node = next;
    }
    return node;
  }

  /**
   * Directory at `parts`, created (0755) where missing. A non-directory in the way is replaced, never
   * followed: following a symlink while applying a layer is how tar extraction escapes its root.
   */
  ensureDir(parts: readonly string[], layer: number): DirNode {
    let dir = this.root;
    dir.touched = layer;
    for (const part of parts) {
      let next = dir.children.get(part);
      if (!next || next.type !== 'dir') {
        next = { type: 'dir', mode: 0o755, children: new Map(), touched: layer };
        dir.children.set(part, next);
      }
      next.touched = layer;
      dir = next;
    }
    return dir;
  }

  /** Places a node (replacing a file or symlink; a directory replacing a directory keeps its children). */
  set(parts: readonly string[], node: VNode, layer: number): void {
    const name = parts[parts.length - 1];
    if (name === undefined) {
      if (node.type === 'dir') this.root.mode = node.mode;
      return;
    }
    const parent = this.ensureDir(parts.slice(0, -1), layer);
    const existing = parent.children.get(name);
    if (node.type === 'dir' && existing?.type === 'dir') {
      existing.mode = node.mode;
      existing.touched = layer;
      return;
    }
    parent.children.set(name, node);
  }

  /** Removes what lower layers put at `parts` (whiteout); what `layer` itself added stays. */
  whiteout(parts: readonly string[], layer: number): void {
    const name = parts[parts.length - 1];
    const parent = this.get(parts.slice(0, -1));
    if (name === undefined || parent?.type !== 'dir') return;
    const node = parent.children.get(name);
    if (!node) return;
    if (node.touched < layer) parent.children.delete(name);
    else if (node.type === 'dir') this.pruneLower(node, layer);
  }

  /** Opaque directory: everything below it from lower layers goes. */
  opaque(parts: readonly string[], layer: number): void {
    const node = this.get(parts);
    if (node?.type === 'dir') this.pruneLower(node, layer);
  }

  private pruneLower(dir: DirNode, layer: number): void {
    for (const [name, child] of dir.children) {
      if (child.touched < layer) dir.children.delete(name);
      else if (child.type === 'dir') this.pruneLower(child, layer);
    }
  }

  /**
   * Resolves a path chroot-style: symlinks are followed inside the tree, absolute targets start at the tree's
   * root and ".." never leaves it. `cwd` is where a relative path starts.
   */
  resolve(path: string, opts: { cwd?: string; followLast?: boolean } = {}): ResolveResult {
    const followLast = opts.followLast ?? true;
    const pending = clampPath(path, path.startsWith('/') ? [] : clampPath(opts.cwd ?? '/')).reverse();
    const stack: Array<{ name: string; node: DirNode }> = [];
    let current: VNode = this.root;
    let hops = 0;
    const here = (): string[] => stack.map((s) => s.name);
    while (pending.length > 0) {
      const part = pending.pop() as string;
      if (current.type !== 'dir') return { ok: false, error: 'not-a-directory', path: joinPath(here()) };
      const dir: DirNode = current;
      if (part === '..') {
        stack.pop();
        current = stack.length ? (stack[stack.length - 1] as { node: DirNode }).node : this.root;
        continue;
      }
      const next = dir.children.get(part);
      if (!next) return { ok: false, error: 'not-found', path: joinPath([...here(), part, ...[...pending].reverse()]) };
      if (next.type === 'symlink' && (pending.length > 0 || followLast)) {
        if (++hops > MAX_SYMLINK_HOPS) return { ok: false, error: 'symlink-loop', path: joinPath([...here(), part]) };
        const target = next.target;
        if (target.startsWith('/')) {
          stack.length = 0;
          current = this.root;
        }
        // Keep ".." as a component so it is applied after the preceding symlinks resolve, like the kernel.
        const targetParts = target.split('/').filter((p) => p !== '' && p !== '.');
        for (let i = targetParts.length - 1; i >= 0; i--) pending.push(targetParts[i] as string);
        continue;
      }
      if (next.type === 'dir') stack.push({ name: part, node: next });
      else if (pending.length > 0) {
        return { ok: false, error: 'not-a-directory', path: joinPath([...here(), part]) };
      }
      current = next;
      if (next.type !== 'dir') return { ok: true, path: joinPath([...here(), part]), node: next };
    }
    return { ok: true, path: joinPath(here()), node: current };
  }

  /** Every node depth-first, children in sorted order (parents before children): the Box's tar order. */
  *walk(): Generator<{ path: string; node: VNode }> {
    function* visit(dir: DirNode, prefix: string): Generator<{ path: string; node: VNode }> {
      const names = [...dir.children.keys()].sort();
      for (const name of names) {
        const node = dir.children.get(name) as VNode;
        const path = prefix + '/' + name;
        yield { path, node };
        if (node.type === 'dir') yield* visit(node, path);
      }
    }
    yield* visit(this.root, '');
  }
}
