/**
 * Why reading or converting an image stopped. `refusal` errors are verdicts on the image (hostile or over a limit, or a format we
 * do not handle): the pipeline turns them into an `unconvertible` result with a report line. The others are
 * failures to obtain the image (network, corrupt storage) and propagate to the caller.
 */
export type ImageErrorCode =
  | 'MANIFEST_INVALID'
  | 'MANIFEST_UNKNOWN'
  | 'BLOB_UNKNOWN'
  | 'SOURCE_FAILED'
  | 'PLATFORM_NOT_FOUND'
  | 'UNSUPPORTED_MEDIA_TYPE'
  | 'UNSUPPORTED_COMPRESSION'
  | 'LAYER_CORRUPT'
  | 'LIMIT_EXCEEDED'
  | 'CONFIG_INVALID';

const REFUSALS: ReadonlySet<ImageErrorCode> = new Set<ImageErrorCode>([
  'MANIFEST_INVALID',
  'PLATFORM_NOT_FOUND',
  'UNSUPPORTED_MEDIA_TYPE',
  'UNSUPPORTED_COMPRESSION',
  'LAYER_CORRUPT',
  'LIMIT_EXCEEDED',
  'CONFIG_INVALID',
]);

export class ImageError extends Error {
  constructor(
    readonly code: ImageErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'ImageError';
  }

  /** True when the image itself is the problem (the result is "unconvertible", not a failure). */
  get refusal(): boolean {
    return REFUSALS.has(this.code);
  }
}
