// `clinimesh serve` (and `npm start`): run the control plane until SIGINT/SIGTERM.
import { consulAddressUrl, consulConfigFromEnv, type ConsulConfig } from '../consul/config.ts';
import { ClinimeshError, formatProblem, type Problem } from '../errors.ts';
import { kubernetesConfigFromEnv, type KubernetesConfig } from '../identity/k8s-config.ts';
import { startControlPlane, type RunningControlPlane } from '../main.ts';
import { CommandError, UsageError, parseCommandLine, portOption } from './cli-support.ts';
import { applyLogLevel } from './log-level.ts';

const OPTIONS = {
  manifests: { type: 'string', multiple: true, short: 'f' },
  'data-dir': { type: 'string', default: '.clinimesh' },
  'ca-dir': { type: 'string' },
  'new-ca': { type: 'boolean', default: false },
  'trust-domain': { type: 'string' },
  'workload-cert-ttl': { type: 'string' },
  'agent-credential-ttl': { type: 'string' },
  'k8s-api-url': { type: 'string' },
  'k8s-token-file': { type: 'string' },
  'k8s-ca-file': { type: 'string' },
  'k8s-audience': { type: 'string' },
  host: { type: 'string', default: '127.0.0.1' },
  'xds-port': { type: 'string', default: '18000' },
  'xds-rest-port': { type: 'string', default: '18001' },
  'admin-host': { type: 'string', default: '127.0.0.1' },
  'admin-port': { type: 'string', default: '19000' },
  'admin-allowed-host': { type: 'string', multiple: true },
  'metrics-public': { type: 'boolean', default: false },
  'log-level': { type: 'string' },
  'xds-insecure': { type: 'boolean', default: false },
  'xds-plaintext-port': { type: 'string' },
  consul: { type: 'boolean', default: false },
  store: { type: 'string', default: 'file' },
  'store-prefix': { type: 'string' },
  'ca-kek-file': { type: 'string' },
  'replica-name': { type: 'string' },
  'consul-addr': { type: 'string' },
  'consul-token': { type: 'string' },
  'consul-cacert': { type: 'string' },
  'consul-client-cert': { type: 'string' },
  'consul-client-key': { type: 'string' },
  'consul-datacenter': { type: 'string' },
  'consul-namespace': { type: 'string' },
} as const;

function printProblems(problems: readonly Problem[]): number {
  for (const p of problems) console.error(formatProblem(p));
  return 1;
}

/** `90s`, `15m`, `24h` → ms; undefined when absent, NaN when malformed. */
function durationMs(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const m = /^(\d+)(s|m|h)$/.exec(text);
  return m ? Number(m[1]) * { s: 1000, m: 60_000, h: 3_600_000 }[m[2] as 's' | 'm' | 'h'] : NaN;
}

/** `listen EADDRINUSE: address already in use 127.0.0.1:19000` → a line that says what to do. */
function listenError(e: unknown): unknown {
  const err = e as NodeJS.ErrnoException & { address?: string; port?: number };
  if (err.code === 'EADDRINUSE')
    return new CommandError(
      `cannot listen on ${err.address ?? ''}:${err.port ?? ''}: the port is already in use (EADDRINUSE); stop what holds it or pick another port`,
    );
  if (err.code === 'EACCES' || err.code === 'EADDRNOTAVAIL')
    return new CommandError(`cannot listen on ${err.address ?? ''}:${err.port ?? ''}: ${err.code}`);
  return e;
}

