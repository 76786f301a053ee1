// Structured logs: one JSON line per event on stderr, with a level and a message, for the control
// plane and the agent. Fields that could carry a secret are redacted by name wherever they appear,
// so a key or token passed by mistake is never written.
import { pino, type DestinationStream, type Logger } from 'pino';

export type { Logger } from 'pino';

export const REDACTED_FIELDS = [
  'privateKeyPem',
  'keyPem',
  'privateKey',
  'private_key',
  'token',
  'joinToken',
  'kubernetesToken',
  'secret',
  'authorization',
];

export interface LoggerOptions {
  /** trace | debug | info | warn | error | silent; default $CLINIMESH_LOG_LEVEL, else info (silent under vitest). */
  readonly level?: string;
  /** Where lines go; default stderr (stdout stays for command output). */
  readonly destination?: DestinationStream;
  readonly name?: string;
}

export function createLogger(o: LoggerOptions = {}): Logger {
  const level = o.level ?? process.env.CLINIMESH_LOG_LEVEL ?? (process.env.VITEST ? 'silent' : 'info');
  const paths = REDACTED_FIELDS.flatMap((f) => [f, `*.${f}`, `*.*.${f}`]);
  return pino(
    {
      name: o.name ?? 'clinimesh',
      level,
      redact: { paths, censor: '[redacted]' },
      base: undefined,
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    o.destination ?? pino.destination({ dest: 2, sync: true }),
  );
}

/** The process's logger; components take a child (`log.child({ component: 'xds' })`). */
export const log: Logger = createLogger();
