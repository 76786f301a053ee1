// Request and response plumbing shared by the admin routes: JSON out, problems as
// `{errors: [{code, message, …, text}]}` with the HTTP status their codes call for, bodies in with a
// size limit.
import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import { fail, formatProblem, ok, type Problem, type Result } from '../errors.ts';

/** The largest request body the admin API reads (4 MiB); stated in the 413 answer and `apply --help`. */
export const MAX_BODY_BYTES = 4 << 20;
export const MAX_BODY_TEXT = '4 MiB';

/** The problem of a body over the limit (HTTP 413). */
export const BODY_TOO_LARGE: Problem = {
  code: 'SCHEMA',
  message: `the request body is larger than the admin API's limit of ${MAX_BODY_TEXT} (${MAX_BODY_BYTES} bytes); apply fewer files at a time`,
};

export function send(
  res: ServerResponse,
  status: number,
  body: unknown,
  type = 'application/json',
  headers: OutgoingHttpHeaders = {},
): void {
  const text = typeof body === 'string' ? body : JSON.stringify(body, null, 2);
  res
    .writeHead(status, {
      ...headers,
      'content-type': type,
      'content-length': Buffer.byteLength(text),
      'cache-control': 'no-store',
    })
    .end(text);
}

export function problemsBody(problems: readonly Problem[]) {
  return { errors: problems.map((p) => ({ ...p, text: formatProblem(p) })) };
}

export function statusFor(problems: readonly Problem[]): number {
  if (problems.some((p) => p.code === 'UNAUTHENTICATED')) return 401;
  if (problems.some((p) => p.code === 'PERMISSION_DENIED')) return 403;
  if (problems.some((p) => p.code === 'NOT_FOUND')) return 404;
  if (problems.some((p) => p.code === 'CONFLICT')) return 409;
  // Consul (the shared store) could not be reached or refused: the change may work on a retry.
  if (problems.some((p) => p.code === 'CONSUL')) return 503;
  if (problems.some((p) => p.code === 'IO')) return 500;
  return 400;
}

export function sendProblems(
  res: ServerResponse,
  problems: readonly Problem[],
  status = statusFor(problems),
  headers: OutgoingHttpHeaders = {},
): void {
  send(res, status, problemsBody(problems), 'application/json', headers);
}

/** The body as text, or undefined when it is larger than the limit. */
export async function readBody(req: IncomingMessage): Promise<string | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of req as AsyncIterable<Buffer>) {
    size += c.length;
    if (size > MAX_BODY_BYTES) return undefined;
    chunks.push(c);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** A JSON object body, or a SCHEMA problem naming what was expected. */
export async function readJsonObject(
  req: IncomingMessage,
  expected: string,
): Promise<Result<Record<string, unknown>>> {
  const text = await readBody(req);
  if (text === undefined) return fail([BODY_TOO_LARGE]);
  try {
    const json: unknown = JSON.parse(text);
    if (typeof json === 'object' && json !== null && !Array.isArray(json))
      return ok(json as Record<string, unknown>);
  } catch {
    // fall through to the problem below
  }
  return fail([{ code: 'SCHEMA', message: `body must be a JSON object ${expected}` }]);
}
