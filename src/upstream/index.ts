import type { UpstreamConfig } from '../config/schema.js';
import type { Logger } from '../ops/log.js';
import { UpstreamClient } from './client.js';

export { UpstreamClient, type UpstreamClientOptions } from './client.js';
export { UpstreamError, type UpstreamFailureKind, type UpstreamMethod, type UpstreamRequest, type UpstreamResponse } from './types.js';

/** One client per configured upstream, by name. */
export function createUpstreamClients(configs: readonly UpstreamConfig[], logger: Logger): Map<string, UpstreamClient> {
  return new Map(configs.map((c) => [c.name, new UpstreamClient(c, logger)]));
}
