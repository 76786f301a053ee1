// Installs the Kubernetes API schemas the manifests are validated against, offline, by
// test/unit/k8s-manifests.test.ts: the pinned `kubernetes-validate` wheel from PyPI (it bundles the
// JSON schemas of every Kubernetes minor it supports, strict variants included, and never fetches
// one), into the project virtual environment `.k8s-schemas/`, and records the validator's path in
// <venv>/VALIDATOR_PATH. Needs python3 and the package registry once; afterwards no network at all.
// In CI (CI=true) a failed install fails the run; locally it is a warning and the test skips with a
// printed reason.
import { spawnSync } from 'node:child_process';
import { existsSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const KUBERNETES_VALIDATE_VERSION = '1.37.0';
const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const venv = resolve(process.env.CLINIMESH_K8S_SCHEMAS_VENV || join(root, '.k8s-schemas'));
const validator = join(venv, 'bin', 'kubernetes-validate');
const pathFile = join(venv, 'VALIDATOR_PATH');
const inCi = process.env.CI === 'true';
const INSTALL_TIMEOUT_MS = 10 * 60_000;

/** The installed version, or undefined when the validator does not run. */
function installedVersion() {
  if (!existsSync(validator)) return undefined;
  const run = spawnSync(validator, ['--version'], { encoding: 'utf8', timeout: 60_000 });
  return run.status === 0 ? run.stdout.trim() : undefined;
}

function run(cmd, args) {
  console.log(`k8s-schemas: $ ${cmd} ${args.join(' ')}`);
  const result = spawnSync(cmd, args, { stdio: 'inherit', timeout: INSTALL_TIMEOUT_MS });
  if (result.error) return `${cmd}: ${result.error.message}`;
  return result.status === 0 ? undefined : `${cmd} exited with ${result.status ?? result.signal}`;
}

function install() {
  console.log(`k8s-schemas: installing kubernetes-validate==${KUBERNETES_VALIDATE_VERSION} into ${venv}`);
  return (
    run(process.env.PYTHON || 'python3', ['-m', 'venv', venv]) ??
    run(join(venv, 'bin', 'pip'), [
      'install',
      '--quiet',
      '--disable-pip-version-check',
      `kubernetes-validate==${KUBERNETES_VALIDATE_VERSION}`,
    ])
  );
}

function giveUp(reason) {
  rmSync(pathFile, { force: true });
  const message = `k8s-schemas: no Kubernetes schema validator (${reason}). Run \`npm run k8s-schemas\` with python3 and access to the package registry.`;
  if (inCi) {
    console.error(`${message}\nk8s-schemas: CI=true, so this fails the run.`);
    process.exit(1);
  }
  console.warn(`warning: ${message}\nwarning: the schema validation test will be skipped.`);
  process.exit(0);
}

let version = installedVersion();
if (version !== KUBERNETES_VALIDATE_VERSION) {
  const problem = install();
  if (problem) giveUp(`install failed: ${problem}`);
  version = installedVersion();
}
if (version !== KUBERNETES_VALIDATE_VERSION)
  giveUp(`${validator} does not report version ${KUBERNETES_VALIDATE_VERSION}`);
writeFileSync(pathFile, `${validator}\n`);
console.log(`k8s-schemas: ${validator} version ${version} (schemas bundled; validation runs offline)`);
