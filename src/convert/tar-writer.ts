import { Header, Pax } from 'tar';

/** One tar entry's metadata, written deterministically: uid/gid 0, empty user and group names. */
export interface TarEntrySpec {
  path: string;
  type: 'File' | 'Directory' | 'SymbolicLink' | 'Link' | 'CharacterDevice' | 'BlockDevice' | 'FIFO';
  mode: number;
  size?: number;
  linkpath?: string;
  mtime: Date;
  devmaj?: number;
  devmin?: number;
}

/** The header block(s) of an entry: a PAX extended header first when the path or link does not fit ustar. */
export function tarHeader(spec: TarEntrySpec): Buffer {
  const block = Buffer.alloc(512);
  const header = new Header({
    path: spec.path,
    mode: spec.mode,
    uid: 0,
    gid: 0,
    size: spec.type === 'File' ? (spec.size ?? 0) : 0,
    mtime: spec.mtime,
    type: spec.type,
    uname: '',
    gname: '',
    devmaj: spec.devmaj ?? 0,
    devmin: spec.devmin ?? 0,
    ...(spec.linkpath !== undefined ? { linkpath: spec.linkpath } : {}),
  });
  const needPax = header.encode(block, 0);
  if (!needPax) return block;
  const pax = new Pax({
    path: spec.path,
    ...(spec.linkpath !== undefined ? { linkpath: spec.linkpath } : {}),
    ...(spec.type === 'File' && (spec.size ?? 0) > 0o77777777777 ? { size: spec.size } : {}),
    mtime: spec.mtime,
  });
  return Buffer.concat([pax.encode(), block]);
}

/** Zero bytes that round a body of `size` bytes up to the 512-byte block. */
export function tarPadding(size: number): Buffer {
  const rest = size % 512;
  return rest === 0 ? Buffer.alloc(0) : Buffer.alloc(512 - rest);
}

/** Two zero blocks end an archive. */
export const TAR_END: Buffer = Buffer.alloc(1024);

/** A whole small tar in memory (tests and tiny layers). */
export function tarBuffer(entries: ReadonlyArray<TarEntrySpec & { data?: Buffer | string }>): Buffer {
  const parts: Buffer[] = [];
  for (const e of entries) {
    const data = e.data === undefined ? Buffer.alloc(0) : Buffer.from(e.data);
    parts.push(tarHeader({ ...e, size: e.type === 'File' ? data.length : 0 }));
    if (e.type === 'File') parts.push(data, tarPadding(data.length));
  }
  parts.push(TAR_END);
  return Buffer.concat(parts);
}
