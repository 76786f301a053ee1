// An in-process double of the Kubernetes API server's TokenReview endpoint, on HTTPS 127.0.0.1:<port>
// with a cluster CA made at start. It follows the documented API (authentication.k8s.io/v1):
//   - callers authenticate with a bearer token (401 Status otherwise) and need the ClusterRole
//     system:auth-delegator to create tokenreviews (403 Status otherwise);
//   - POST /apis/authentication.k8s.io/v1/tokenreviews answers 201 with the review echoed and a
//     status: `authenticated` (omitted when false, as Go's omitempty does), `user` {username, uid,
//     groups, extra}, `audiences` = the requested audiences (the API server's own when none are
//     requested) intersected with the token's, and `error` when the token is refused;
//   - service-account tokens are signed JWTs (tokens.ts): expired ones, ones for other audiences and
//     ones bound to a deleted pod are refused; user tokens model a static-token or OIDC
//     authenticator (audience-agnostic unless given audiences).
// Test controls (mint, grant, delete a pod, stall, move the clock) act directly on the state.
import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { makeServingTls } from './tls.ts';
import { ISSUER, TokenIssuer } from './tokens.ts';

export const TOKEN_REVIEW_PATH = '/apis/authentication.k8s.io/v1/tokenreviews';
export const AUTH_DELEGATOR = 'system:auth-delegator';

export interface MintOptions {
  readonly namespace: string;
  readonly serviceAccount: string;
  /** Default: the API server's own audience, as a default service-account token mount has. */
  readonly audiences?: readonly string[];
  readonly expiresInSeconds?: number;
  /** Binds the token to a pod (projected volumes always do); the pod exists until `deletePod`. */
  readonly podName?: string;
}

export interface UserTokenOptions {
  readonly username: string;
  readonly groups?: readonly string[];
  /** An audience-aware authenticator's audiences (OIDC); audience-agnostic when absent. */
  readonly audiences?: readonly string[];
}

interface User {
  readonly username: string;
  readonly uid: string;
  readonly groups: readonly string[];
  readonly extra?: Readonly<Record<string, readonly string[]>>;
}

type Authentication = { user: User; audiences: readonly string[] } | { error?: string };

export interface RecordedReview {
  readonly reviewer: string;
  readonly audiences: readonly string[];
  readonly authenticated: boolean;
}

export class KubernetesApiDouble {
  readonly caPem: string;
  /** The API server's audiences (--api-audiences; kubeadm's default is the issuer). */
  readonly apiAudiences: readonly string[] = [ISSUER];
  readonly reviews: RecordedReview[] = [];
  /** When true, requests are accepted and never answered (a hung API server). */
  stalled = false;
  #clockOffsetS = 0;
  readonly #issuer = new TokenIssuer();
  readonly #server: Server;
  readonly #sockets = new Set<Socket>();
  readonly #users = new Map<string, UserTokenOptions>();
  readonly #serviceAccountUids = new Map<string, string>();
  readonly #pods = new Map<string, string>(); // ns/name → uid
  readonly #delegators = new Set<string>();

