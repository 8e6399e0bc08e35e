import { OciError } from '../oci/errors.js';

// RFC 9110 media-range: type "/" subtype *( OWS ";" OWS parameter ).
const TOKEN = "[!#$%&'*+.^_`|~0-9A-Za-z-]+";
const PARAM = `${TOKEN}=(?:${TOKEN}|"(?:[^"\\\\]|\\\\.)*")`;
const MEDIA_RANGE = new RegExp(`^(${TOKEN})/(${TOKEN})((?:[ \\t]*;[ \\t]*${PARAM})*)$`);

/**
 * Parses the Accept header(s) of a manifest request into a predicate over
 * media types. No header (or any wildcard) accepts everything; an entry
 * with q=0 excludes its type. A malformed header is the client's error.
 */
export function parseAccept(header: string | string[] | undefined): (mediaType: string) => boolean {
  const values = header === undefined ? [] : Array.isArray(header) ? header : [header];
  const accepted = new Set<string>();
  const refused = new Set<string>();
  let any = values.length === 0;
  for (const value of values) {
    for (const raw of value.split(',')) {
      const item = raw.trim();
      if (item === '') continue;
      const m = MEDIA_RANGE.exec(item);
      if (!m) throw new OciError('UNSUPPORTED', `malformed Accept header entry ${JSON.stringify(item.slice(0, 100))}`, undefined, 400);
      const type = `${(m[1] as string).toLowerCase()}/${(m[2] as string).toLowerCase()}`;
      const q = /;\s*q=([0-9.]+)/i.exec(m[3] ?? '');
      if (q && Number(q[1]) === 0) {
        refused.add(type);
        continue;
      }
      if (type === '*/*' || type === 'application/*') any = true;
      else accepted.add(type);
    }
  }
  if (any && refused.size === 0) return () => true;
  return (mediaType) => !refused.has(mediaType) && (any || accepted.has(mediaType));
}

export interface Range {
  start: number;
  end: number;
}

/**
 * Parses a single-range `bytes=` Range header against a known size.
 * Returns undefined when the header should be ignored (absent, multi-range
 * or not bytes: RFC 9110 lets a server send the whole representation), and
 * 'unsatisfiable' for a 416.
 */
export function parseRange(header: string | undefined, size: number): Range | 'unsatisfiable' | undefined {
  if (!header) return undefined;
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!m || (m[1] === '' && m[2] === '')) return undefined;
  if (m[1] === '') {
    const suffix = Number(m[2]);
    if (suffix === 0 || size === 0) return 'unsatisfiable';
    return { start: Math.max(0, size - suffix), end: size - 1 };
  }
  const start = Number(m[1]);
  const end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1);
  if (start >= size || (m[2] !== '' && Number(m[2]) < start)) return 'unsatisfiable';
  return { start, end };
}
