// The node agents' API, served beside REST xDS on the control plane's TLS port:
//   GET  /v1/agent/bundle   the trust bundle and renewal epoch (public: roots only)
//   POST /v1/agent/attest   evidence + two CSRs → the agent's first certificates (no client cert yet)
//   POST /v1/agent/renew    two CSRs, authenticated by the agent's current client certificate
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { TLSSocket } from 'node:tls';
import { fail, formatProblem, ok, type Problem, type Result } from '../errors.ts';
import { log as rootLog, type Logger } from '../log.ts';
import { peerIdentity } from '../xds/server/peer.ts';
import {
  undeclaredServiceProblems,
  type Attestor,
  type DeclaredService,
  type Evidence,
} from './attestation.ts';
import type { SignRequest, WorkloadSigner } from './workload-signer.ts';

export interface IdentityApiDeps {
  readonly attestor: Attestor;
  readonly signer: WorkloadSigner;
  /** Trust domains accepted in client certificates (the current one, and one a migration is leaving). */
  readonly trustDomains: () => readonly string[];
  /** Whether the identity a certificate names is still a declared Service (renewal needs it). */
  readonly declared: DeclaredService;
  /** Where attestations are logged (default the process logger); evidence is never logged. */
  readonly log?: Logger;
}

const MAX_BODY = 64 << 10;

function reply(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res
    .writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) })
    .end(text);
}

function replyProblems(res: ServerResponse, problems: readonly Problem[]): void {
  const code = problems[0]?.code;
  const status =
    code === 'UNAUTHENTICATED'
      ? 401
      : code === 'PERMISSION_DENIED'
        ? 403
        : code === 'NOT_FOUND'
          ? 404
          : code === 'IO'
            ? 503
            : 400;
  reply(res, status, { errors: problems.map((p) => ({ ...p, text: formatProblem(p) })) });
}

async function readJson(req: IncomingMessage): Promise<Result<Record<string, unknown>>> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of req as AsyncIterable<Buffer>) {
    size += c.length;
    if (size > MAX_BODY) return fail([{ code: 'SCHEMA', message: `body over ${MAX_BODY} bytes` }]);
    chunks.push(c);
  }
  try {
    const json: unknown = JSON.parse(Buffer.concat(chunks).toString('utf8'));
    if (json && typeof json === 'object' && !Array.isArray(json)) return ok(json as Record<string, unknown>);
  } catch {
    // fall through
  }
  return fail([{ code: 'SCHEMA', message: 'body must be a JSON object' }]);
}

function signRequestOf(body: Record<string, unknown>): Result<SignRequest> {
  const { xdsCsr, workloadCsr } = body;
  if (typeof xdsCsr !== 'string' || typeof workloadCsr !== 'string') {
    return fail([
      { code: 'SCHEMA', field: 'xdsCsr', message: 'xdsCsr and workloadCsr (PEM CSRs) are required' },
    ]);
  }
  return ok({ xdsCsr, workloadCsr });
}

function evidenceOf(body: Record<string, unknown>): Result<Evidence> {
  if (typeof body.joinToken === 'string') return ok({ joinToken: body.joinToken });
  if (typeof body.kubernetesToken === 'string') return ok({ kubernetesToken: body.kubernetesToken });
  return fail([
    {
      code: 'UNAUTHENTICATED',
      field: 'joinToken',
      message: 'attestation needs joinToken or kubernetesToken',
    },
  ]);
}

/**
 * The identity a verified client certificate carries: `spiffe://<td>/ns/<ns>/sa/<service>`, and the
 * instance it is bound to, which a renewal keeps.
 */
function provenIdentity(
  req: IncomingMessage,
  trustDomains: readonly string[],
): Result<{ namespace: string; service: string; spiffeId: string; boundInstance?: string }> {
  const socket = req.socket as TLSSocket;
  const proved = socket.authorized ? peerIdentity(socket) : undefined;
  const uri = proved?.spiffeId;
  const m = uri && /^spiffe:\/\/([^/]+)\/ns\/([a-z0-9-]+)\/sa\/([a-z0-9-]+)$/.exec(uri);
  if (!m || !trustDomains.includes(m[1]!)) {
    return fail([
      {
        code: 'UNAUTHENTICATED',
        message:
          'renewal needs a valid client certificate from this mesh (re-attest with a join token if it expired)',
      },
    ]);
  }
  const bound = proved.instance;
  return ok({
    namespace: m[2]!,
    service: m[3]!,
    spiffeId: m[0],
    ...(bound !== undefined && { boundInstance: bound }),
  });
}

