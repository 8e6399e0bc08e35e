// `boxproxy run <ref|oci-layout> [--env K=V]… [--dir host:guest]… [-- args…]`: runs a Box like `docker run`.
import { ImageError } from '../../image/errors.js';
import { Command } from 'commander';
import { BoxError, defaultBoxCacheDir, loadBox } from '../../box/layout.js';
import { planRun, runPlanInProcess } from '../../box/runner.js';
import { UpstreamError } from '../../upstream/types.js';
import { OciLayoutSource } from '../../image/oci-layout.js';
import { KeyFileError, loadPublicKeys } from '../../sign/keys.js';
import { ImageRefError, openImage, type OpenedImage } from './image-ref.js';
import { verifyBoxReference } from './verify.js';

/** The Box could not be started (docker run uses 125 for the same); otherwise the status is the module's. */
export const EXIT_RUN_FAILED = 125;

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

interface RunCommandOptions {
  env: string[];
  dir: string[];
  cache?: string;
  insecure?: boolean;
  key: string[];
  insecureSkipVerify?: boolean;
}

export function runCommand(): Command {
  return new Command('run')
    .description('run a Box (registry reference or OCI layout directory) with Node WASI; exits with the module status')
    .argument('<image>', 'registry reference (host/repo:tag) or OCI image layout directory ([oci:]dir[:tag])')
    .argument('[args...]', "arguments replacing the Box's Cmd (put them after --)")
    .option('-e, --env <K=V>', 'set an environment variable (K alone passes this process\'s value); repeatable', collect, [])
    .option('-d, --dir <host:guest>', 'preopen a host directory at a guest path; repeatable', collect, [])
    .option('--cache <dir>', `where unpacked Boxes are kept (default ${defaultBoxCacheDir()})`)
    .option('--insecure', 'reach the registry over plain http')
    .option('-k, --key <pem>', "verify the Box's signatures with this public key before running (repeatable; default $BOXPROXY_KEY)", collect, [])
    .option('--insecure-skip-verify', 'run without checking signatures even when a key is given')
    .action(async (image: string, args: string[], opts: RunCommandOptions) => {
      process.exitCode = await runBoxCommand(image, args, opts);
    });
}

/**
 * With --key (or $BOXPROXY_KEY) and no --insecure-skip-verify: checks the Box's signatures in its registry and
 * returns the verified Box digest to run (so a tag moved after the check cannot swap what runs), or the exit status
 * when it must not run. Without a key: the reference as given.
 */
async function verifyBeforeRun(image: string, opened: OpenedImage, opts: RunCommandOptions): Promise<string | number> {
  const keys = opts.key.length > 0 ? opts.key : process.env.BOXPROXY_KEY ? [process.env.BOXPROXY_KEY] : [];
  if (opts.insecureSkipVerify || keys.length === 0) return opened.reference;
  if (opened.source instanceof OciLayoutSource) {
    process.stderr.write('boxproxy: refusing to run: signatures are checked in the registry and an OCI layout has none (use a registry reference, or --insecure-skip-verify)\n');
    return EXIT_RUN_FAILED;
  }
  const result = await verifyBoxReference({ reference: image, publicKeys: await loadPublicKeys(keys), ...(opts.insecure ? { insecure: true } : {}) });
  if (!result.ok || !result.boxDigest) {
    process.stderr.write(`boxproxy: refusing to run ${image}: signature verification failed: ${result.reasons.join('; ')}\n`);
    return EXIT_RUN_FAILED;
  }
  return result.boxDigest;
}

async function runBoxCommand(image: string, args: string[], opts: RunCommandOptions): Promise<number> {
  let plan;
  try {
    const opened = await openImage(image, { insecure: opts.insecure });
    try {
      const verified = await verifyBeforeRun(image, opened, opts);
      if (typeof verified !== 'string') return verified;
      const unpacked = await loadBox(opened.source, verified, opts.cache ? { cacheDir: opts.cache } : {});
      plan = await planRun(unpacked, { ...(args.length > 0 ? { args } : {}), env: opts.env, dirs: opts.dir });
    } finally {
      await opened.close();
    }
  } catch (err) {
    if (err instanceof BoxError || err instanceof ImageRefError || err instanceof ImageError || err instanceof UpstreamError || err instanceof KeyFileError) {
      process.stderr.write(`boxproxy: ${err.message}\n`);
      return EXIT_RUN_FAILED;
    }
    throw err;
  }
  for (const warning of plan.warnings) process.stderr.write(`boxproxy: warning: ${warning}\n`);
  // In-process: this process exists only for the module, so its exit status can simply be the module's.
  try {
    return await runPlanInProcess(plan, { exitProcess: true });
  } catch (err) {
    if (err instanceof BoxError) {
      process.stderr.write(`boxproxy: ${err.message}\n`);
      return EXIT_RUN_FAILED;
    }
    throw err;
  }
}
