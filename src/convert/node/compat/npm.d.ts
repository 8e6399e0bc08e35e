// Types for the pure-JS npm packages the Node layer re-exports (they ship none): the Node APIs they implement.
declare module 'events/events.js' {
  import { EventEmitter } from 'node:events';
  export = EventEmitter;
}
declare module 'path-browserify' {
  import path from 'node:path';
  export = path;
}
declare module 'util/util.js' {
  import util from 'node:util';
  export = util;
}
declare module '@pkgjs/parseargs' {
  export { parseArgs } from 'node:util';
}
declare module 'assert/build/assert.js' {
  import assert from 'node:assert';
  export = assert;
}
declare module 'string_decoder/lib/string_decoder.js' {
  export { StringDecoder } from 'node:string_decoder';
}
declare module 'readable-stream/lib/ours/browser.js' {
  import stream from 'node:stream';
  export = stream;
}
declare module 'readable-stream/lib/stream/promises.js' {
  import promises from 'node:stream/promises';
  export = promises;
}
