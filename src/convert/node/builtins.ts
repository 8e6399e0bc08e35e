// Node's built-in modules as a Box sees them: the ones the Node layer provides (file in compat/), and the ones
// it cannot, with what they need. Pure data: the converter's bundler and the in-Box layer both read it.

/** Built-in name -> compat/<file>.ts that provides it. */
export const PROVIDED: Readonly<Record<string, string>> = {
  assert: 'assert',
  'assert/strict': 'assert',
  buffer: 'buffer',
  console: 'console',
  events: 'events',
  fs: 'fs',
  'fs/promises': 'fs-promises',
  module: 'module',
  os: 'os',
  path: 'path',
  'path/posix': 'path',
  perf_hooks: 'perf-hooks',
  process: 'process',
  readline: 'readline',
  'readline/promises': 'readline-promises',
  stream: 'stream',
  'stream/promises': 'stream-promises',
  _stream_duplex: 'stream',
  _stream_passthrough: 'stream',
  _stream_readable: 'stream',
  _stream_transform: 'stream',
  _stream_writable: 'stream',
  string_decoder: 'string-decoder',
  timers: 'timers',
  'timers/promises': 'timers-promises',
  tty: 'tty',
  url: 'url',
  util: 'util',
  'util/types': 'util-types',
};

/**
 * The npm package behind a provided built-in. The packages' own requires of built-ins resolve to these, not to
 * compat/: `inherits` requires 'util' while npm's util is loading it, which must not pull in compat/util.ts.
 */
export const NPM_PACKAGE: Readonly<Record<string, string>> = {
  assert: 'assert/',
  buffer: 'buffer/',
  events: 'events/',
  path: 'path-browserify',
  stream: 'readable-stream/lib/ours/browser.js',
  string_decoder: 'string_decoder/',
  util: 'util/',
};

/** What an app needs that WASI preview1 lacks, by built-in module: a Box cannot have these at all. */
export const NEEDS: Readonly<Record<string, string>> = {
  child_process: 'child processes',
  cluster: 'child processes',
  dgram: 'sockets',
  dns: 'sockets',
  'dns/promises': 'sockets',
  http: 'sockets',
  http2: 'sockets',
  https: 'sockets',
  inspector: 'the V8 inspector',
  'inspector/promises': 'the V8 inspector',
  net: 'sockets',
  tls: 'sockets',
  worker_threads: 'threads',
  _http_agent: 'sockets',
  _http_client: 'sockets',
  _http_common: 'sockets',
  _http_incoming: 'sockets',
  _http_outgoing: 'sockets',
  _http_server: 'sockets',
  _tls_common: 'sockets',
  _tls_wrap: 'sockets',
};

/** Every built-in name the Box's Node layer answers for; those neither provided nor in NEEDS are "not provided". */
export const NODE_BUILTINS: readonly string[] = [
  '_stream_wrap', 'async_hooks', 'constants', 'crypto', 'diagnostics_channel', 'domain', 'path/win32', 'punycode', 'querystring',
  'repl', 'stream/consumers', 'stream/web', 'sys', 'trace_events', 'v8', 'vm',
  'wasi', 'zlib', 'sqlite', 'test', 'sea',
  ...Object.keys(PROVIDED),
  ...Object.keys(NEEDS),
];

/** "node:fs" / "fs" -> "fs" when it is a built-in; undefined otherwise. */
export function builtinName(specifier: string): string | undefined {
  const name = specifier.startsWith('node:') ? specifier.slice('node:'.length) : specifier;
  return NODE_BUILTINS.includes(name) ? name : undefined;
}

/** Why a built-in is missing from a Box: what it needs, or that the layer does not provide it. */
export function missingReason(name: string): string {
  return NEEDS[name] ?? `node:${name}, which the Box's Node layer does not provide`;
}
