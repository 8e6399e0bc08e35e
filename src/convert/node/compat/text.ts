// TextEncoder / TextDecoder (UTF-8, and the encodings Buffer knows) for QuickJS, which has neither.
import { Buffer } from 'buffer';

export class TextEncoder {
  readonly encoding = 'utf-8';
  encode(input = ''): Uint8Array {
    const b = Buffer.from(String(input), 'utf8');
    return new Uint8Array(b.buffer, b.byteOffset, b.length);
  }
  encodeInto(input: string, dest: Uint8Array): { read: number; written: number } {
    const bytes = this.encode(input);
    const n = Math.min(bytes.length, dest.length);
    dest.set(bytes.subarray(0, n));
    return { read: n === bytes.length ? input.length : Buffer.from(bytes.subarray(0, n)).toString('utf8').length, written: n };
  }
}

export class TextDecoder {
  readonly encoding: string;
  readonly fatal: boolean;
  readonly ignoreBOM: boolean;
  constructor(label = 'utf-8', options: { fatal?: boolean; ignoreBOM?: boolean } = {}) {
    const l = label.toLowerCase();
    this.encoding = l === 'utf8' ? 'utf-8' : l;
    this.fatal = options.fatal ?? false;
    this.ignoreBOM = options.ignoreBOM ?? false;
  }
  decode(input?: ArrayBuffer | ArrayBufferView): string {
    if (input === undefined) return '';
    const bytes = input instanceof ArrayBuffer ? Buffer.from(input) : Buffer.from(input.buffer, input.byteOffset, input.byteLength);
    const enc = this.encoding === 'utf-8' ? 'utf8' : (this.encoding as BufferEncoding);
    const text = bytes.toString(enc);
    return !this.ignoreBOM && text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
  }
}
