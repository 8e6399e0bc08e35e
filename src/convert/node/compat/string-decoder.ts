// node:string_decoder: the `string_decoder` package from npm.
export { StringDecoder } from 'string_decoder/lib/string_decoder.js';
