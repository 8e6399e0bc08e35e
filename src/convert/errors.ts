import { ImageError, type ImageErrorCode } from '../image/errors.js';

export type ConvertErrorCode = ImageErrorCode;

/** A conversion stage's error; image sources throw its base, ImageError, with the same codes and meaning. */
export class ConvertError extends ImageError {
  constructor(code: ConvertErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
    this.name = 'ConvertError';
  }
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
