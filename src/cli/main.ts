// The clinimesh CLI: a thin client of the admin API plus offline commands.
import { bootstrapCommand } from './bootstrap.ts';
import { remoteCommand } from './remote.ts';
import { validateCommand } from './validate.ts';

const HELP = `clinimesh — a service mesh control plane for clinical services

  clinimesh serve [-f MANIFESTS…] [--data-dir DIR] [--xds-port 18000] [--admin-port 19000]
  clinimesh validate FILE|DIR…                  check manifests offline
  clinimesh bootstrap --service S --instance I  print an Envoy bootstrap for a sidecar
  clinimesh apply -f FILE|DIR… [--dry-run]      apply manifests (atomically) to a running control plane
  clinimesh delete -f FILE|DIR…                 delete the manifests named in the files
  clinimesh status                              per-sidecar sync status (ACKed versions, NACKs)
  clinimesh config-dump [--node NS/SVC/INST]    what a sidecar is being served
Remote commands take --admin URL (default $CLINIMESH_ADMIN or http://127.0.0.1:19000).`;

async function run(argv: string[]): Promise<number> {
  const [command, ...args] = argv;
  switch (command) {
    case 'serve': {
      const { runServe } = await import('./serve.ts');
      return runServe(args);
    }
    case 'validate':
      return validateCommand(args);
    case 'bootstrap':
      return bootstrapCommand(args);
    case 'apply':
    case 'delete':
    case 'status':
    case 'config-dump':
      return remoteCommand(command, args);
    default:
      console.log(HELP);
      return command && command !== 'help' && command !== '--help' ? 2 : 0;
  }
}

const code = await run(process.argv.slice(2));
if (code !== 0 || process.argv[2] !== 'serve') process.exitCode = code;
