import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { defaultUpstreamName, signingKeyPath } from '../config/load.js';
import type { Config } from '../config/schema.js';
import { ConversionService } from '../conversions/service.js';
import { pickGzip } from '../convert/gzip/index.js';
import { BoxExposure } from '../exposure/exposure.js';
import { createApp } from '../http/app.js';
import type { StatusDeps } from '../http/status.js';
import { createLogger, type Logger } from '../ops/log.js';
import { PullThroughRegistry } from '../registry/registry.js';
import { UpstreamRouter, isDockerHub } from '../registry/upstreams.js';
import { RuntimeProvisioner } from '../runtimes/provision.js';
import { loadOrCreateKey } from '../sign/keys.js';
import { BlobStore } from '../store/blobs.js';
import { ConversionStore } from '../store/conversions.js';
import { RecordStore } from '../store/records.js';
import { createUpstreamClients, type UpstreamClient } from '../upstream/index.js';

export interface RunningProxy {
  url: string;
  port: number;
  registry: PullThroughRegistry;
  conversions: ConversionService | undefined;
  close(): Promise<void>;
}

export interface StartOptions {
  logger?: Logger;
  /** Obtains runtimes the catalog lacks; default: one built from conversion.runtimes. */
  runtimeProvisioner?: RuntimeProvisioner;
}

/** Wires store, upstream clients, the pull-through core, Box exposure and the HTTP app, and listens. */
export async function startProxy(config: Config, opts: StartOptions = {}): Promise<RunningProxy> {
  const logger = opts.logger ?? createLogger(config.log.level);
  const root = config.storage.path;
  const store = new BlobStore(root, { maxBytes: config.storage.maxBytes, logger });
  await store.init();
  const records = new RecordStore(root);
  const clients = createUpstreamClients(config.upstreams, logger);
  const router = new UpstreamRouter(
    config.upstreams.map((u) => ({ upstream: clients.get(u.name) as UpstreamClient, tagTtl: u.tagTtl, dockerHub: isDockerHub(u.name, u.url) })),
    defaultUpstreamName(config),
  );
  const registry = new PullThroughRegistry(router, store, records, { maxManifestBytes: config.limits.maxManifestBytes, logger });

  let conversions: ConversionService | undefined;
  let app;
  if (config.conversion.enabled) {
    const conv = config.conversion;
    const keyPath = signingKeyPath(config);
    const { key, created } = await loadOrCreateKey(keyPath, { warn: (msg: string) => logger.warn(msg) });
    logger.info({ keyPath, fingerprint: key.fingerprint, created }, created ? 'generated a Box signing key' : 'loaded the Box signing key');
    // Resolved once: conversion workers get the result, and start-up stops when igzip is required and missing.
    const gzip = await pickGzip(conv.gzip);
    logger.info({ gzip: gzip.name }, 'Box layers are written with ' + gzip.name);
    const conversionStore = new ConversionStore(root);
    await conversionStore.init();
    conversions = new ConversionService(
      registry,
      store,
      records,
      conversionStore,
      key,
      {
        storageRoot: root,
        workers: conv.workers,
        timeoutMs: conv.timeout,
        maxHeapMb: conv.maxHeapMb,
        retryFailedAfterMs: conv.retryFailedAfter,
        include: conv.include,
        exclude: conv.exclude,
        maxImageBytes: conv.maxImageBytes,
        runtimes: conv.runtimes,
        gzip: gzip.spec,
        provisioner: opts.runtimeProvisioner ?? new RuntimeProvisioner({
          build: conv.runtimes.build,
          ...(conv.runtimes.catalog !== undefined ? { catalogDir: conv.runtimes.catalog } : {}),
          ...(conv.runtimes.registry !== undefined ? { registry: conv.runtimes.registry } : {}),
          logger,
        }),
      },
      logger,
    );
    const exposure = new BoxExposure(
      registry,
      conversions,
      store,
      records,
      { mode: conv.exposure, boxNamespace: conv.boxNamespace, waitMs: conv.waitMs, boxWaitMs: conv.boxWaitMs, platforms: conv.platforms },
      logger,
    );
    const status: StatusDeps = { conversions, exposure, publicKeyPem: key.publicKey.pem };
    app = createApp({ registry: exposure, logger, status });
  } else {
    app = createApp({ registry, logger });
  }

  const { host, port } = splitListen(config.listen);
  const server: Server = app.listen(port, host);
  await once(server, 'listening');
  // Blob streams can be long; header timeouts stay short against slowloris.
  server.requestTimeout = 0;
  server.headersTimeout = 30_000;
  server.keepAliveTimeout = 65_000;
  const addr = server.address() as AddressInfo;
  const shownHost = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address === '0.0.0.0' ? '127.0.0.1' : addr.address;
  const url = `http://${shownHost}:${addr.port}`;
  logger.info({ listen: `${addr.address}:${addr.port}`, storage: root, upstreams: config.upstreams.map((u) => u.name) }, 'boxproxy listening');

  return {
    url,
    port: addr.port,
    registry,
    conversions,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await conversions?.close();
      await Promise.all([...clients.values()].map((c) => c.close()));
    },
  };
}

export function splitListen(listen: string): { host: string; port: number } {
  const i = listen.lastIndexOf(':');
  const host = listen.slice(0, i).replace(/^\[|\]$/g, '') || '0.0.0.0';
  return { host, port: Number(listen.slice(i + 1)) };
}
