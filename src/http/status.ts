import express, { type Request, type Response, type Router } from 'express';
import { isDigest } from '../oci/digest.js';
import { OciError } from '../oci/errors.js';
import type { ConversionService } from '../conversions/service.js';
import type { BoxExposure } from '../exposure/exposure.js';
import type { ConversionRecord } from '../store/conversions.js';
import { sendError } from './errors.js';

export interface StatusDeps {
  conversions: ConversionService;
  exposure: BoxExposure;
  publicKeyPem: string;
}

function summary(rec: ConversionRecord) {
  return {
    source: rec.sourceDigest,
    upstream: rec.upstream,
    repository: rec.repository,
    state: rec.state,
    ...(rec.reason ? { reason: rec.reason } : {}),
    ...(rec.state === 'waiting-runtime' && rec.waitingFor
      ? { waiting: { runtime: rec.waitingFor, ...(rec.waiting ? { action: rec.waiting.action, detail: rec.waiting.detail, since: new Date(rec.waiting.since).toISOString() } : {}) } }
      : {}),
    ...(rec.box ? { box: rec.box.descriptor.digest, strategy: rec.box.strategy } : {}),
    converterVersion: rec.converterVersion,
    attempts: rec.attempts,
    updatedAt: new Date(rec.updatedAt).toISOString(),
  };
}

/** Splits `host/name:tag` or `name@sha256:…` into the routed name and the reference. */
export function splitReference(ref: string): { name: string; reference: string } | undefined {
  const at = ref.indexOf('@');
  if (at > 0) return { name: ref.slice(0, at), reference: ref.slice(at + 1) };
  const colon = ref.lastIndexOf(':');
  if (colon > ref.lastIndexOf('/')) return { name: ref.slice(0, colon), reference: ref.slice(colon + 1) };
  return { name: ref, reference: 'latest' };
}

/** /boxproxy/v1/: conversion status, pre-conversion and the public signing key. */
export function statusRouter(deps: StatusDeps): Router {
  const router = express.Router();
  const route = (id: string) => (_req: Request, res: Response, next: () => void) => {
    res.locals.route = id;
    next();
  };
  const fail = (res: Response, err: unknown) => {
    if (err instanceof OciError) sendError(res, err);
    else throw err;
  };

  router.get('/conversions', route('conversions'), (_req, res) => {
    res.json({ conversions: deps.conversions.list().map(summary) });
  });

  router.get('/conversions/:digest', route('conversion'), (req, res) => {
    const digest = req.params.digest as string;
    if (!isDigest(digest)) return fail(res, new OciError('DIGEST_INVALID', `invalid digest ${JSON.stringify(digest.slice(0, 200))}`));
    const rec = deps.conversions.get(digest);
    if (!rec) return fail(res, new OciError('MANIFEST_UNKNOWN', `no conversion of ${digest} is known`));
    res.json({ ...summary(rec), report: rec.report ?? null, ...(rec.box ? { boxDescriptor: rec.box.descriptor, signatures: rec.box.signatures } : {}) });
  });

  router.post('/conversions', route('conversions'), express.json({ limit: '16kb' }), async (req, res) => {
    try {
      const reference = (req.body as { reference?: unknown } | undefined)?.reference;
      const parts = typeof reference === 'string' ? splitReference(reference) : undefined;
      if (!parts) throw new OciError('UNSUPPORTED', 'body must be {"reference": "<registry>/<name>:<tag>"}', undefined, 400);
      const ref = deps.exposure.resolve(parts.name, undefined);
      const { source, record } = await deps.exposure.preconvert(ref, parts.reference);
      const status = record && record.state !== 'pending' && record.state !== 'running' && record.state !== 'waiting-runtime' ? 200 : 202;
      res.status(status).json(record ? summary(record) : { source, state: 'pending' });
    } catch (err) {
      fail(res, err);
    }
  });

  router.get('/signing-key', route('signing-key'), (_req, res) => {
    res.type('application/x-pem-file').send(deps.publicKeyPem);
  });
  return router;
}
