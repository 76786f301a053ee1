// Kubernetes workload attestation: a workload proves who it is with its projected service-account
// token (audience-bound, short-lived), and the API server vouches for it through the TokenReview
// API, as Istio and Consul do. The control plane authenticates to the API server with its own
// service-account token, which needs the ClusterRole system:auth-delegator. Tokens are never logged
// and never appear in a problem's message.
import { request } from 'node:https';
import type { IncomingMessage } from 'node:http';
import type { Problem, Result } from '../errors.ts';
import { fail, ok } from '../errors.ts';
import { readKubernetesCredentials, type KubernetesConfig } from './k8s-config.ts';

export interface KubernetesAttestation {
  readonly namespace: string;
  /** The service account's name, which is the mesh service's name. */
  readonly service: string;
  /** `system:serviceaccount:<namespace>:<service>`, as the API server reported it. */
  readonly subject: string;
  /** Present when the token is bound to a pod (projected tokens always are). */
  readonly podName?: string;
  readonly podUid?: string;
}

export interface KubernetesAttestorOptions {
  /** Bound on one review, connection to last byte. Default 5 s. */
  readonly timeoutMs?: number;
}

export const TOKEN_REVIEW_PATH = '/apis/authentication.k8s.io/v1/tokenreviews';
export const REVIEWER_CLUSTER_ROLE = 'system:auth-delegator';

const DEFAULT_TIMEOUT_MS = 5_000;
const MAX_TOKEN_BYTES = 16 * 1024; // a projected token is ~1 KiB; the API server refuses far larger
const MAX_RESPONSE_BYTES = 1024 * 1024;
// A bearer token goes in an HTTP header: visible ASCII, no spaces or line breaks.
const TOKEN_RE = /^[\x21-\x7e]+$/;
const DNS_LABEL_RE = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const SA_PREFIX = 'system:serviceaccount:';
const POD_NAME = 'authentication.kubernetes.io/pod-name';
const POD_UID = 'authentication.kubernetes.io/pod-uid';

type Obj = Readonly<Record<string, unknown>>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

const refused = (message: string): Result<never> => fail([{ code: 'UNAUTHENTICATED', message }]);
const io = (message: string, field?: string): Problem => ({
  code: 'IO',
  message,
  ...(field ? { field } : {}),
});

export class KubernetesAttestor {
  readonly #config: KubernetesConfig;
  readonly #timeoutMs: number;

