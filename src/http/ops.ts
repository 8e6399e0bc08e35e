import type { Request, Response } from 'express';
import { metricsRegistry } from '../ops/metrics.js';

export interface Readiness {
  /** Why the server is not ready, or undefined when it is. */
  notReady(): string | undefined;
}

export async function metricsHandler(_req: Request, res: Response): Promise<void> {
  res.setHeader('Content-Type', metricsRegistry.contentType);
  res.end(await metricsRegistry.metrics());
}

export function healthzHandler(_req: Request, res: Response): void {
  res.status(200).json({ status: 'ok' });
}

/** Ready once the store is loaded; upstream health does not matter, the cache serves without it. */
export function readyzHandler(readiness: Readiness) {
  return (_req: Request, res: Response): void => {
    const reason = readiness.notReady();
    if (reason) res.status(503).json({ status: 'not ready', reason });
    else res.status(200).json({ status: 'ready' });
  };
}
