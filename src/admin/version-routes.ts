// GET /v1/version: what is running (package version, git commit when known, Node version) and the
// state's revision. The CLI's `version` prints its own build beside the server's.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { AdminCall } from './deps.ts';
import { send } from './respond.ts';

export interface BuildInfo {
  readonly version: string;
  /** The git commit, from $CLINIMESH_COMMIT (images) or the checkout; undefined when neither is known. */
  readonly commit?: string;
  readonly node: string;
}

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
let cached: BuildInfo | undefined;

function packageVersion(): string {
  try {
    const json = JSON.parse(readFileSync(`${ROOT}package.json`, 'utf8')) as { version?: unknown };
    return typeof json.version === 'string' ? json.version : 'unknown';
  } catch {
    return 'unknown';
  }
}

function gitCommit(): string | undefined {
  if (process.env.CLINIMESH_COMMIT) return process.env.CLINIMESH_COMMIT;
  try {
    // Read once per process; a checkout without git (an image) just has no commit.
    return (
      execFileSync('git', ['rev-parse', '--short=12', 'HEAD'], {
        cwd: ROOT,
        timeout: 2000,
        stdio: ['ignore', 'pipe', 'ignore'],
      })
        .toString('utf8')
        .trim() || undefined
    );
  } catch {
    return undefined;
  }
}

export function buildInfo(): BuildInfo {
  cached ??= { version: packageVersion(), commit: gitCommit(), node: process.version };
  return cached;
}

export function version(call: AdminCall): void {
  send(call.res, 200, { ...buildInfo(), revision: call.deps.controlPlane.state().revision });
}
