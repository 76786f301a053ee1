// Running the real CLI as an operator does: `node bin/clinimesh.js …` in a child process, with only
// the environment given (no CLINIMESH_* leaking in from the test run), optional stdin.
import { execFile } from 'node:child_process';
import { resolve } from 'node:path';

const CLI = resolve('bin/clinimesh.js');

export interface CliRun {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

export function clinimesh(
  args: readonly string[],
  o: { env?: Record<string, string>; cwd?: string; stdin?: string } = {},
): Promise<CliRun> {
  const env = { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...o.env };
  return new Promise((done) => {
    const child = execFile(
      process.execPath,
      [CLI, ...args],
      { env, cwd: o.cwd, timeout: 60_000 },
      (error, stdout, stderr) => {
        done({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout, stderr });
      },
    );
    child.stdin?.end(o.stdin ?? '');
  });
}

/** stderr as lines, without the trailing newline. */
export const stderrLines = (run: CliRun): string[] => run.stderr.replace(/\n$/, '').split('\n');