function abandon(res: ServerResponse): void {
  if (!res.headersSent) res.destroy();
}

export function identityApi(deps: IdentityApiDeps): (req: IncomingMessage, res: ServerResponse) => boolean {
  const log = (deps.log ?? rootLog).child({ component: 'identity' });
  return (req, res) => {
    const path = (req.url ?? '').split('?')[0];
    if (req.method === 'GET' && path === '/v1/agent/bundle') {
      reply(res, 200, deps.signer.bundle());
      return true;
    }
    if (req.method === 'POST' && path === '/v1/agent/attest') {
      // A client that aborts mid-body must cost nothing but its own request.
      attest(deps, req, res, log).catch(() => abandon(res));
      return true;
    }
    if (req.method === 'POST' && path === '/v1/agent/renew') {
      renew(deps, req, res).catch(() => abandon(res));
      return true;
    }
    return false;
  };
}

/** Which kind of evidence a request carried (never the evidence itself). */
function evidenceKind(e: Evidence): 'join-token' | 'kubernetes' {
  return 'joinToken' in e ? 'join-token' : 'kubernetes';
}

async function attest(
  deps: IdentityApiDeps,
  req: IncomingMessage,
  res: ServerResponse,
  log: Logger,
): Promise<void> {
  const body = await readJson(req);
  if (!body.ok) return replyProblems(res, body.errors);
  const csrs = signRequestOf(body.value);
  if (!csrs.ok) return replyProblems(res, csrs.errors);
  const evidence = evidenceOf(body.value);
  if (!evidence.ok) return replyProblems(res, evidence.errors);
  // The evidence first: whoever sends it is not authenticated yet, and a token check is a hash
  // where a CSR check is a signature verification.
  const instance = typeof body.value.instance === 'string' ? body.value.instance : undefined;
  const attested = await deps.attestor.attest(evidence.value, instance);
  const remoteAddress = req.socket.remoteAddress;
  if (!attested.ok) {
    const reasons = attested.errors.map(formatProblem);
    log.warn(
      { method: evidenceKind(evidence.value), remoteAddress, instance, reasons },
      'attestation refused',
    );
    return replyProblems(res, attested.errors);
  }
  const a = attested.value;
  // One-time evidence is spent only once the certificates exist; a refusal gives it back before
  // the answer, so that a corrected retry finds it free.
  const unusable = deps.signer.precheck(csrs.value);
  if (unusable.length) {
    await a.settle?.release();
    return replyProblems(res, unusable);
  }
  const signed = deps.signer.sign(a, csrs.value);
  const spent = signed.ok ? await (a.settle?.spend() ?? { ok: true as const, value: undefined }) : undefined;
  if (!signed.ok) await a.settle?.release();
  if (spent && !spent.ok) return replyProblems(res, spent.errors);
  if (!signed.ok) {
    log.warn(
      { method: a.method, subject: a.subject, remoteAddress, reasons: signed.errors.map(formatProblem) },
      'attestation refused: certificate requests unusable',
    );
    return replyProblems(res, signed.errors);
  }
  log.info(
    {
      method: a.method,
      subject: a.subject,
      identity: signed.value.spiffeId,
      instance: a.instance,
      remoteAddress,
    },
    'attestation accepted',
  );
  reply(res, 200, { ...signed.value, ...(a.instance && { instance: a.instance }) });
}

async function renew(deps: IdentityApiDeps, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const id = provenIdentity(req, deps.trustDomains());
  if (!id.ok) return replyProblems(res, id.errors);
  const { spiffeId, ...proven } = id.value;
  // A valid certificate proves who asks, not that the mesh still has that Service.
  const gone = undeclaredServiceProblems(deps.declared, proven, spiffeId, 'renewed');
  if (gone.length) return replyProblems(res, gone);
  const body = await readJson(req);
  if (!body.ok) return replyProblems(res, body.errors);
  const csrs = signRequestOf(body.value);
  if (!csrs.ok) return replyProblems(res, csrs.errors);
  const signed = deps.signer.sign(proven, csrs.value);
  return signed.ok ? reply(res, 200, signed.value) : replyProblems(res, signed.errors);
}
