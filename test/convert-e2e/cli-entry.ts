// The boxproxy CLI for tests: src/cli/program.ts plus the convert and run commands, for as long as the program
// does not register them itself (then this adds nothing and behaves exactly like src/cli/main.ts).
import { convertCommand } from '../../src/cli/commands/convert.js';
import { runCommand } from '../../src/cli/commands/run.js';
import { buildProgram } from '../../src/cli/program.js';

const program = buildProgram();
for (const command of [convertCommand(), runCommand()]) {
  if (!program.commands.some((c) => c.name() === command.name())) program.addCommand(command);
}
program.parseAsync(process.argv).catch((err: unknown) => {
  process.stderr.write(`boxproxy: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
