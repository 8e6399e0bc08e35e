import express, { type Express, type NextFunction, type Request, type Response } from 'express';
import { randomUUID } from 'node:crypto';
import type { Logger } from '../ops/log.js';
import { httpDuration, httpRequests } from '../ops/metrics.js';
import type { RegistryService } from '../registry/registry.js';
import { errorHandler, sendError } from './errors.js';
import { healthzHandler, metricsHandler, readyzHandler, type Readiness } from './ops.js';
import { v2Handler } from './v2.js';
import { statusRouter, type StatusDeps } from './status.js';
import { OciError } from '../oci/errors.js';

export interface AppDeps<Ref> {
  registry: RegistryService<Ref>;
  logger: Logger;
  readiness?: Readiness;
  /** Box conversion status API; absent when conversion is disabled. */
  status?: StatusDeps;
}

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/** Request id, structured access log and metrics for every request. */
function observe(logger: Logger) {
  return (req: Request, res: Response, next: NextFunction): void => {
    const start = process.hrtime.bigint();
    const incoming = req.headers['x-request-id'];
    const id = typeof incoming === 'string' && REQUEST_ID.test(incoming) ? incoming : randomUUID();
    res.setHeader('X-Request-Id', id);
    res.once('finish', () => {
      const seconds = Number(process.hrtime.bigint() - start) / 1e9;
      const route = (res.locals.route as string | undefined) ?? 'other';
      httpRequests.inc({ route, method: req.method, status: String(res.statusCode) });
      httpDuration.observe({ route }, seconds);
      logger.info(
        { reqId: id, method: req.method, url: req.originalUrl, status: res.statusCode, ms: Math.round(seconds * 1e4) / 10, route, bytes: res.getHeader('content-length') },
        'request',
      );
    });
    next();
  };
}

export function createApp<Ref>(deps: AppDeps<Ref>): Express {
  const app = express();
  app.disable('x-powered-by');
  app.disable('etag');
  app.set('query parser', 'simple');
  app.use(observe(deps.logger));
  app.use('/v2', v2Handler(deps.registry, deps.logger));
  const only = (route: string) => (req: Request, res: Response, next: NextFunction) => {
    res.locals.route = route;
    next();
  };
  if (deps.status) app.use('/boxproxy/v1', statusRouter(deps.status));
  app.get('/metrics', only('metrics'), metricsHandler);
  app.get('/healthz', only('healthz'), healthzHandler);
  app.get('/readyz', only('readyz'), readyzHandler(deps.readiness ?? { notReady: () => undefined }));
  app.use((req: Request, res: Response) => {
    sendError(res, new OciError('UNSUPPORTED', `no endpoint at ${JSON.stringify(req.path.slice(0, 200))}`, undefined, 404));
  });
  app.use(errorHandler(deps.logger));
  return app;
}
