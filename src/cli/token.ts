// `clinimesh token create|list|revoke` (admin only) and `clinimesh join-token create`.
import {
  CONNECTION_OPTIONS,
  UsageError,
  callAdmin,
  credentialFor,
  jsonBody,
  parseCommandLine,
  parseDuration,
  table,
} from './cli-support.ts';

interface TokenJson {
  id: string;
  name: string;
  role: string;
  namespaces: string[];
  createdAt: string;
  createdBy: string;
  expiresAt?: string;
}

function ttlSeconds(ttl: string | undefined): number | undefined {
  if (ttl === undefined) return undefined;
  const seconds = parseDuration(ttl);
  if (seconds === undefined)
    throw new UsageError(`--ttl ${ttl}: write a duration such as 90s, 15m, 24h or 7d`);
  return seconds;
}

export async function tokenCommand(args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  const { values, positionals } = parseCommandLine(rest, {
    ...CONNECTION_OPTIONS,
    name: { type: 'string' },
    role: { type: 'string' },
    namespace: { type: 'string', multiple: true },
    ttl: { type: 'string' },
  });
  if (sub === 'create') {
    if (!values.name || !values.role) throw new UsageError('token create needs --name and --role');
    if (positionals.length) throw new UsageError(`unexpected argument "${positionals[0]}"`);
    const body = {
      name: values.name,
      role: values.role,
      namespaces: values.namespace ?? [],
      ttlSeconds: ttlSeconds(values.ttl),
    };
    const res = await callAdmin(credentialFor(values), 'POST', '/v1/tokens', jsonBody(body));
    if (!res) return 1;
    const t = res.json as TokenJson & { token: string };
    const scope = t.namespaces.length ? ` in ${t.namespaces.join(', ')}` : '';
    console.error(
      `token ${t.id} "${t.name}" (${t.role}${scope})${t.expiresAt ? `, expires ${t.expiresAt}` : ''}; the secret below is shown only now`,
    );
    console.log(t.token);
    return 0;
  }
  if (sub === 'list') {
    if (positionals.length) throw new UsageError(`unexpected argument "${positionals[0]}"`);
    const res = await callAdmin(credentialFor(values), 'GET', '/v1/tokens');
    if (!res) return 1;
    const tokens = (res.json as { tokens: TokenJson[] }).tokens;
    const rows = tokens.map((t) => [
      t.id,
      t.name,
      t.role,
      t.namespaces.join(',') || '*',
      t.createdAt,
      t.expiresAt ?? '-',
      t.createdBy,
    ]);
    console.log(table(['ID', 'NAME', 'ROLE', 'NAMESPACES', 'CREATED', 'EXPIRES', 'CREATED BY'], rows));
    return 0;
  }
  if (sub === 'revoke') {
    if (positionals.length !== 1 || !/^[0-9a-f]{16}$/.test(positionals[0]!))
      throw new UsageError('token revoke takes one token ID (16 hex digits, see `clinimesh token list`)');
    const res = await callAdmin(credentialFor(values), 'DELETE', `/v1/tokens/${positionals[0]}`);
    if (!res) return 1;
    console.log(`revoked ${positionals[0]}`);
    return 0;
  }
  throw new UsageError(
    sub === undefined
      ? 'name a subcommand: create, list or revoke'
      : `unknown subcommand "${sub}"; one of create, list, revoke`,
  );
}

export async function joinTokenCommand(args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  const { values, positionals } = parseCommandLine(rest, {
    ...CONNECTION_OPTIONS,
    namespace: { type: 'string' },
    service: { type: 'string' },
    instance: { type: 'string' },
    ttl: { type: 'string' },
  });
  if (sub !== 'create')
    throw new UsageError(
      sub === undefined ? 'name a subcommand: create' : `unknown subcommand "${sub}"; only create`,
    );
  if (!values.namespace || !values.service)
    throw new UsageError('join-token create needs --namespace and --service');
  if (positionals.length) throw new UsageError(`unexpected argument "${positionals[0]}"`);
  const body = {
    namespace: values.namespace,
    service: values.service,
    instance: values.instance,
    ttlSeconds: ttlSeconds(values.ttl),
  };
  const res = await callAdmin(credentialFor(values), 'POST', '/v1/join-tokens', jsonBody(body));
  if (!res) return 1;
  console.log((res.json as { token: string }).token);
  return 0;
}
