/**
 * Why a conversion stopped. `refusal` errors are verdicts on the image (hostile or over a limit, or a format we
 * do not handle): the pipeline turns them into an `unconvertible` result with a report line. The others are
 * failures to obtain the image (network, corrupt storage) and propagate to the caller.
 */
export type ConvertErrorCode =
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

const REFUSALS: ReadonlySet<ConvertErrorCode> = new Set<ConvertErrorCode>([
  'MANIFEST_INVALID',
  'PLATFORM_NOT_FOUND',
  'UNSUPPORTED_MEDIA_TYPE',
  'UNSUPPORTED_COMPRESSION',
  'LAYER_CORRUPT',
  'LIMIT_EXCEEDED',
  'CONFIG_INVALID',
]);

export class ConvertError extends Error {
  constructor(
    readonly code: ConvertErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'ConvertError';
  }

  /** True when the image itself is the problem (the result is "unconvertible", not a failure). */
  get refusal(): boolean {
    return REFUSALS.has(this.code);
  }
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
