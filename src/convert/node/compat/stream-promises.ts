// node:stream/promises.
import promises from 'readable-stream/lib/stream/promises.js';

export default promises;
export const { pipeline, finished } = promises;
