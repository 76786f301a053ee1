// How clinimesh reaches Consul, read the way Consul's own tools read it: CONSUL_HTTP_ADDR and friends,
// with command-line flags overriding the environment. Pure: file paths are checked and read later,
// when the client is created, so problems here name the variable or flag that holds a bad value.
import type { Problem, Result } from '../errors.ts';
import { fail, ok } from '../errors.ts';

export type ConsulAddress =
  | { readonly scheme: 'http' | 'https'; readonly host: string; readonly port: number }
  | { readonly scheme: 'unix'; readonly socketPath: string };

export interface ConsulTlsConfig {
  readonly caFile?: string;
  readonly certFile?: string;
  readonly keyFile?: string;
  readonly serverName?: string;
  /** CONSUL_HTTP_SSL_VERIFY=false: do not verify the server certificate (never in production). */
  readonly insecureSkipVerify: boolean;
}

/** Settings that came from the environment or a flag, to name in a later problem (file unreadable). */
export type ConsulSetting = 'address' | 'token' | 'tokenFile' | 'caFile' | 'certFile' | 'keyFile';

export interface ConsulConfig {
  readonly address: ConsulAddress;
  readonly token?: string;
  readonly tokenFile?: string;
  readonly tls: ConsulTlsConfig;
  readonly datacenter?: string;
  readonly namespace?: string;
  /** Which variable or flag each setting came from (`CONSUL_CACERT`, `--consul-cacert`). */
  readonly origins: Readonly<Partial<Record<ConsulSetting, string>>>;
}

/** Flags as the CLI parsed them; any one given overrides its environment variable. */
export interface ConsulFlags {
  readonly address?: string;
  readonly token?: string;
  readonly tokenFile?: string;
  readonly caFile?: string;
  readonly certFile?: string;
  readonly keyFile?: string;
  readonly ssl?: boolean;
  readonly sslVerify?: boolean;
  readonly tlsServerName?: string;
  readonly datacenter?: string;
  readonly namespace?: string;
}

/** The flag spelling used in problems; the CLI owns the parsing and should use these names. */
export const CONSUL_FLAG_NAMES: Readonly<Record<keyof ConsulFlags, string>> = {
  address: '--consul-http-addr',
  token: '--consul-token',
  tokenFile: '--consul-token-file',
  caFile: '--consul-cacert',
  certFile: '--consul-client-cert',
  keyFile: '--consul-client-key',
  ssl: '--consul-http-ssl',
  sslVerify: '--consul-http-ssl-verify',
  tlsServerName: '--consul-tls-server-name',
  datacenter: '--consul-datacenter',
  namespace: '--consul-namespace',
};

const ENV_NAMES = {
  address: 'CONSUL_HTTP_ADDR',
  token: 'CONSUL_HTTP_TOKEN',
  tokenFile: 'CONSUL_HTTP_TOKEN_FILE',
  caFile: 'CONSUL_CACERT',
  certFile: 'CONSUL_CLIENT_CERT',
  keyFile: 'CONSUL_CLIENT_KEY',
  ssl: 'CONSUL_HTTP_SSL',
  sslVerify: 'CONSUL_HTTP_SSL_VERIFY',
  tlsServerName: 'CONSUL_TLS_SERVER_NAME',
  namespace: 'CONSUL_NAMESPACE',
} as const;

const DEFAULT_ADDRESS = '127.0.0.1:8500';
// Consul datacenter and namespace names: letters, digits, `-`, `_` (namespaces are DNS labels).
const NAME_RE = /^[A-Za-z0-9_-]{1,63}$/;
// A token travels in the X-Consul-Token header: visible ASCII only, no spaces or line breaks.
const TOKEN_RE = /^[\x21-\x7e]+$/;

interface Picked<T> {
  readonly value: T;
  readonly origin: string;
}

type Env = Readonly<Record<string, string | undefined>>;

function pickString(
  env: Env,
  flags: ConsulFlags,
  key: keyof typeof ENV_NAMES & keyof ConsulFlags,
): Picked<string> | undefined {
  const flag = flags[key];
  if (typeof flag === 'string' && flag !== '') return { value: flag, origin: CONSUL_FLAG_NAMES[key] };
  const fromEnv = env[ENV_NAMES[key]];
  if (fromEnv !== undefined && fromEnv !== '') return { value: fromEnv, origin: ENV_NAMES[key] };
  return undefined;
}

/** Go's strconv.ParseBool, which Consul uses for CONSUL_HTTP_SSL and CONSUL_HTTP_SSL_VERIFY. */
export function parseGoBool(text: string): boolean | undefined {
  if (['1', 't', 'T', 'TRUE', 'true', 'True'].includes(text)) return true;
  if (['0', 'f', 'F', 'FALSE', 'false', 'False'].includes(text)) return false;
  return undefined;
}

function pickBool(
  env: Env,
  flags: ConsulFlags,
  key: 'ssl' | 'sslVerify',
  problems: Problem[],
): boolean | undefined {
  const flag = flags[key];
  if (flag !== undefined) return flag;
  const text = env[ENV_NAMES[key]];
  if (text === undefined || text === '') return undefined;
  const value = parseGoBool(text.trim());
  if (value === undefined) {
    problems.push(problem(ENV_NAMES[key], `must be a boolean (true/false/1/0), got ${JSON.stringify(text)}`));
  }
  return value;
}

