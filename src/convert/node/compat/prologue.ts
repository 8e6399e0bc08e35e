// First module of every Node Box's bundle (esbuild `inject`): Node's globals, the built-in registry for the
// runtime require, and the loop's exit handling. process comes first: npm's util reads process.env on load.
import { process } from './process.js';
import * as assertModule from './assert.js';
import * as bufferModule from './buffer.js';
import { console } from './console.js';
import * as eventsModule from './events.js';
import * as fsModule from './fs.js';
import * as fsPromisesModule from './fs-promises.js';
import * as moduleModule from './module.js';
import * as osModule from './os.js';
import * as pathModule from './path.js';
import * as perfHooksModule from './perf-hooks.js';
import * as readlineModule from './readline.js';
import * as readlinePromisesModule from './readline-promises.js';
import * as streamModule from './stream.js';
import * as streamPromisesModule from './stream-promises.js';
import * as stringDecoderModule from './string-decoder.js';
import * as textModule from './text.js';
import * as timersModule from './timers.js';
import * as timersPromisesModule from './timers-promises.js';
import * as ttyModule from './tty.js';
import * as urlModule from './url.js';
import * as utilModule from './util.js';
import * as utilTypesModule from './util-types.js';
import { unsupportedModule } from './unsupported.js';
import { config } from './config.js';
import { missingReason, NODE_BUILTINS, PROVIDED } from '../builtins.js';

const g = globalThis as unknown as Record<string, unknown>;

// What `require('fs')` returns: the module's default export (Node's CommonJS shape).
const provided: Record<string, unknown> = {
  assert: assertModule,
  buffer: bufferModule,
  console: { default: console },
  events: eventsModule,
  fs: fsModule,
  'fs-promises': fsPromisesModule,
  module: moduleModule,
  os: osModule,
  path: pathModule,
  'perf-hooks': perfHooksModule,
  process: { default: process },
  readline: readlineModule,
  'readline-promises': readlinePromisesModule,
  stream: streamModule,
  'stream-promises': streamPromisesModule,
  'string-decoder': stringDecoderModule,
  timers: timersModule,
  'timers-promises': timersPromisesModule,
  tty: ttyModule,
  url: urlModule,
  util: utilModule,
  'util-types': utilTypesModule,
};
for (const name of NODE_BUILTINS) {
  const file = PROVIDED[name];
  if (file) {
    const ns = provided[file] as { default?: unknown } | undefined;
    moduleModule.registerBuiltin(name, () => ns?.default ?? ns);
  } else {
    let stub: object | undefined;
    moduleModule.registerBuiltin(name, () => (stub ??= unsupportedModule(name, missingReason(name))));
  }
  moduleModule.builtinModules.push(name);
}

g.process = process;
g.global = globalThis;
g.console = console;
g.Buffer = bufferModule.Buffer;
g.setTimeout = timersModule.setTimeout;
g.setInterval = timersModule.setInterval;
g.setImmediate = timersModule.setImmediate;
g.clearTimeout = timersModule.clearTimeout;
g.clearInterval = timersModule.clearInterval;
g.clearImmediate = timersModule.clearImmediate;
g.TextEncoder = textModule.TextEncoder;
g.TextDecoder = textModule.TextDecoder;
g.URL = urlModule.URL;
g.URLSearchParams = urlModule.URLSearchParams;
g.performance = perfHooksModule.performance;
g.queueMicrotask ??= (fn: () => void): void => {
  Promise.resolve().then(fn);
};
g.structuredClone ??= <T>(value: T): T => (value === undefined ? value : (JSON.parse(JSON.stringify(value)) as T));
// The runtime require, for what the bundle left to run time (computed names); `require.main` is the entry.
const mainRequire = moduleModule.makeRequire(config.script || `${process.cwd()}/`);
g.require = mainRequire;
// QuickJS's own helpers are not Node's.
delete g.print;
delete g.scriptArgs;
