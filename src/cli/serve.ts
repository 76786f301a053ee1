// `clinimesh serve` (and `npm start`): run the control plane until SIGINT/SIGTERM.
import { parseArgs } from 'node:util';
import { consulConfigFromEnv, type ConsulConfig } from '../discovery/consul-config.ts';
import { ClinimeshError, formatProblem, type Problem } from '../errors.ts';
import { startControlPlane, type RunningControlPlane } from '../main.ts';

const OPTIONS = {
  manifests: { type: 'string', multiple: true, short: 'f' },
  'data-dir': { type: 'string', default: '.clinimesh' },
  'ca-dir': { type: 'string' },
  host: { type: 'string', default: '127.0.0.1' },
  'xds-port': { type: 'string', default: '18000' },
  'xds-rest-port': { type: 'string', default: '18001' },
  'admin-host': { type: 'string', default: '127.0.0.1' },
  'admin-port': { type: 'string', default: '19000' },
  'admin-allowed-host': { type: 'string', multiple: true },
  'metrics-public': { type: 'boolean', default: false },
  'xds-insecure': { type: 'boolean', default: false },
  'xds-plaintext-port': { type: 'string' },
  consul: { type: 'boolean', default: false },
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

export async function runServe(args: string[]): Promise<number> {
  const { values } = parseArgs({ args, options: OPTIONS });
  let consul: ConsulConfig | undefined;
  // Consul is used when asked for, or when its address is in the environment (as Consul's own tools do).
  if (values.consul || values['consul-addr'] || process.env.CONSUL_HTTP_ADDR) {
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
      xdsPort: Number(values['xds-port']),
      xdsRestPort: Number(values['xds-rest-port']),
      adminHost: values['admin-host'],
      adminPort: Number(values['admin-port']),
      adminAllowedHosts: values['admin-allowed-host'],
      metricsPublic: values['metrics-public'],
      manifests: values.manifests,
      dataDir: values['data-dir'],
      caDir: values['ca-dir'],
      xdsTls: !values['xds-insecure'],
      plaintextXdsPort: values['xds-plaintext-port'] === undefined ? undefined : Number(values['xds-plaintext-port']),
      consul,
    });
  } catch (e) {
    if (e instanceof ClinimeshError) return printProblems(e.problems);
    throw e;
  }
  const state = cp.controlPlane.state();
  const first = [...state.services.values()].find((s) => s.instances.length > 0);
  const tls = cp.xdsTls ? 'mutual TLS' : 'PLAINTEXT (--xds-insecure)';
  console.log(`clinimesh: mesh '${state.mesh.name}' (trust domain ${state.mesh.trustDomain}), revision ${state.revision}, ${state.services.size} services`);
  console.log(`  xDS gRPC (ADS):   ${cp.host}:${cp.xdsPort}  [${tls}]`);
  console.log(`  xDS REST polling: ${cp.xdsTls ? 'https' : 'http'}://${cp.host}:${cp.xdsRestPort}/v3/discovery:<type>`);
  if (cp.plaintextXdsPort) console.log(`  xDS plaintext (loopback, proxyless tests only): 127.0.0.1:${cp.plaintextXdsPort}`);
  console.log(`  admin API:        ${cp.adminUrl}  (bearer token; /healthz, /readyz${values['metrics-public'] ? ', /metrics' : ''} open)`);
  // The credential holds an admin token: only its path is ever printed.
  if (cp.adminCredentialPath) console.log(`  admin credential: ${cp.adminCredentialPath}  (mode 0600; clinimesh status --credential ${cp.adminCredentialPath})`);
  console.log(`  Consul:           ${consul ? 'watching services with discovery.mode consul' : 'off (manifests only)'}`);
  if (first) {
    console.log(`start a sidecar:`);
    console.log(
      `  ./bin/clinimesh.js bootstrap --namespace ${first.namespace} --service ${first.name} --instance ${first.instances[0]!.name} --out-dir ./sidecar-${first.instances[0]!.name}`,
    );
    console.log(`  envoy -c ./sidecar-${first.instances[0]!.name}/envoy.json --use-dynamic-base-id`);
  }
  const shutdown = () => {
    void cp.stop().then(() => process.exit(0));
  };
  process.once('SIGINT', shutdown);
  process.once('SIGTERM', shutdown);
  return 0;
}