  private constructor() {
    const tls = makeServingTls();
    this.caPem = tls.caPem;
    this.#server = createServer({ key: tls.keyPem, cert: tls.certPem }, (req, res) => this.#handle(req, res));
    this.#server.on('connection', (s: Socket) => {
      this.#sockets.add(s);
      s.on('close', () => this.#sockets.delete(s));
    });
  }

  static async start(): Promise<KubernetesApiDouble> {
    const double = new KubernetesApiDouble();
    await new Promise<void>((resolve, reject) => {
      double.#server.once('error', reject);
      double.#server.listen(0, '127.0.0.1', () => resolve());
    });
    return double;
  }

  get url(): string {
    return `https://127.0.0.1:${(this.#server.address() as AddressInfo).port}`;
  }

  async stop(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.#server.close(() => resolve()));
    for (const s of this.#sockets) s.destroy();
    await closed;
  }

  /** Seconds since the epoch on the API server's clock. */
  now(): number {
    return Math.floor(Date.now() / 1000) + this.#clockOffsetS;
  }

  advanceClock(seconds: number): void {
    this.#clockOffsetS += seconds;
  }

  /** A service-account token as the TokenRequest API would issue it. */
  mintToken(opts: MintOptions): string {
    const now = this.now();
    const saKey = `${opts.namespace}/${opts.serviceAccount}`;
    const saUid = this.#serviceAccountUids.get(saKey) ?? randomUUID();
    this.#serviceAccountUids.set(saKey, saUid);
    let pod: { name: string; uid: string } | undefined;
    if (opts.podName !== undefined) {
      const podKey = `${opts.namespace}/${opts.podName}`;
      const uid = this.#pods.get(podKey) ?? randomUUID();
      this.#pods.set(podKey, uid);
      pod = { name: opts.podName, uid };
    }
    return this.#issuer.sign({
      iss: ISSUER,
      sub: `system:serviceaccount:${opts.namespace}:${opts.serviceAccount}`,
      aud: [...(opts.audiences ?? this.apiAudiences)],
      iat: now,
      nbf: now,
      exp: now + (opts.expiresInSeconds ?? 3600),
      jti: randomUUID(),
      'kubernetes.io': {
        namespace: opts.namespace,
        serviceaccount: { name: opts.serviceAccount, uid: saUid },
        ...(pod ? { pod } : {}),
      },
    });
  }

  /** A token some other authenticator (static tokens, OIDC) maps to a user. */
  addUserToken(token: string, opts: UserTokenOptions): void {
    this.#users.set(token, opts);
  }

  podUid(namespace: string, name: string): string | undefined {
    return this.#pods.get(`${namespace}/${name}`);
  }

  /** Tokens bound to the pod stop authenticating, as the API server checks the binding. */
  deletePod(namespace: string, name: string): void {
    this.#pods.delete(`${namespace}/${name}`);
  }

  /** A ClusterRoleBinding of system:auth-delegator to this user (a service account's username). */
  grantAuthDelegator(username: string): void {
    this.#delegators.add(username);
  }

  revokeAuthDelegator(username: string): void {
    this.#delegators.delete(username);
  }

  #authenticate(token: string, requested: readonly string[]): Authentication {
    const user = this.#users.get(token);
    if (user) {
      const audiences = intersect(requested, user.audiences ?? this.apiAudiences);
      if (audiences.length === 0)
        return { error: audienceError(user.audiences ?? this.apiAudiences, requested) };
      const groups = [...(user.groups ?? []), 'system:authenticated'];
      return { user: { username: user.username, uid: '', groups }, audiences };
    }
    if (token.split('.').length !== 3) return {}; // no authenticator recognises it: no error either
    const verified = this.#issuer.verify(token, this.now());
    if ('error' in verified) return { error: `[${verified.error}]` };
    const { claims } = verified;
    const audiences = intersect(requested, claims.aud);
    if (audiences.length === 0)
      return { error: `[invalid bearer token, ${audienceError(claims.aud, requested)}]` };
    const k8s = claims['kubernetes.io'];
    const extra: Record<string, string[]> = {
      'authentication.kubernetes.io/credential-id': [`JTI=${claims.jti}`],
    };
    if (k8s.pod) {
      if (this.#pods.get(`${k8s.namespace}/${k8s.pod.name}`) !== k8s.pod.uid)
        return { error: `[invalid bearer token, pod "${k8s.pod.name}" (${k8s.pod.uid}) is not found]` };
      extra['authentication.kubernetes.io/pod-name'] = [k8s.pod.name];
      extra['authentication.kubernetes.io/pod-uid'] = [k8s.pod.uid];
    }
    const groups = [
      'system:serviceaccounts',
      `system:serviceaccounts:${k8s.namespace}`,
      'system:authenticated',
    ];
    return { user: { username: claims.sub, uid: k8s.serviceaccount.uid, groups, extra }, audiences };
  }

  #handle(req: IncomingMessage, res: ServerResponse): void {
    if (this.stalled) return;
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const [status, body] = this.#respond(req, Buffer.concat(chunks).toString('utf8'));
      res.writeHead(status, { 'Content-Type': 'application/json', 'Audit-Id': randomUUID() });
      res.end(JSON.stringify(body));
    });
  }

  #respond(req: IncomingMessage, text: string): [number, object] {
    const bearer = /^Bearer (\S+)$/.exec(req.headers.authorization ?? '')?.[1];
    const caller = bearer ? this.#authenticate(bearer, this.apiAudiences) : {};
    if (!('user' in caller)) return [401, statusObject(401, 'Unauthorized', 'Unauthorized')];
    const path = new URL(req.url ?? '/', 'https://x').pathname;
    if (path !== TOKEN_REVIEW_PATH)
      return [404, statusObject(404, 'NotFound', 'the server could not find the requested resource')];
    if (req.method !== 'POST')
      return [
        405,
        statusObject(
          405,
          'MethodNotAllowed',
          `the server does not allow this method on the requested resource`,
        ),
      ];
    const username = caller.user.username;
    if (!this.#delegators.has(username)) {
      const message = `tokenreviews.authentication.k8s.io is forbidden: User "${username}" cannot create resource "tokenreviews" in API group "authentication.k8s.io" at the cluster scope`;
      return [
        403,
        {
          ...statusObject(403, 'Forbidden', message),
          details: { group: 'authentication.k8s.io', kind: 'tokenreviews' },
        },
      ];
    }
    let review: { apiVersion?: unknown; kind?: unknown; spec?: { token?: unknown; audiences?: unknown } };
    try {
      review = JSON.parse(text) as typeof review;
    } catch {
      return [400, statusObject(400, 'BadRequest', 'the request body is not JSON')];
    }
    if (review.apiVersion !== 'authentication.k8s.io/v1' || review.kind !== 'TokenReview')
      return [
        400,
        statusObject(400, 'BadRequest', 'expected apiVersion authentication.k8s.io/v1, kind TokenReview'),
      ];
    const token = review.spec?.token;
    if (typeof token !== 'string' || token === '')
      return [400, statusObject(400, 'BadRequest', 'token is required for TokenReview in authentication')];
    const asked = Array.isArray(review.spec?.audiences)
      ? (review.spec.audiences as unknown[]).filter((a) => typeof a === 'string')
      : [];
    const result = this.#authenticate(token, asked.length > 0 ? asked : this.apiAudiences);
    const authenticated = 'user' in result;
    this.reviews.push({ reviewer: username, audiences: asked, authenticated });
    const status = authenticated
      ? { authenticated: true, user: result.user, audiences: result.audiences }
      : { user: {}, ...(result.error ? { error: result.error } : {}) };
    return [
      201,
      {
        kind: 'TokenReview',
        apiVersion: 'authentication.k8s.io/v1',
        metadata: { creationTimestamp: null },
        spec: review.spec,
        status,
      },
    ];
  }
}

function intersect(a: readonly string[], b: readonly string[]): string[] {
  return a.filter((x) => b.includes(x));
}

function audienceError(tokenAudiences: readonly string[], requested: readonly string[]): string {
  return `token audiences ${JSON.stringify(tokenAudiences)} is invalid for the target audiences ${JSON.stringify(requested)}`;
}

function statusObject(code: number, reason: string, message: string): object {
  return { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, code };
}
