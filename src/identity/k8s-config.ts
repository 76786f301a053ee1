// Where the control plane reaches the Kubernetes API to review workloads' service-account tokens,
// read the way client-go's InClusterConfig reads it: KUBERNETES_SERVICE_HOST/PORT (always set by the
// kubelet, even with enableServiceLinks: false) and the pod's own service-account files, with flags
// overriding each. Pure, like consul/config.ts: files are read later, on every review
// (`readKubernetesCredentials`), because the kubelet rotates the token file in place.
import { readFile } from 'node:fs/promises';
import type { Problem, Result } from '../errors.ts';
import { fail, ok } from '../errors.ts';

export const IN_CLUSTER_TOKEN_FILE = '/var/run/secrets/kubernetes.io/serviceaccount/token';
export const IN_CLUSTER_CA_FILE = '/var/run/secrets/kubernetes.io/serviceaccount/ca.crt';
export const DEFAULT_AUDIENCE = 'clinimesh';

export type KubernetesSetting = 'apiUrl' | 'tokenFile' | 'caFile' | 'audience';

export interface KubernetesConfig {
  /** `https://host:port`, no trailing slash. */
  readonly apiUrl: string;
  /** The control plane's own service-account token: the reviewer's credential. */
  readonly tokenFile: string;
  /** The CA that signed the API server's serving certificate. */
  readonly caFile: string;
  /** The audience workload tokens must be bound to. */
  readonly audience: string;
  /** Which variable or flag each setting came from, to name in later problems. */
  readonly origins: Readonly<Record<KubernetesSetting, string>>;
}

/** Flags as the CLI parsed them; any one given overrides the in-cluster default. */
export interface KubernetesFlags {
  readonly apiUrl?: string;
  readonly tokenFile?: string;
  readonly caFile?: string;
  readonly audience?: string;
}

/** The flag spelling used in problems; `clinimesh serve` should parse these names. */
export const KUBERNETES_FLAG_NAMES: Readonly<Record<keyof KubernetesFlags, string>> = {
  apiUrl: '--k8s-api-url',
  tokenFile: '--k8s-token-file',
  caFile: '--k8s-ca-file',
  audience: '--k8s-audience',
};

const HOST_ENV = 'KUBERNETES_SERVICE_HOST';
const PORT_ENV = 'KUBERNETES_SERVICE_PORT';
// An audience travels in JSON, but keep it to visible ASCII: it is compared byte for byte.
const AUDIENCE_RE = /^[\x21-\x7e]{1,253}$/;

type Env = Readonly<Record<string, string | undefined>>;

const given = (s: string | undefined): s is string => s !== undefined && s.trim() !== '';
const problem = (field: string, message: string): Problem => ({ code: 'SCHEMA', field, message });

/** `https://host:port` from a flag, refusing anything the bearer token should not travel over. */
function parseApiUrl(text: string, field: string, problems: Problem[]): string | undefined {
  let url: URL;
  try {
    url = new URL(text.trim());
  } catch {
    problems.push(problem(field, `expected https://host[:port], got ${JSON.stringify(text)}`));
    return undefined;
  }
  if (url.protocol !== 'https:') {
    problems.push(
      problem(field, `must be https (the control plane's token is sent to it), got ${url.protocol}`),
    );
    return undefined;
  }
  if (url.username || url.password || url.search || url.hash) {
    problems.push(problem(field, 'must not carry credentials, a query or a fragment'));
    return undefined;
  }
  return `${url.origin}${url.pathname.replace(/\/+$/, '')}`;
}

/** The API server's in-cluster address, as client-go joins it (IPv6 hosts in brackets). */
function inClusterUrl(env: Env, problems: Problem[]): string | undefined {
  const host = env[HOST_ENV]!.trim();
  const portText = (env[PORT_ENV] ?? '').trim();
  const port = Number(portText);
  if (!/^\d{1,5}$/.test(portText) || port < 1 || port > 65535) {
    problems.push(
      problem(PORT_ENV, `must be a port 1..65535 when ${HOST_ENV} is set, got ${JSON.stringify(portText)}`),
    );
    return undefined;
  }
  return parseApiUrl(`https://${host.includes(':') ? `[${host}]` : host}:${port}`, HOST_ENV, problems);
}

