// Child-process entry of runPlanIsolated: receives one RunPlan over IPC, runs it, exits with the module's status.
import { runPlanInProcess, type RunPlan } from './runner.js';

process.once('message', (plan: RunPlan) => {
  // The IPC channel would keep this process alive; it is closed once the handler has returned (closing it
  // inside the handler trips Node's channel bookkeeping).
  setImmediate(() => process.disconnect?.());
  runPlanInProcess(plan, { exitProcess: true }).then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      process.stderr.write(`boxproxy: ${(err as Error).message ?? String(err)}\n`);
      process.exitCode = 125;
    },
  );
});
