// Turns an overlayfs upper directory into an OCI layer the way docker's overlay2 driver does on commit:
// overlayfs whiteouts (0:0 character devices) become `.wh.<name>` entries, opaque directories (xattr
// trusted.overlay.opaque=y) get `.wh..wh..opq`; everything else is archived by GNU tar (owners, modes, hard links).
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { lstat, mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Transform } from 'node:stream';
import { createGzip } from 'node:zlib';
import { exec, execText } from './exec.js';

export interface LayerBlob {
  /** sha256 of the gzip bytes. */
  digest: string;
  /** sha256 of the tar (the config's diff_id). */
  diffId: string;
  size: number;
}

function hashing(onDone: (hex: string, size: number) => void): Transform {
  const h = createHash('sha256');
  let size = 0;
  return new Transform({
    transform(chunk: Buffer, _enc, cb) {
      h.update(chunk);
      size += chunk.length;
      cb(null, chunk);
    },
    flush(cb) {
      onDone(h.digest('hex'), size);
      cb();
    },
  });
}

/** Overlay xattrs under `dir`, by path relative to it (one getfattr for the whole tree). */
async function overlayXattrs(dir: string): Promise<Map<string, Map<string, string>>> {
  // getfattr exits 1 when some file has none of the attributes asked for; its output is still complete.
  const text = await execText('getfattr', ['-R', '-h', '--absolute-names', '-m', '^trusted\\.overlay\\.', '-d', dir], { allowFailure: true });
  const out = new Map<string, Map<string, string>>();
  let current: Map<string, string> | undefined;
  for (const line of text.split('\n')) {
    if (line.startsWith('# file: ')) {
      const path = line.slice(8);
      const rel = path === dir ? '' : path.slice(dir.length + 1);
      current = new Map();
      out.set(rel, current);
    } else if (current && line.includes('=')) {
      const eq = line.indexOf('=');
      current.set(line.slice(0, eq), line.slice(eq + 1).replace(/^"|"$/g, ''));
    }
  }
  return out;
}

/**
 * A hard-linked copy of `upper` with docker's whiteout files in place of overlayfs' own, ready for tar. Fails
 * on overlayfs features that have no layer form (redirected directories, metadata-only copy-ups).
 */
async function stageForTar(upper: string, staging: string): Promise<void> {
  await exec('cp', ['-al', upper, staging]);
  const devices = (await execText('find', [staging, '-type', 'c', '-printf', '%P\\0'])).split('\0').filter(Boolean);
  for (const rel of devices) {
    const st = await lstat(join(staging, rel));
    if (st.rdev !== 0) throw new Error(`${rel} in layer ${upper} is a real device node; a layer cannot carry it here`);
    await rm(join(staging, rel));
    const slash = rel.lastIndexOf('/');
    await writeFile(join(staging, rel.slice(0, slash + 1) + '.wh.' + rel.slice(slash + 1)), '', { mode: 0o644 });
  }
  for (const [rel, attrs] of await overlayXattrs(upper)) {
    if (attrs.has('trusted.overlay.redirect') || attrs.has('trusted.overlay.metacopy')) {
      throw new Error(`/${rel} in layer ${upper} uses an overlayfs redirect or metacopy, which has no layer form`);
    }
    if (attrs.get('trusted.overlay.opaque') === 'y') await writeFile(join(staging, rel, '.wh..wh..opq'), '', { mode: 0o644 });
  }
}

/** GNU tar over `dir` (sorted, numeric owners, no atime/ctime), gzipped into `out`. */
export async function tarDirectory(dir: string, out: string): Promise<LayerBlob> {
  const list = (await execText('find', [dir, '-mindepth', '1', '-printf', '%P\\0'])).split('\0').filter(Boolean);
  list.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const tar = spawn(
    'tar',
    ['--create', '--format=pax', '--pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime', '--numeric-owner', '-C', dir, '--no-recursion', '--null', '-T', '-'],
    { stdio: ['pipe', 'pipe', 'pipe'] },
  );
  let stderr = '';
  tar.stderr.setEncoding('utf8').on('data', (d: string) => (stderr = (stderr + d).slice(-2000)));
  tar.stdin.end(list.map((p) => p + '\0').join(''));
  let diffId = '';
  let digest = '';
  let size = 0;
  const closed = new Promise<number>((resolve) => tar.on('close', (code) => resolve(code ?? -1)));
  await pipeline(
    tar.stdout,
    hashing((hex) => (diffId = `sha256:${hex}`)),
    createGzip({ level: 6 }),
    hashing((hex, n) => {
      digest = `sha256:${hex}`;
      size = n;
    }),
    createWriteStream(out),
  );
  const code = await closed;
  if (code !== 0) throw new Error(`tar of ${dir} failed (exit ${code}): ${stderr.trim()}`);
  return { digest, diffId, size };
}

/** The OCI layer of an overlayfs upper directory, written to `out`. */
export async function layerFromUpper(upper: string, out: string, scratch: string): Promise<LayerBlob> {
  const staging = join(scratch, 'staging');
  await rm(staging, { recursive: true, force: true });
  await mkdir(scratch, { recursive: true });
  try {
    await stageForTar(upper, staging);
    return await tarDirectory(staging, out);
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
}
