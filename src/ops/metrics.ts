import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/**
 * One metrics registry per process. Modules record into these; `/metrics`
 * renders them. Labels are kept to bounded sets (route names, status codes,
 * upstream names) so cardinality cannot grow with traffic.
 */
export const metricsRegistry = new Registry();
collectDefaultMetrics({ register: metricsRegistry, prefix: 'boxproxy_' });

export const httpRequests = new Counter({
  name: 'boxproxy_http_requests_total',
  help: 'HTTP requests served, by route and status code',
  labelNames: ['route', 'method', 'status'] as const,
  registers: [metricsRegistry],
});

export const httpDuration = new Histogram({
  name: 'boxproxy_http_request_duration_seconds',
  help: 'Time to response headers, by route',
  labelNames: ['route'] as const,
  buckets: [0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5],
  registers: [metricsRegistry],
});

export const cacheLookups = new Counter({
  name: 'boxproxy_cache_lookups_total',
  help: 'Cache lookups by kind (blob, manifest, tag, tags_list, referrers) and result (hit, miss, stale)',
  labelNames: ['kind', 'result'] as const,
  registers: [metricsRegistry],
});

export const upstreamRequests = new Counter({
  name: 'boxproxy_upstream_requests_total',
  help: 'Requests sent upstream, by upstream, method and status (or error kind)',
  labelNames: ['upstream', 'method', 'status'] as const,
  registers: [metricsRegistry],
});

export const upstreamBytes = new Counter({
  name: 'boxproxy_upstream_bytes_total',
  help: 'Body bytes received from upstreams',
  labelNames: ['upstream'] as const,
  registers: [metricsRegistry],
});

export const upstreamErrors = new Counter({
  name: 'boxproxy_upstream_errors_total',
  help: 'Upstream failures by kind (unreachable, timeout, status, auth, digest)',
  labelNames: ['upstream', 'kind'] as const,
  registers: [metricsRegistry],
});

export const evictions = new Counter({
  name: 'boxproxy_store_evictions_total',
  help: 'Blobs evicted to stay under storage.maxBytes',
  registers: [metricsRegistry],
});

export const conversions = new Counter({
  name: 'boxproxy_conversions_total',
  help: 'Finished conversions by final state (done, failed, unconvertible) and strategy',
  labelNames: ['state', 'strategy'] as const,
  registers: [metricsRegistry],
});

export const conversionSeconds = new Histogram({
  name: 'boxproxy_conversion_seconds',
  help: 'Time from start to end of a conversion, including fetching the source layers',
  buckets: [0.1, 0.5, 1, 2, 5, 10, 30, 60, 300],
  registers: [metricsRegistry],
});

export const boxBytes = new Counter({
  name: 'boxproxy_box_bytes_total',
  help: 'Compressed bytes of Boxes produced',
  registers: [metricsRegistry],
});
