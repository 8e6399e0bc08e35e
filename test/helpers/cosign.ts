// The cosign CLI (test/setup/tools.sh) verifying Boxes offline: a key, no transparency log, no TUF root from
// the network, plain-http registries. Which format it checked is in its output: cosign 3 takes a sigstore
// bundle referrer first (the referrers API) and falls back to the `.sig` tag when there is none.
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { run, type RunResult } from './proc.js';
import { toolBin } from './tools.js';

/** `critical.type` of what cosign printed: the bundle's predicate type, or simple signing's. */
export const COSIGN_VERIFIED_BUNDLE = 'https://sigstore.dev/cosign/sign/v1';
export const COSIGN_VERIFIED_SIG = 'cosign container image signature';

export interface CosignVerification extends RunResult {
  /** The digests and formats cosign printed as verified (empty when it failed). */
  verified: Array<{ digest: string; type: string }>;
}

/** `cosign verify --key <keyFile> --insecure-ignore-tlog --allow-http-registry <ref>`, with its own HOME. */
export async function cosignVerify(ref: string, keyFile: string, home: string): Promise<CosignVerification> {
  await mkdir(home, { recursive: true });
  const r = await run(toolBin('cosign'), ['verify', '--key', keyFile, '--insecure-ignore-tlog=true', '--allow-http-registry=true', '--output', 'json', ref], {
    allowFailure: true,
    env: { ...process.env, HOME: home, TUF_ROOT: join(home, 'tuf') },
    timeoutMs: 90_000,
  });
  let verified: CosignVerification['verified'] = [];
  if (r.code === 0) {
    const claims = JSON.parse(r.stdout) as Array<{ critical: { type: string; image: { 'docker-manifest-digest': string } } }>;
    verified = claims.map((c) => ({ digest: c.critical.image['docker-manifest-digest'], type: c.critical.type }));
  }
  return { ...r, verified };
}

/** What cosign says when no signature verifies (a tampered one, a foreign key). */
export const COSIGN_REJECTED = /no matching signatures|no matching attestations|no signatures found|invalid signature|verification failed|failed to verify|error verifying bundle/i;