/**
 * Kubernetes attestation settings, or undefined when the control plane is not in a cluster and no
 * flag asks for it. Every bad value is reported, naming its variable or flag.
 */
export function kubernetesConfigFromEnv(
  env: Env,
  overrides: KubernetesFlags = {},
): Result<KubernetesConfig | undefined> {
  const inCluster = given(env[HOST_ENV]);
  const anyFlag = Object.values(overrides).some(given);
  if (!inCluster && !anyFlag) return ok(undefined);

  const problems: Problem[] = [];
  const origins: Record<KubernetesSetting, string> = {
    apiUrl: KUBERNETES_FLAG_NAMES.apiUrl,
    tokenFile: KUBERNETES_FLAG_NAMES.tokenFile,
    caFile: KUBERNETES_FLAG_NAMES.caFile,
    audience: KUBERNETES_FLAG_NAMES.audience,
  };
  let apiUrl: string | undefined;
  if (given(overrides.apiUrl)) apiUrl = parseApiUrl(overrides.apiUrl, KUBERNETES_FLAG_NAMES.apiUrl, problems);
  else if (inCluster) {
    apiUrl = inClusterUrl(env, problems);
    origins.apiUrl = HOST_ENV;
  } else {
    problems.push(
      problem(
        KUBERNETES_FLAG_NAMES.apiUrl,
        `required outside a cluster (${HOST_ENV} is not set) when other --k8s-* flags are given`,
      ),
    );
  }

  const file = (key: 'tokenFile' | 'caFile', fallback: string): string => {
    const flag = overrides[key];
    if (!given(flag)) {
      origins[key] = `${KUBERNETES_FLAG_NAMES[key]} (default ${fallback})`;
      return fallback;
    }
    if (flag.includes('\0')) problems.push(problem(KUBERNETES_FLAG_NAMES[key], 'must be a file path'));
    return flag;
  };
  const tokenFile = file('tokenFile', IN_CLUSTER_TOKEN_FILE);
  const caFile = file('caFile', IN_CLUSTER_CA_FILE);

  const audience = given(overrides.audience) ? overrides.audience.trim() : DEFAULT_AUDIENCE;
  if (!AUDIENCE_RE.test(audience))
    problems.push(problem(KUBERNETES_FLAG_NAMES.audience, 'must be 1-253 visible ASCII characters'));

  if (problems.length > 0 || apiUrl === undefined) return fail(problems);
  return ok({ apiUrl, tokenFile, caFile, audience, origins });
}

export interface KubernetesCredentials {
  /** Never log it. */
  readonly token: string;
  readonly caPem: string;
}

/**
 * Reads the reviewer's token and the API server's CA, as they are now (the kubelet replaces both in
 * place when it rotates them). `serve` can call it once at start-up to fail fast.
 */
export async function readKubernetesCredentials(
  config: KubernetesConfig,
): Promise<Result<KubernetesCredentials>> {
  const problems: Problem[] = [];
  const read = async (key: 'tokenFile' | 'caFile'): Promise<string> => {
    try {
      return (await readFile(config[key], 'utf8')).trim();
    } catch (e) {
      const why = (e as NodeJS.ErrnoException).code ?? 'unreadable';
      problems.push({
        code: 'IO',
        field: config.origins[key],
        message: `cannot read ${config[key]} (${why})`,
      });
      return '';
    }
  };
  const [token, caPem] = await Promise.all([read('tokenFile'), read('caFile')]);
  if (problems.length === 0 && token === '')
    problems.push({ code: 'IO', field: config.origins.tokenFile, message: `${config.tokenFile} is empty` });
  if (problems.length === 0 && !caPem.includes('-----BEGIN CERTIFICATE-----'))
    problems.push({
      code: 'IO',
      field: config.origins.caFile,
      message: `${config.caFile} holds no PEM certificate`,
    });
  return problems.length > 0 ? fail(problems) : ok({ token, caPem });
}
