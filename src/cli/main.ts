// The clinimesh CLI: a thin client of the admin API plus offline commands. Every failure is one
// line on stderr (exit 1; a command line that cannot run, exit 2), never a stack trace.
import { agentCommand } from './agent.ts';
import { UsageError } from './cli-support.ts';
import { remoteCommand } from './remote.ts';
import { JOIN_TOKEN_USAGE, TOKEN_USAGE, joinTokenCommand, tokenCommand } from './token.ts';
import { validateCommand } from './validate.ts';

const HELP = `clinimesh — a service mesh control plane for clinical services

  clinimesh serve [-f MANIFESTS…] [--data-dir DIR] [--host H] [--xds-port 18000]
                  [--admin-host 127.0.0.1] [--admin-port 19000] [--admin-allowed-host NAME…] [--metrics-public]
  clinimesh validate FILE|DIR…                  check manifests offline
  clinimesh agent --control-plane H:P --out-dir D --join-token T   the node agent beside one Envoy
  clinimesh apply -f FILE|DIR… [--dry-run]      apply manifests (atomically) to a running control plane
  clinimesh delete -f FILE|DIR…                 delete the manifests named in the files
  clinimesh status                              per-sidecar sync status (ACKed versions, NACKs)
  clinimesh config-dump [--node NS/SVC/INST]    what a sidecar is being served
  clinimesh history [--limit N] [--json]        who changed what, and the revision it left
  ${TOKEN_USAGE.split('\n').join('\n  ')}
  ${JOIN_TOKEN_USAGE}
Remote commands take --credential FILE (else $CLINIMESH_CREDENTIAL, else $CLINIMESH_TOKEN with
$CLINIMESH_ADMIN and $CLINIMESH_CA_FILE, else ./.clinimesh/admin-credential.json) and --admin URL.`;

async function run(argv: string[]): Promise<number> {
  const [command, ...args] = argv;
  switch (command) {
    case 'serve': {
      const { runServe } = await import('./serve.ts');
      return runServe(args);
    }
    case 'validate':
      return validateCommand(args);
    case 'agent':
      return agentCommand(args);
    case 'apply':
    case 'delete':
    case 'status':
    case 'config-dump':
    case 'history':
      return remoteCommand(command, args);
    case 'token':
      return tokenCommand(args);
    case 'join-token':
      return joinTokenCommand(args);
    default:
      console.log(HELP);
      return command && command !== 'help' && command !== '--help' ? 2 : 0;
  }
}

function isArgumentError(e: unknown): boolean {
  return typeof (e as NodeJS.ErrnoException).code === 'string' && (e as NodeJS.ErrnoException).code!.startsWith('ERR_PARSE_ARGS');
}

async function main(argv: string[]): Promise<number> {
  try {
    return await run(argv);
  } catch (e) {
    if (e instanceof UsageError) {
      if (e.message !== e.usage) console.error(`clinimesh: ${e.message}`);
      console.error(e.usage);
      return 2;
    }
    if (isArgumentError(e)) {
      console.error(`clinimesh: ${(e as Error).message.split('\n')[0]}`);
      return 2;
    }
    console.error(`clinimesh: ${e instanceof Error ? e.message.split('\n')[0] : String(e)}`);
    return 1;
  }
}

const code = await main(process.argv.slice(2));
// serve and agent keep running after they return 0.
if (code !== 0 || (process.argv[2] !== 'serve' && process.argv[2] !== 'agent')) process.exitCode = code;
