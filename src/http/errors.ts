import type { NextFunction, Request, Response } from 'express';
import { OciError } from '../oci/errors.js';
import type { Logger } from '../ops/log.js';

export function sendError(res: Response, err: OciError): void {
  if (res.headersSent) {
    res.destroy(err);
    return;
  }
  const body = JSON.stringify(err.toJSON());
  res.status(err.status).type('application/json').setHeader('Content-Length', Buffer.byteLength(body));
  res.end(res.req.method === 'HEAD' ? undefined : body);
}

/** Last express handler: anything that is not an OciError is a bug, logged and answered as a 500. */
export function errorHandler(logger: Logger) {
  return (err: unknown, req: Request, res: Response, _next: NextFunction): void => {
    if (err instanceof OciError) {
      sendError(res, err);
      return;
    }
    // Express marks its own client errors (bad JSON, URI malformed) with a status.
    const status = (err as { status?: number }).status;
    if (typeof status === 'number' && status >= 400 && status < 500) {
      sendError(res, new OciError('UNSUPPORTED', (err as Error).message, undefined, status));
      return;
    }
    logger.error({ err, reqId: res.getHeader('x-request-id'), url: req.originalUrl }, 'unhandled error');
    sendError(res, new OciError('UNKNOWN', 'internal error'));
  };
}
