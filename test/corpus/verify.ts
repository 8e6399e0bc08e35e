// Checks the corpus builder's own output: the tree a stack of OCI layers makes, computed from the tar headers
// (independent of boxproxy's flattening), and `find` listings of real trees to compare it with.
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { list } from 'tar';
import { execText } from './exec.js';

interface ListedEntry {
  type: string;
  mode: number;
  owner: string;
  size: number;
  link: string;
  /** Layer that put it there (an opaque marker only hides lower ones). */
  layer: number;
}

/**
 * The tree the layers make when applied one over the other, as normalizeListing lines, computed from the tar headers
 * alone with node-tar (independent of boxproxy's own flattening): `.wh.<name>` removes what lower layers had at
 * <name>, `.wh..wh..opq` what they had below its directory; a hard link takes its target's type and size.
 */
export async function layersListing(layerFiles: readonly string[]): Promise<string[]> {
  const tree = new Map<string, ListedEntry>();
  const removeBelow = (dir: string, layer: number, self: boolean): void => {
    for (const [path, e] of tree) {
      if (e.layer < layer && ((self && path === dir) || path.startsWith(dir === '' ? '' : dir + '/'))) tree.delete(path);
    }
  };
  for (const [layer, file] of layerFiles.entries()) {
    await list({
      file,
      onReadEntry: (entry) => {
        const path = entry.path.replace(/^\.\//, '').replace(/\/$/, '');
        const slash = path.lastIndexOf('/');
        const dir = path.slice(0, Math.max(slash, 0));
        const base = path.slice(slash + 1);
        if (base === '.wh..wh..opq') return removeBelow(dir, layer, false);
        if (base.startsWith('.wh.')) return removeBelow(dir ? `${dir}/${base.slice(4)}` : base.slice(4), layer + 1, true);
        const mode = (entry.mode ?? 0) & 0o7777;
        const owner = `${entry.uid ?? 0}:${entry.gid ?? 0}`;
        if (entry.type === 'Link') {
          const target = tree.get((entry.linkpath ?? '').replace(/^\.\//, ''));
          tree.set(path, { type: 'f', mode, owner, size: target?.size ?? 0, link: '', layer });
          return;
        }
        const type = entry.type === 'Directory' ? 'd' : entry.type === 'SymbolicLink' ? 'l' : 'f';
        // A directory over a directory keeps what is below it; anything else over a directory replaces its subtree.
        if (type !== 'd' && tree.get(path)?.type === 'd') removeBelow(path, layer + 1, false);
        tree.set(path, { type, mode, owner, size: type === 'f' ? entry.size : type === 'l' ? Buffer.byteLength(entry.linkpath ?? '') : 0, link: type === 'l' ? (entry.linkpath ?? '') : '', layer });
      },
    });
  }
  return [...tree].map(([path, e]) => [path, e.type, e.mode.toString(8), e.owner, e.type === 'd' ? '-' : String(e.size), e.link].join('\t')).sort();
}

/** Sorted `find -printf` lines (NUL-separated); a directory's size is the file system's business, not the image's. */
export function normalizeListing(text: string): string[] {
  return text
    .split('\0')
    .filter(Boolean)
    .map((l) => {
      const f = l.split('\t');
      return f[1] === 'd' ? [...f.slice(0, 4), '-', f[5]].join('\t') : l;
    })
    .sort();
}

/**
 * Checks that OCI layers say what a build did: applied one over the other, whiteouts included, they give the
 * same tree as the overlayfs stack (`lowers`, top first) the build's steps ran in. Returns the entry count.
 */
export async function verifyLayers(layerFiles: readonly string[], lowers: readonly string[], scratch: string): Promise<number> {
  const fromTars = await layersListing(layerFiles);
  const [merged, upper, work] = ['merged', 'upper', 'work'].map((d) => join(scratch, d)) as [string, string, string];
  for (const d of [merged, upper, work]) await mkdir(d, { recursive: true });
  const mountAndList = 'mount --make-rprivate / && mount -t overlay overlay -o "lowerdir=$1,upperdir=$2,workdir=$3" "$4" && exec find "$4" -xdev -mindepth 1 -printf \'%P\\t%y\\t%m\\t%U:%G\\t%s\\t%l\\0\'';
  const fromOverlay = normalizeListing(await execText('unshare', ['--mount', 'sh', '-c', mountAndList, 'sh', lowers.join(':'), upper, work, merged]));
  const inTars = new Set(fromTars);
  const inOverlay = new Set(fromOverlay);
  const onlyTars = fromTars.filter((l) => !inOverlay.has(l));
  const onlyOverlay = fromOverlay.filter((l) => !inTars.has(l));
  if (onlyTars.length || onlyOverlay.length) {
    throw new Error(
      `the layers do not reproduce the build's tree: only in the layers: ${onlyTars.slice(0, 5).join(' | ') || 'none'}; only in the build: ${onlyOverlay.slice(0, 5).join(' | ') || 'none'}`,
    );
  }
  return fromTars.length;
}
