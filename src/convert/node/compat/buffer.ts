// node:buffer: the `buffer` package from npm.
import * as npmBuffer from 'buffer/index.js';

const extra = npmBuffer as unknown as { SlowBuffer: unknown; INSPECT_MAX_BYTES: number; kMaxLength: number };
export const Buffer = npmBuffer.Buffer;
export const { SlowBuffer, INSPECT_MAX_BYTES, kMaxLength } = extra;
export const constants = { MAX_LENGTH: extra.kMaxLength, MAX_STRING_LENGTH: 2 ** 29 - 24 };
export default { Buffer, SlowBuffer, INSPECT_MAX_BYTES, kMaxLength, constants };