function problem(field: string, message: string): Problem {
  return { code: 'CONSUL', field, message };
}

/**
 * `host:port`, `[v6]:port`, `http://host:port`, `https://host:port` or `unix:///path`, as Consul's API
 * client accepts them. An explicit scheme wins over CONSUL_HTTP_SSL, as in Consul's client.
 */
export function parseConsulAddress(text: string, ssl: boolean): { address?: ConsulAddress; error?: string } {
  const trimmed = text.trim();
  const schemeMatch = /^([A-Za-z][A-Za-z0-9+.-]*):\/\/(.*)$/.exec(trimmed);
  const scheme = schemeMatch ? schemeMatch[1]!.toLowerCase() : ssl ? 'https' : 'http';
  const rest = schemeMatch ? schemeMatch[2]! : trimmed;
  if (scheme === 'unix') {
    return rest.startsWith('/')
      ? { address: { scheme, socketPath: rest } }
      : { error: 'unix socket path must be absolute' };
  }
  if (scheme !== 'http' && scheme !== 'https')
    return { error: `unknown protocol scheme ${JSON.stringify(scheme)}` };
  const hostPort = /^(\[[0-9A-Fa-f:.]+\]|[^:/[\]\s]+)(?::(\d{1,5}))?\/?$/.exec(rest);
  if (!hostPort) return { error: `expected host:port, got ${JSON.stringify(text)}` };
  const port = hostPort[2] === undefined ? (scheme === 'https' ? 8501 : 8500) : Number(hostPort[2]);
  if (port < 1 || port > 65535) return { error: `port ${port} is out of range 1..65535` };
  return { address: { scheme, host: hostPort[1]!, port } };
}

function checkName(
  picked: Picked<string> | undefined,
  what: string,
  problems: Problem[],
): string | undefined {
  if (picked && !NAME_RE.test(picked.value)) {
    problems.push(problem(picked.origin, `${what} must be 1-63 letters, digits, '-' or '_'`));
  }
  return picked?.value;
}

/** Reads Consul's standard variables from `env`, lets `flags` override them, and reports every problem. */
export function consulConfigFromEnv(env: Env, flags: ConsulFlags = {}): Result<ConsulConfig> {
  const problems: Problem[] = [];
  const origins: Partial<Record<ConsulSetting, string>> = {};
  const ssl = pickBool(env, flags, 'ssl', problems) ?? false;
  const sslVerify = pickBool(env, flags, 'sslVerify', problems) ?? true;

  const addr = pickString(env, flags, 'address') ?? { value: DEFAULT_ADDRESS, origin: ENV_NAMES.address };
  const parsed = parseConsulAddress(addr.value, ssl);
  if (parsed.error !== undefined) problems.push(problem(addr.origin, parsed.error));
  origins.address = addr.origin;

  const token = pickString(env, flags, 'token');
  if (token && !TOKEN_RE.test(token.value)) {
    problems.push(problem(token.origin, 'must be visible ASCII without spaces or line breaks'));
  }
  const tokenFile = pickString(env, flags, 'tokenFile');
  const files = {
    caFile: pickString(env, flags, 'caFile'),
    certFile: pickString(env, flags, 'certFile'),
    keyFile: pickString(env, flags, 'keyFile'),
  };
  if (files.certFile && !files.keyFile)
    problems.push(problem(files.certFile.origin, `needs a client key too (${ENV_NAMES.keyFile})`));
  if (files.keyFile && !files.certFile)
    problems.push(problem(files.keyFile.origin, `needs a client certificate too (${ENV_NAMES.certFile})`));
  for (const [key, picked] of Object.entries({ token, tokenFile, ...files })) {
    if (picked) origins[key as ConsulSetting] = picked.origin;
  }

  const datacenter = checkName(
    flags.datacenter ? { value: flags.datacenter, origin: CONSUL_FLAG_NAMES.datacenter } : undefined,
    'datacenter',
    problems,
  );
  const namespace = checkName(pickString(env, flags, 'namespace'), 'namespace', problems);
  const serverName = pickString(env, flags, 'tlsServerName')?.value;

  if (problems.length > 0 || !parsed.address) return fail(problems);
  return ok({
    address: parsed.address,
    ...(token ? { token: token.value } : {}),
    ...(tokenFile ? { tokenFile: tokenFile.value } : {}),
    tls: {
      ...(files.caFile ? { caFile: files.caFile.value } : {}),
      ...(files.certFile ? { certFile: files.certFile.value } : {}),
      ...(files.keyFile ? { keyFile: files.keyFile.value } : {}),
      ...(serverName ? { serverName } : {}),
      insecureSkipVerify: !sslVerify,
    },
    ...(datacenter ? { datacenter } : {}),
    ...(namespace ? { namespace } : {}),
    origins,
  });
}

/** `http://127.0.0.1:8500`, for logs and status pages (never includes the token). */
export function consulAddressUrl(address: ConsulAddress): string {
  return address.scheme === 'unix'
    ? `unix://${address.socketPath}`
    : `${address.scheme}://${address.host}:${address.port}`;
}
