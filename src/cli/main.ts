// The clinimesh CLI: a thin client of the admin API plus offline commands. Every command answers
// --help/-h with its usage (exit 0). A command line that cannot run is one line and the command's
// usage on stderr (exit 2); any other failure is one line (exit 1; diff: 2, as kubectl diff).
// Never a stack trace: whatever escapes a command is caught here and printed as one line.
import { AlreadyReported, CommandError, UsageError } from './cli-support.ts';
import { HELP, USAGE } from './usage.ts';

type Run = (args: string[]) => Promise<number>;

const COMMANDS: Readonly<Record<string, Run>> = {
  serve: async (args) => (await import('./serve.ts')).runServe(args),
  validate: async (args) => (await import('./validate.ts')).validateCommand(args),
  agent: async (args) => (await import('./agent.ts')).agentCommand(args),
  apply: async (args) => (await import('./apply.ts')).applyCommand('apply', args),
  delete: async (args) => (await import('./apply.ts')).applyCommand('delete', args),
  diff: async (args) => (await import('./diff.ts')).diffCommand(args),
  get: async (args) => (await import('./get.ts')).getCommand(args),
  describe: async (args) => (await import('./describe.ts')).describeCommand(args),
  'proxy-status': async (args) => (await import('./proxy-status.ts')).proxyStatusCommand(args),
  status: async (args) => (await import('./remote.ts')).remoteCommand('status', args),
  'config-dump': async (args) => (await import('./remote.ts')).remoteCommand('config-dump', args),
  history: async (args) => (await import('./remote.ts')).remoteCommand('history', args),
  version: async (args) => (await import('./version.ts')).versionCommand(args),
  token: async (args) => (await import('./token.ts')).tokenCommand(args),
  'join-token': async (args) => (await import('./token.ts')).joinTokenCommand(args),
};

/** `--help` or `-h` anywhere before a `--` terminator. */
function asksForHelp(args: readonly string[]): boolean {
  const end = args.indexOf('--');
  return (end < 0 ? args : args.slice(0, end)).some((a) => a === '--help' || a === '-h');
}

async function run(command: string | undefined, args: string[]): Promise<number> {
  switch (command) {
    case 'analyze':
      return (await import('./analyze.ts')).analyzeCommand(args);
    case undefined:
    case 'help':
    case '--help':
    case '-h': {
      const topic = args[0] === undefined ? undefined : USAGE[args[0]];
      console.log(topic ?? HELP);
      return 0;
    }
  }
  const usage = USAGE[command];
  const runCommand = COMMANDS[command];
  if (!usage || !runCommand) throw new UsageError(`unknown command "${command}"`);
  if (asksForHelp(args)) {
    console.log(usage);
    return 0;
  }
  return runCommand(args);
}

/** The one line for a failure; Node's own errors keep their code. */
function oneLine(e: unknown): string {
  if (!(e instanceof Error)) return String(e).split('\n')[0]!;
  const first = e.message.split('\n')[0]!;
  const code = (e as NodeJS.ErrnoException).code;
  return e instanceof CommandError || !code || first.includes(code) ? first : `${first} (${code})`;
}

export async function main(argv: string[]): Promise<number> {
  const [command, ...args] = argv;
  const prefix = command && USAGE[command] ? `clinimesh ${command}` : 'clinimesh';
  try {
    return await run(command, args);
  } catch (e) {
    if (e instanceof UsageError) {
      console.error(`${prefix}: ${e.message}`);
      console.error(command && USAGE[command] ? USAGE[command] : HELP);
      return 2;
    }
    if (!(e instanceof AlreadyReported)) console.error(`${prefix}: ${oneLine(e)}`);
    return command === 'diff' ? 2 : 1;
  }
}

const LONG_RUNNING = new Set(['serve', 'agent']);

function lastResort(e: unknown): void {
  console.error(`clinimesh: ${oneLine(e)}`);
  process.exit(1);
}
process.on('uncaughtException', lastResort);
process.on('unhandledRejection', lastResort);

const command = process.argv[2];
const code = await main(process.argv.slice(2));
// serve and agent keep running after they return 0; when they fail, listeners they opened must not
// keep the process alive.
const longRunning = command !== undefined && LONG_RUNNING.has(command);
if (longRunning && code !== 0) process.exit(code);
if (!longRunning) process.exitCode = code;
