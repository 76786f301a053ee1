// Finds (or installs) the real message brokers the broker suites run against, and records what it found
// in .brokers/brokers.json for test/helpers/brokers.ts:
// - RabbitMQ: Debian's `rabbitmq-server`, installed with apt-get when missing (as root).
// - Kafka 3.9.1 (KRaft): the broker's jars from Maven Central, resolved by `mvn dependency:build-classpath`
//   from test/brokers/kafka/pom.xml, run with the `java` on PATH.
// In CI (CI=true) a missing broker is an error; locally it is a warning and the broker suites skip with a
// printed reason. BROKERS.md-style notes on the pitfalls live in the harness.
import { spawnSync } from 'node:child_process';
import { accessSync, constants, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { delimiter, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const KAFKA_VERSION = '3.9.1';
const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const outDir = resolve(process.env.CLINIMESH_BROKERS_DIR || join(root, '.brokers'));
const recordFile = join(outDir, 'brokers.json');
const kafkaDir = join(root, 'test', 'brokers', 'kafka');
const inCi = process.env.CI === 'true';
const INSTALL_TIMEOUT_MS = 10 * 60_000;
// Debian's /usr/sbin/rabbitmq-server drops to the rabbitmq user and loses the RABBITMQ_* environment;
// the script under /usr/lib/rabbitmq/bin runs in the foreground with our environment.
const RABBITMQ_BIN_DIR = process.env.RABBITMQ_BIN_DIR || '/usr/lib/rabbitmq/bin';

function executable(path) {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function onPath(name) {
  const dirs = (process.env.PATH ?? '').split(delimiter).filter(Boolean);
  return dirs.map((dir) => join(dir, name)).find(executable);
}

function run(cmd, args, env = {}) {
  console.log(`brokers: $ ${cmd} ${args.join(' ')}`);
  const result = spawnSync(cmd, args, {
    stdio: 'inherit',
    timeout: INSTALL_TIMEOUT_MS,
    env: { ...process.env, ...env },
  });
  if (result.error) return `${cmd}: ${result.error.message}`;
  return result.status === 0 ? undefined : `${cmd} ${args[0]} exited with ${result.status ?? result.signal}`;
}

/** `{ server, ctl, epmd, version }` when RabbitMQ is installed, else `{ problem }`. */
function findRabbitMq() {
  const server = join(RABBITMQ_BIN_DIR, 'rabbitmq-server');
  const ctl = join(RABBITMQ_BIN_DIR, 'rabbitmqctl');
  if (!executable(server)) return { problem: `${server} not found` };
  const epmd = onPath('epmd') ?? ['/usr/bin/epmd', '/usr/lib/erlang/bin/epmd'].find(executable);
  if (!epmd) return { problem: 'epmd (Erlang) not found' };
  const dpkg = spawnSync('dpkg-query', ['-W', '-f=${Version}', 'rabbitmq-server'], { encoding: 'utf8' });
  return { server, ctl, epmd, version: dpkg.status === 0 ? dpkg.stdout.trim() : 'unknown' };
}

function installRabbitMq() {
  if (process.getuid?.() !== 0) return 'not root, so apt-get cannot install rabbitmq-server';
  if (!onPath('apt-get')) return 'apt-get not found';
  console.log('brokers: rabbitmq-server missing; installing it with apt-get');
  // The package's postinst cannot start a broker here (policy-rc.d); the tests start their own.
  const env = { DEBIAN_FRONTEND: 'noninteractive' };
  return (
    run('apt-get', ['update', '-qq'], env) ??
    run('apt-get', ['install', '-y', '-qq', '--no-install-recommends', 'rabbitmq-server'], env)
  );
}

function rabbitMq() {
  let found = findRabbitMq();
  if (found.problem) {
    const problem = installRabbitMq();
    if (problem) return { problem: `${found.problem}; install failed: ${problem}` };
    found = findRabbitMq();
  }
  return found;
}

/** `{ java, classpath, log4j, toolsLog4j, version }` once Maven resolved the jars, else `{ problem }`. */
function kafka() {
  const java = process.env.JAVA_BIN || onPath('java');
  if (!java) return { problem: 'java not found on PATH (Kafka needs Java 17)' };
  const mvn = onPath('mvn');
  if (!mvn) return { problem: 'mvn not found on PATH (it resolves the Kafka jars from Maven Central)' };
  mkdirSync(outDir, { recursive: true });
  const cpFile = join(outDir, 'kafka-classpath.txt');
  const pom = join(kafkaDir, 'pom.xml');
  const problem = run(mvn, [
    '-q',
    '-B',
    '-Dstyle.color=never',
    '-f',
    pom,
    'dependency:build-classpath',
    `-Dmdep.outputFile=${cpFile}`,
  ]);
  if (problem) return { problem: `resolving Kafka ${KAFKA_VERSION} jars: ${problem}` };
  const classpath = readFileSync(cpFile, 'utf8').trim().split(delimiter).filter(Boolean);
  const missing = classpath.filter((jar) => !existsSync(jar));
  if (!classpath.some((jar) => jar.endsWith(`kafka_2.13-${KAFKA_VERSION}.jar`)) || missing.length)
    return {
      problem: `the resolved classpath in ${cpFile} lacks kafka_2.13-${KAFKA_VERSION}.jar or has missing jars`,
    };
  return {
    java,
    classpath,
    log4j: join(kafkaDir, 'log4j.properties'),
    toolsLog4j: join(kafkaDir, 'tools-log4j.properties'),
    version: KAFKA_VERSION,
  };
}

const found = { rabbitmq: rabbitMq(), kafka: kafka() };
mkdirSync(outDir, { recursive: true });
writeFileSync(recordFile, `${JSON.stringify(found, null, 2)}\n`);

const problems = Object.entries(found).flatMap(([name, f]) => (f.problem ? [`${name}: ${f.problem}`] : []));
if (!found.rabbitmq.problem)
  console.log(`brokers: RabbitMQ ${found.rabbitmq.version} at ${found.rabbitmq.server}`);
if (!found.kafka.problem)
  console.log(
    `brokers: Kafka ${found.kafka.version}, ${found.kafka.classpath.length} jars, java ${found.kafka.java}`,
  );
if (problems.length) {
  const message = `brokers: not available (${problems.join('; ')}); recorded in ${recordFile}.`;
  if (inCi) {
    console.error(`${message}\nbrokers: CI=true, so this fails the run.`);
    process.exit(1);
  }
  console.warn(`warning: ${message}\nwarning: the suites for these brokers will be skipped.`);
}
