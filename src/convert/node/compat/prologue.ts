// First module of every Node Box's bundle (esbuild `inject`): Node's globals, the built-in registry for the
// runtime require, and the loop's exit handling. process comes first: npm's util reads process.env on load.
import { process } from './process.js';
import * as bufferModule from './buffer.js';
import { console } from './console.js';
import * as moduleModule from './module.js';
import * as perfHooksModule from './perf-hooks.js';
import * as textModule from './text.js';
import * as timersModule from './timers.js';
import * as urlModule from './url.js';
import { unsupportedModule } from './unsupported.js';
import { config } from './config.js';
import { missingReason, NODE_BUILTINS, PROVIDED } from '../builtins.js';

const g = globalThis as unknown as Record<string, unknown>;

// The modules behind the built-ins, loaded on first use: esbuild turns a require() of an ES module into a lazy
// init, so a script that never touches streams or assert does not pay for evaluating them at start-up.
const provided: Record<string, () => unknown> = {
  assert: () => require('./assert.js'),
  buffer: () => bufferModule,
  console: () => ({ default: console }),
  events: () => require('./events.js'),
  fs: () => require('./fs.js'),
  'fs-promises': () => require('./fs-promises.js'),
  module: () => moduleModule,
  os: () => require('./os.js'),
  path: () => require('./path.js'),
  'perf-hooks': () => perfHooksModule,
  process: () => ({ default: process }),
  readline: () => require('./readline.js'),
  'readline-promises': () => require('./readline-promises.js'),
  stream: () => require('./stream.js'),
  'stream-promises': () => require('./stream-promises.js'),
  'string-decoder': () => require('./string-decoder.js'),
  timers: () => timersModule,
  'timers-promises': () => require('./timers-promises.js'),
  tty: () => require('./tty.js'),
  url: () => urlModule,
  util: () => require('./util.js'),
  'util-types': () => require('./util-types.js'),
};
for (const name of NODE_BUILTINS) {
  const file = PROVIDED[name];
  const load = file ? provided[file] : undefined;
  if (load) {
    moduleModule.registerBuiltin(name, () => {
      const ns = load() as { default?: unknown };
      return ns.default ?? ns;
    });
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
