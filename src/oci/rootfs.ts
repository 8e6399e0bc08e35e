import { posix } from 'node:path';

/**
 * A symlink target with chroot meaning: absolute targets and ".." past the root are rewritten relative to the
 * link's directory, so the link resolves inside the rootfs on the host too. Others keep their exact spelling.
 */
export function containedSymlinkTarget(linkPath: string, target: string): string {
  const linkDir = posix.dirname(posix.join('/', linkPath));
  if (!target.startsWith('/')) {
    let depth = linkDir === '/' ? 0 : linkDir.split('/').length - 1;
    let escapes = false;
    for (const part of target.split('/')) {
      if (part === '..') depth--;
      else if (part !== '' && part !== '.') depth++;
      if (depth < 0) escapes = true;
    }
    if (!escapes) return target;
  }
  // posix.normalize/join clamp ".." at "/" for absolute paths: exactly chroot resolution.
  const resolved = target.startsWith('/') ? posix.normalize(target) : posix.join(linkDir, target);
  return posix.relative(linkDir, resolved) || '.';
}