export async function runServe(args: string[]): Promise<number> {
  const { values, positionals } = parseCommandLine(args, OPTIONS);
  if (positionals.length)
    throw new UsageError(`unexpected argument "${positionals[0]}" (manifests go with -f)`);
  // Logs are JSON lines on stderr; the banner below stays human text on stdout.
  const badLevel = applyLogLevel(values['log-level']);
  if (badLevel) throw new UsageError(badLevel);
  const ttls = {
    workload: durationMs(values['workload-cert-ttl']),
    agent: durationMs(values['agent-credential-ttl']),
  };
  if (Number.isNaN(ttls.workload) || Number.isNaN(ttls.agent)) {
    throw new UsageError(
      '--workload-cert-ttl and --agent-credential-ttl take a duration such as 90s, 15m or 24h',
    );
  }
  const ports = {
    xds: portOption('xds-port', values['xds-port']),
    rest: portOption('xds-rest-port', values['xds-rest-port']),
    admin: portOption('admin-port', values['admin-port']),
    plaintext:
      values['xds-plaintext-port'] === undefined
        ? undefined
        : portOption('xds-plaintext-port', values['xds-plaintext-port']),
  };
  const kubernetes = kubernetesConfigFromEnv(process.env, {
    apiUrl: values['k8s-api-url'],
    tokenFile: values['k8s-token-file'],
    caFile: values['k8s-ca-file'],
    audience: values['k8s-audience'],
  });
  if (!kubernetes.ok) return printProblems(kubernetes.errors);
  const k8s: KubernetesConfig | undefined = kubernetes.value;
  const store = values.store;
  if (store !== 'file' && store !== 'consul') throw new UsageError(`--store ${store}: file or consul`);
  if (
    values['store-prefix'] !== undefined &&
    !/^[A-Za-z0-9._-]+(\/[A-Za-z0-9._-]+)*\/?$/.test(values['store-prefix'])
  )
    throw new UsageError('--store-prefix is a Consul KV path such as clinimesh or prod/clinimesh');
  let consul: ConsulConfig | undefined;
  // Consul is used when asked for, or when its address is in the environment (as Consul's own tools do).
  if (values.consul || store === 'consul' || values['consul-addr'] || process.env.CONSUL_HTTP_ADDR) {
    const config = consulConfigFromEnv(process.env, {
      address: values['consul-addr'],
      token: values['consul-token'],
      caFile: values['consul-cacert'],
      certFile: values['consul-client-cert'],
      keyFile: values['consul-client-key'],
      datacenter: values['consul-datacenter'],
      namespace: values['consul-namespace'],
    });
    if (!config.ok) return printProblems(config.errors);
    consul = config.value;
  }
  let cp: RunningControlPlane;
  try {
    cp = await startControlPlane({
      host: values.host,
      xdsPort: ports.xds,
      xdsRestPort: ports.rest,
      adminHost: values['admin-host'],
      adminPort: ports.admin,
      adminAllowedHosts: values['admin-allowed-host'],
      metricsPublic: values['metrics-public'],
      manifests: values.manifests,
      dataDir: values['data-dir'],
      caDir: values['ca-dir'],
      newCa: values['new-ca'],
      trustDomain: values['trust-domain'],
      workloadCertTtlMs: ttls.workload,
      agentCredentialTtlMs: ttls.agent,
      kubernetes: k8s,
      xdsTls: !values['xds-insecure'],
      plaintextXdsPort: ports.plaintext,
      consul,
      store,
      storePrefix: values['store-prefix'],
      caKekFile: values['ca-kek-file'] ?? process.env.CLINIMESH_CA_KEK_FILE,
      replicaName: values['replica-name'] ?? process.env.POD_NAME,
    });
  } catch (e) {
    if (e instanceof ClinimeshError) return printProblems(e.problems);
    throw listenError(e);
  }
  const state = cp.controlPlane.state();
  const first = [...state.services.values()].find((s) => s.instances.length > 0);
  const tls = cp.xdsTls ? 'mutual TLS' : 'PLAINTEXT (--xds-insecure)';
  console.log(
    `clinimesh: mesh '${state.mesh.name}' (trust domain ${state.mesh.trustDomain}), revision ${state.revision}, ${state.services.size} services`,
  );
  console.log(`  xDS gRPC (ADS):   ${cp.host}:${cp.xdsPort}  [${tls}]`);
  console.log(
    `  xDS REST polling: ${cp.xdsTls ? 'https' : 'http'}://${cp.host}:${cp.xdsRestPort}/v3/discovery:<type>`,
  );
  if (cp.plaintextXdsPort)
    console.log(
      `  xDS plaintext:    127.0.0.1:${cp.plaintextXdsPort}  [UNSAFE: any local process may claim a proxyless node id; tests only]`,
    );
  console.log(
    `  node agents:      https://${cp.host}:${cp.xdsRestPort}/v1/agent/  (join tokens${k8s ? `, Kubernetes tokens for audience ${k8s.audience}` : ''})`,
  );
  console.log(
    `  admin API:        ${cp.adminUrl}  (bearer token; /healthz, /readyz${values['metrics-public'] ? ', /metrics' : ''} open)`,
  );
  // The credential holds an admin token: only its path is ever printed.
  if (cp.adminCredentialPath)
    console.log(
      `  admin credential: ${cp.adminCredentialPath}  (mode 0600; clinimesh status --credential ${cp.adminCredentialPath})`,
    );
  console.log(
    `  Consul:           ${consul ? 'watching services with discovery.mode consul' : 'off (manifests only)'}`,
  );
  console.log(
    `  state store:      ${store === 'consul' && consul ? `Consul KV ${consulAddressUrl(consul.address)}/v1/kv/${values['store-prefix'] ?? 'clinimesh'}/ (shared by replicas)` : `files in ${values['data-dir']} (one replica)`}`,
  );
  if (first && cp.xdsTls) {
    const instance = first.instances[0]!.name;
    const credential = cp.adminCredentialPath ? ` --credential ${cp.adminCredentialPath}` : '';
    console.log(
      `start a sidecar (the agent makes its keys here; a join token is single-use and lasts 15 minutes):`,
    );
    console.log(
      `  TOKEN=$(./bin/clinimesh.js join-token create${credential} --namespace ${first.namespace} --service ${first.name} --instance ${instance})`,
    );
    console.log(
      `  CLINIMESH_JOIN_TOKEN="$TOKEN" ./bin/clinimesh.js agent --control-plane ${cp.host}:${cp.xdsRestPort} --out-dir ./sidecar-${instance} &`,
    );
    console.log(`  envoy -c ./sidecar-${instance}/envoy.json --use-dynamic-base-id`);
  }
  const shutdown = () => {
    void cp.stop().then(() => process.exit(0));
  };
  process.once('SIGINT', shutdown);
  process.once('SIGTERM', shutdown);
  return 0;
}