  constructor(config: KubernetesConfig, opts: KubernetesAttestorOptions = {}) {
    this.#config = config;
    this.#timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  }

  get audience(): string {
    return this.#config.audience;
  }

  /** Asks the API server who `token` belongs to; accepts only an audience-bound service-account token. */
  async attest(token: string): Promise<Result<KubernetesAttestation>> {
    if (token.length === 0 || token.length > MAX_TOKEN_BYTES || !TOKEN_RE.test(token))
      return refused('the token is empty, too long or not a bearer token');
    const credentials = await readKubernetesCredentials(this.#config);
    if (!credentials.ok) return credentials;
    const body = JSON.stringify({
      apiVersion: 'authentication.k8s.io/v1',
      kind: 'TokenReview',
      spec: { token, audiences: [this.#config.audience] },
    });
    const response = await this.#post(body, credentials.value.token, credentials.value.caPem);
    if (!response.ok) return response;
    return this.#judge(response.value);
  }

  /** POSTs the review over HTTPS verified with the configured CA; an answer or an IO problem, bounded in time. */
  #post(body: string, reviewerToken: string, ca: string): Promise<Result<unknown>> {
    const url = new URL(`${this.#config.apiUrl}${TOKEN_REVIEW_PATH}`);
    const apiField = this.#config.origins.apiUrl;
    if (!TOKEN_RE.test(reviewerToken))
      return Promise.resolve(
        fail([io('holds characters a bearer token cannot have', this.#config.origins.tokenFile)]),
      );
    return new Promise((resolve) => {
      let settled = false;
      const settle = (r: Result<unknown>): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        resolve(r);
      };
      const req = request(
        url,
        {
          method: 'POST',
          ca,
          agent: false,
          headers: {
            Authorization: `Bearer ${reviewerToken}`,
            'Content-Type': 'application/json',
            Accept: 'application/json',
            'Content-Length': Buffer.byteLength(body),
          },
        },
        (res) => {
          readBody(res).then(
            (text) => settle(interpretResponse(res.statusCode ?? 0, text, this.#config, url.origin)),
            (e: Error) =>
              settle(fail([io(`reading the TokenReview answer from ${url.origin}: ${e.message}`, apiField)])),
          );
        },
      );
      const timer = setTimeout(() => {
        settle(
          fail([
            io(`the Kubernetes API at ${url.origin} did not answer within ${this.#timeoutMs} ms`, apiField),
          ]),
        );
        req.destroy();
      }, this.#timeoutMs);
      req.on('error', (e: NodeJS.ErrnoException) =>
        settle(
          fail([io(`cannot reach the Kubernetes API at ${url.origin}: ${e.code ?? e.message}`, apiField)]),
        ),
      );
      req.end(body);
    });
  }

  /** The API server answered: accept an authenticated, audience-bound service account, nothing else. */
  #judge(review: unknown): Result<KubernetesAttestation> {
    const status = isObj(review) && isObj(review.status) ? review.status : undefined;
    if (!status) return fail([io('the TokenReview answer has no status', this.#config.origins.apiUrl)]);
    if (status.authenticated !== true) {
      const why =
        typeof status.error === 'string' && status.error !== '' ? `: ${status.error.slice(0, 200)}` : '';
      return refused(`the API server did not authenticate the token${why}`);
    }
    const audiences = Array.isArray(status.audiences) ? status.audiences : [];
    if (!audiences.includes(this.#config.audience))
      return refused(`the token is not bound to the audience ${JSON.stringify(this.#config.audience)}`);
    const user = isObj(status.user) ? status.user : {};
    const username = typeof user.username === 'string' ? user.username : '';
    const parts = username.startsWith(SA_PREFIX) ? username.slice(SA_PREFIX.length).split(':') : [];
    const [namespace, service] = parts;
    if (parts.length !== 2 || namespace === undefined || service === undefined)
      return refused('the token does not belong to a service account');
    if (!DNS_LABEL_RE.test(namespace) || !DNS_LABEL_RE.test(service))
      return refused(
        'the service account or its namespace is not a DNS label, so it cannot name a mesh service',
      );
    const extra = isObj(user.extra) ? user.extra : {};
    const podName = single(extra[POD_NAME]);
    const podUid = single(extra[POD_UID]);
    return ok({
      namespace,
      service,
      subject: username,
      ...(podName !== undefined ? { podName } : {}),
      ...(podUid !== undefined ? { podUid } : {}),
    });
  }
}

/** `user.extra` values are string lists; a pod binding has exactly one. */
function single(value: unknown): string | undefined {
  return Array.isArray(value) && value.length === 1 && typeof value[0] === 'string' ? value[0] : undefined;
}

function readBody(res: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    res.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_RESPONSE_BYTES) {
        res.destroy(new Error(`answer larger than ${MAX_RESPONSE_BYTES} bytes`));
        return;
      }
      chunks.push(chunk);
    });
    res.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    res.on('error', reject);
    res.on('aborted', () => reject(new Error('connection closed mid-answer')));
  });
}

/** A 2xx TokenReview, or an IO problem that tells the operator what the API server's refusal means. */
function interpretResponse(
  status: number,
  text: string,
  config: KubernetesConfig,
  origin: string,
): Result<unknown> {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  if (status >= 200 && status < 300) {
    return json === undefined
      ? fail([io(`the TokenReview answer from ${origin} is not JSON`, config.origins.apiUrl)])
      : ok(json);
  }
  // A Status object's message never echoes the bearer token.
  const detail = isObj(json) && typeof json.message === 'string' ? `: ${json.message.slice(0, 300)}` : '';
  const rbac =
    `the control plane's service account needs the ClusterRole ${REVIEWER_CLUSTER_ROLE} ` +
    `(a ClusterRoleBinding, see manifests/k8s/rbac.yaml) to create tokenreviews`;
  if (status === 401)
    return fail([
      io(
        `the Kubernetes API refused the control plane's own token from ${config.tokenFile} (401)${detail}; ${rbac}, with a valid token`,
        config.origins.tokenFile,
      ),
    ]);
  if (status === 403)
    return fail([
      io(`the Kubernetes API forbids the TokenReview (403)${detail}; ${rbac}`, config.origins.apiUrl),
    ]);
  return fail([
    io(`the Kubernetes API answered the TokenReview with HTTP ${status}${detail}`, config.origins.apiUrl),
  ]);
}
