// ECDSA signatures in two encodings: WebCrypto and JWS use raw r||s (fixed width),
// cosign, DSSE bundles and openssl use the ASN.1 DER ECDSA-Sig-Value
// `SEQUENCE { r INTEGER, s INTEGER }`.

/** Byte width of r and s for P-256. */
export const P256_SCALAR_BYTES = 32;

export class DerSignatureError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DerSignatureError';
  }
}

/** Unsigned big-endian scalar -> DER INTEGER content bytes (minimal, non-negative). */
function integerContent(scalar: Uint8Array): Buffer {
  let start = 0;
  // Strip leading zeros but keep one byte: zero itself is encoded as 0x00.
  while (start < scalar.length - 1 && scalar[start] === 0) start++;
  const trimmed = Buffer.from(scalar.subarray(start));
  // A set top bit would read as negative: prefix 0x00.
  return (trimmed[0] ?? 0) & 0x80 ? Buffer.concat([Buffer.from([0]), trimmed]) : trimmed;
}

function derLength(length: number): Buffer {
  // For P-256 every length is < 128 (short form); long form kept for other widths.
  if (length < 0x80) return Buffer.from([length]);
  const bytes: number[] = [];
  for (let n = length; n > 0; n >>= 8) bytes.unshift(n & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

/** Raw r||s (as WebCrypto returns it) -> DER ECDSA-Sig-Value. */
export function rawToDer(raw: Uint8Array): Buffer {
  if (raw.length === 0 || raw.length % 2 !== 0) {
    throw new DerSignatureError(`raw ECDSA signature must be r||s of equal halves, got ${raw.length} bytes`);
  }
  const half = raw.length / 2;
  const parts = [integerContent(raw.subarray(0, half)), integerContent(raw.subarray(half))].map((content) =>
    Buffer.concat([Buffer.from([0x02]), derLength(content.length), content]),
  );
  const body = Buffer.concat(parts);
  return Buffer.concat([Buffer.from([0x30]), derLength(body.length), body]);
}

/** Reads a DER length at `offset`; returns [length, offset after the length bytes]. */
function readLength(der: Uint8Array, offset: number): [number, number] {
  const first = der[offset];
  if (first === undefined) throw new DerSignatureError('truncated DER length');
  if (first < 0x80) return [first, offset + 1];
  const count = first & 0x7f;
  // DER forbids indefinite length (0x80) and long form for lengths < 128.
  if (count === 0 || count > 2) throw new DerSignatureError('unsupported DER length encoding');
  let length = 0;
  for (let i = 1; i <= count; i++) {
    const byte = der[offset + i];
    if (byte === undefined) throw new DerSignatureError('truncated DER length');
    length = (length << 8) | byte;
  }
  if (length < 0x80 || (count === 2 && length < 0x100)) throw new DerSignatureError('non-minimal DER length');
  return [length, offset + 1 + count];
}

/** Reads one INTEGER at `offset` and returns it left-padded to `width` bytes plus the next offset. */
function readScalar(der: Uint8Array, offset: number, width: number): [Buffer, number] {
  if (der[offset] !== 0x02) throw new DerSignatureError('expected DER INTEGER');
  const [length, start] = readLength(der, offset + 1);
  const end = start + length;
  if (length === 0 || end > der.length) throw new DerSignatureError('truncated DER INTEGER');
  const content = der.subarray(start, end);
  const lead = content[0] ?? 0;
  if (lead & 0x80) throw new DerSignatureError('negative DER INTEGER');
  // Strict DER: a leading 0x00 is only allowed in front of a byte with its top bit set.
  if (lead === 0 && content.length > 1 && ((content[1] ?? 0) & 0x80) === 0) {
    throw new DerSignatureError('non-minimal DER INTEGER');
  }
  const magnitude = lead === 0 && content.length > 1 ? content.subarray(1) : content;
  if (magnitude.length > width) throw new DerSignatureError(`DER INTEGER wider than ${width} bytes`);
  const out = Buffer.alloc(width);
  out.set(magnitude, width - magnitude.length);
  return [out, end];
}

/** DER ECDSA-Sig-Value -> raw r||s with each half `scalarBytes` wide (32 for P-256). */
export function derToRaw(der: Uint8Array, scalarBytes: number = P256_SCALAR_BYTES): Buffer {
  if (der[0] !== 0x30) throw new DerSignatureError('expected DER SEQUENCE');
  const [length, bodyStart] = readLength(der, 1);
  if (bodyStart + length !== der.length) throw new DerSignatureError('DER SEQUENCE length does not match the signature size');
  const [r, afterR] = readScalar(der, bodyStart, scalarBytes);
  const [s, afterS] = readScalar(der, afterR, scalarBytes);
  if (afterS !== der.length) throw new DerSignatureError('trailing bytes after DER INTEGERs');
  return Buffer.concat([r, s]);
}
