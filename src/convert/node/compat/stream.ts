// node:stream: the `readable-stream` package from npm (Node's own streams, published by the Node.js project).
import stream from 'readable-stream/lib/ours/browser.js';

export default stream;
export const { Readable, Writable, Duplex, Transform, PassThrough, pipeline, finished, addAbortSignal } = stream;
export const Stream = stream;
export const promises = stream.promises;
