// A throwaway RabbitMQ for one test file: Debian's broker run in the foreground from a temp dir, every
// port its own (AMQP on the asked host, Erlang distribution and epmd on 127.0.0.1, all from freePort), so
// parallel suites never meet. Stopped by its PID, then its epmd (which daemonizes) is killed by port.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { rabbitMqInstall } from './broker-install.ts';
import { atExit, BrokerProcess, lastLines } from './broker-process.ts';
import { freePort } from './ports.ts';
import { waitFor } from './wait.ts';

export interface StartRabbitMqOptions {
  /** Loopback address the AMQP listener binds (a per-pod 127.x.y.z in mesh tests). */
  readonly host?: string;
  /** Defaults to a free port on `host`. */
  readonly port?: number;
  readonly name?: string;
  readonly startTimeoutMs?: number;
}

export interface RabbitMq {
  readonly host: string;
  readonly port: number;
  /** `amqp://guest:guest@host:port` */
  readonly url: string;
  readonly nodename: string;
  readonly pid: number;
  readonly dir: string;
  /** The broker's own log (rabbit@….log) and the start script's output; works after stop(). */
  logTail(lines?: number): string;
  /** Lines of the broker log that record accepted AMQP connections ("accepting AMQP connection …"). */
  acceptedConnections(): string[];
  /** Runs rabbitmqctl against this node (`['list_connections', 'peer_host']`); stdout, or throws. */
  ctl(args: readonly string[]): string;
  stop(): Promise<void>;
}

function tcpOpen(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    socket.setTimeout(1_000);
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
    socket.once('timeout', () => done(false));
  });
}

interface Layout {
  dir: string;
  host: string;
  port: number;
  distPort: number;
  epmdPort: number;
  nodename: string;
}

function writeConfig({ dir, host, port }: Layout): void {
  mkdirSync(join(dir, 'mnesia'), { recursive: true });
  mkdirSync(join(dir, 'log'), { recursive: true });
  // loopback_users = none: the listener is loopback-only anyway, and through the mesh the broker sees
  // its sidecar's address, not the client's.
  const conf = [
    `listeners.tcp.1 = ${host}:${port}`,
    'loopback_users = none',
    'log.console = false',
    'log.file.level = debug',
  ];
  writeFileSync(join(dir, 'rabbitmq.conf'), `${conf.join('\n')}\n`);
  writeFileSync(join(dir, 'enabled_plugins'), '[].\n');
}

function rabbitEnv({ dir, host, port, distPort, epmdPort, nodename }: Layout): NodeJS.ProcessEnv {
  return {
    PATH: process.env.PATH,
    LANG: 'C.UTF-8',
    HOME: dir, // .erlang.cookie lives here; rabbitmqctl must use the same HOME
    RABBITMQ_CONF_ENV_FILE: join(dir, 'rabbitmq-env.conf'), // absent: skips /etc/rabbitmq/rabbitmq-env.conf
    RABBITMQ_NODENAME: nodename,
    RABBITMQ_NODE_IP_ADDRESS: host,
    RABBITMQ_NODE_PORT: String(port),
    RABBITMQ_DIST_PORT: String(distPort),
    ERL_EPMD_PORT: String(epmdPort),
    ERL_EPMD_ADDRESS: '127.0.0.1',
    RABBITMQ_CONFIG_FILE: join(dir, 'rabbitmq.conf'),
    RABBITMQ_ENABLED_PLUGINS_FILE: join(dir, 'enabled_plugins'),
    RABBITMQ_MNESIA_BASE: join(dir, 'mnesia'),
    RABBITMQ_LOG_BASE: join(dir, 'log'),
    RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS: '-kernel inet_dist_use_interface {127,0,0,1}',
  };
}

/** The node's main log (the upgrade log beside it is not wanted). */
function brokerLog({ dir, nodename }: Layout): string {
  const file = join(dir, 'log', `${nodename}.log`);
  return existsSync(file) ? readFileSync(file, 'utf8') : '';
}

export async function startRabbitMq(options: StartRabbitMqOptions = {}): Promise<RabbitMq> {
  const install = rabbitMqInstall();
  const host = options.host ?? '127.0.0.1';
  const port = options.port ?? (await freePort(host));
  const [distPort, epmdPort] = [await freePort(), await freePort()];
  const name = options.name ?? `rabbitmq-${port}`;
  const dir = mkdtempSync(join(tmpdir(), `clinimesh-rabbitmq-${port}-`));
  const layout: Layout = { dir, host, port, distPort, epmdPort, nodename: `rabbit${port}@localhost` };
  writeConfig(layout);
  const env = rabbitEnv(layout);
  const killEpmd = atExit(() => {
    spawnSync(install.epmd, ['-kill'], { env: { ...env }, stdio: 'ignore', timeout: 5_000 });
  });
  const broker = new BrokerProcess({
    name,
    command: install.server,
    args: [],
    env,
    cwd: dir,
    logFile: join(dir, 'server.out'),
  });
  let finalLog: string | undefined;
  const logTail = (lines = 60): string => {
    const text = finalLog ?? `${broker.log()}\n--- broker log ---\n${brokerLog(layout)}`;
    return lastLines(text, lines);
  };
  const stop = async (): Promise<void> => {
    await broker.stop();
    killEpmd();
    finalLog ??= `${broker.log()}\n--- broker log ---\n${brokerLog(layout)}`;
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    const timeoutMs = options.startTimeoutMs ?? 60_000;
    await broker.until(waitFor(() => tcpOpen(host, port), { what: `${name} AMQP port`, timeoutMs }));
  } catch (err) {
    const tail = logTail(60);
    await stop();
    throw new Error(`startRabbitMq ${name} failed: ${(err as Error).message}\n--- log ---\n${tail}`, {
      cause: err,
    });
  }
  return {
    host,
    port,
    url: `amqp://guest:guest@${host}:${port}`,
    nodename: layout.nodename,
    pid: broker.pid,
    dir,
    logTail,
    acceptedConnections: () =>
      (finalLog ?? brokerLog(layout)).split('\n').filter((l) => l.includes('accepting AMQP connection')),
    ctl: (args) => {
      const run = spawnSync(install.ctl, ['-n', layout.nodename, ...args], {
        env: { ...env },
        encoding: 'utf8',
        timeout: 30_000,
      });
      if (run.status !== 0) throw new Error(`rabbitmqctl ${args.join(' ')}: ${run.stderr || run.stdout}`);
      return run.stdout;
    },
    stop,
  };
}
