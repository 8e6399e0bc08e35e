// node:url: file: URL helpers and a WHATWG-style URL class (absolute URLs, as CLI programs use them).

const URL_RE = /^([a-zA-Z][a-zA-Z\d+.-]*:)(?:\/\/(?:([^:@/?#]*)(?::([^@/?#]*))?@)?(\[[^\]]*\]|[^:/?#]*)(?::(\d*))?)?([^?#]*)(\?[^#]*)?(#.*)?$/;
const DEFAULT_PORTS: Record<string, string> = { 'http:': '80', 'https:': '443', 'ws:': '80', 'wss:': '443', 'ftp:': '21' };

export class URLSearchParams {
  private list: Array<[string, string]> = [];
  constructor(init: string | Record<string, string> | Array<[string, string]> = '') {
    if (typeof init === 'string') {
      for (const part of init.replace(/^\?/, '').split('&')) {
        if (!part) continue;
        const eq = part.indexOf('=');
        const dec = (s: string): string => decodeURIComponent(s.replace(/\+/g, ' '));
        this.list.push(eq === -1 ? [dec(part), ''] : [dec(part.slice(0, eq)), dec(part.slice(eq + 1))]);
      }
    } else if (Array.isArray(init)) this.list = init.map(([k, v]) => [String(k), String(v)]);
    else this.list = Object.entries(init).map(([k, v]) => [k, String(v)]);
  }
  get(name: string): string | null {
    return this.list.find(([k]) => k === name)?.[1] ?? null;
  }
  getAll(name: string): string[] {
    return this.list.filter(([k]) => k === name).map(([, v]) => v);
  }
  has(name: string): boolean {
    return this.list.some(([k]) => k === name);
  }
  set(name: string, value: string): void {
    this.delete(name);
    this.list.push([name, String(value)]);
  }
  append(name: string, value: string): void {
    this.list.push([name, String(value)]);
  }
  delete(name: string): void {
    this.list = this.list.filter(([k]) => k !== name);
  }
  forEach(fn: (value: string, key: string) => void): void {
    for (const [k, v] of this.list) fn(v, k);
  }
  keys(): IterableIterator<string> {
    return this.list.map(([k]) => k)[Symbol.iterator]();
  }
  values(): IterableIterator<string> {
    return this.list.map(([, v]) => v)[Symbol.iterator]();
  }
  entries(): IterableIterator<[string, string]> {
    return this.list[Symbol.iterator]();
  }
  [Symbol.iterator](): IterableIterator<[string, string]> {
    return this.entries();
  }
  get size(): number {
    return this.list.length;
  }
  toString(): string {
    const enc = (s: string): string => encodeURIComponent(s).replace(/%20/g, '+');
    return this.list.map(([k, v]) => `${enc(k)}=${enc(v)}`).join('&');
  }
}

export class URL {
  protocol = '';
  username = '';
  password = '';
  hostname = '';
  port = '';
  pathname = '';
  search = '';
  hash = '';
  searchParams: URLSearchParams;

  constructor(input: string | URL, base?: string | URL) {
    let text = String(input);
    if (base !== undefined && !/^[a-zA-Z][a-zA-Z\d+.-]*:/.test(text)) {
      const b = new URL(base);
      if (text.startsWith('//')) text = b.protocol + text;
      else if (text.startsWith('/')) text = `${b.origin === 'null' ? b.protocol + '//' : b.origin}${text}`;
      else if (text.startsWith('?')) text = `${b.href.replace(/[?#].*$/, '')}${text}`;
      else if (text.startsWith('#')) text = `${b.href.replace(/#.*$/, '')}${text}`;
      else text = `${b.origin === 'null' ? b.protocol + '//' : b.origin}${b.pathname.replace(/[^/]*$/, '')}${text}`;
    }
    const m = URL_RE.exec(text.trim());
    if (!m) {
      const err = new TypeError('Invalid URL') as TypeError & { code: string; input: string };
      err.code = 'ERR_INVALID_URL';
      err.input = text;
      throw err;
    }
    this.protocol = (m[1] ?? '').toLowerCase();
    this.username = m[2] ?? '';
    this.password = m[3] ?? '';
    this.hostname = (m[4] ?? '').toLowerCase();
    this.port = m[5] && m[5] !== DEFAULT_PORTS[this.protocol] ? m[5] : '';
    this.pathname = normalizePath(m[6] || (m[4] !== undefined ? '/' : ''));
    this.search = m[7] && m[7] !== '?' ? m[7] : '';
    this.hash = m[8] && m[8] !== '#' ? m[8] : '';
    this.searchParams = new URLSearchParams(this.search);
  }
  get host(): string {
    return this.port ? `${this.hostname}:${this.port}` : this.hostname;
  }
  get origin(): string {
    return this.protocol in DEFAULT_PORTS ? `${this.protocol}//${this.host}` : 'null';
  }
  get href(): string {
    const auth = this.username ? `${this.username}${this.password ? ':' + this.password : ''}@` : '';
    const authority = this.protocol === 'file:' || this.hostname || auth ? `//${auth}${this.host}` : '';
    return `${this.protocol}${authority}${this.pathname}${this.search}${this.hash}`;
  }
  toString(): string {
    return this.href;
  }
  toJSON(): string {
    return this.href;
  }
  static canParse(input: string, base?: string): boolean {
    try {
      new URL(input, base);
      return true;
    } catch {
      return false;
    }
  }
}

function normalizePath(path: string): string {
  if (!path.startsWith('/')) return path;
  const out: string[] = [];
  const parts = path.split('/');
  for (let i = 1; i < parts.length; i++) {
    const p = parts[i] as string;
    if (p === '..') out.pop();
    else if (p !== '.') out.push(p);
    if ((p === '.' || p === '..') && i === parts.length - 1) out.push('');
  }
  return '/' + out.join('/');
}

export function fileURLToPath(url: string | URL): string {
  const u = typeof url === 'string' ? new URL(url) : url;
  if (u.protocol !== 'file:') {
    const err = new TypeError('The URL must be of scheme file') as TypeError & { code: string };
    err.code = 'ERR_INVALID_URL_SCHEME';
    throw err;
  }
  return decodeURIComponent(u.pathname);
}

export function pathToFileURL(path: string): URL {
  const abs = path.startsWith('/') ? path : `${(globalThis as unknown as { process: { cwd(): string } }).process.cwd()}/${path}`;
  return new URL('file://' + encodeURI(abs).replace(/[?#]/g, encodeURIComponent));
}

export function format(u: URL | { href?: string }): string {
  return u instanceof URL ? u.href : String(u.href ?? '');
}

export function parse(text: string): Record<string, string | null> {
  try {
    const u = new URL(text);
    return { protocol: u.protocol, host: u.host, hostname: u.hostname, port: u.port || null, pathname: u.pathname, search: u.search || null, hash: u.hash || null, href: u.href, path: u.pathname + u.search, query: u.search.slice(1) || null };
  } catch {
    return { protocol: null, host: null, hostname: null, port: null, pathname: text, search: null, hash: null, href: text, path: text, query: null };
  }
}

export default { URL, URLSearchParams, fileURLToPath, pathToFileURL, format, parse };
