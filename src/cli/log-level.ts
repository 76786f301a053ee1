// `--log-level` for the long-running commands (serve, agent): flag, else $CLINIMESH_LOG_LEVEL, else
// info. Set on the process logger before anything takes a child of it (children copy the level).
import { log } from '../log.ts';

export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;
export const LOG_LEVEL_USAGE = `[--log-level ${LOG_LEVELS.join('|')} (default $CLINIMESH_LOG_LEVEL, else info)]`;

/** Applies the level; returns an error line for an unknown one. */
export function applyLogLevel(flag: string | undefined): string | undefined {
  const level = flag ?? process.env.CLINIMESH_LOG_LEVEL ?? 'info';
  if (!(LOG_LEVELS as readonly string[]).includes(level))
    return `--log-level must be one of ${LOG_LEVELS.join(', ')}, got '${level}'`;
  log.level = level;
  return undefined;
}
