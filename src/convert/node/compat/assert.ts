// node:assert: the `assert` package from npm.
import assert from 'assert/build/assert.js';
export default assert;
export const { ok, equal, notEqual, deepEqual, notDeepEqual, deepStrictEqual, notDeepStrictEqual, strictEqual, notStrictEqual, throws, doesNotThrow, rejects, doesNotReject, match, doesNotMatch, fail, AssertionError } = assert;
export const strict = assert.strict;
