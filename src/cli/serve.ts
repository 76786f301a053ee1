// `clinimesh serve` (and `npm start`): run the control plane until SIGINT/SIGTERM.
import { parseArgs } from 'node:util';
import { ClinimeshError, formatProblem } from '../errors.ts';
import { startControlPlane, type RunningControlPlane } from '../main.ts';

export async function runServe(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      manifests: { type: 'string', multiple: true, short: 'f' },
      'data-dir': { type: 'string' },
      host: { type: 'string', default: '127.0.0.1' },
      'xds-port': { type: 'string', default: '18000' },
      'xds-rest-port': { type: 'string', default: '18001' },
      'admin-port': { type: 'string', default: '19000' },
    },
  });
  let cp: RunningControlPlane;
  try {
    cp = await startControlPlane({
      host: values.host,
      xdsPort: Number(values['xds-port']),
      xdsRestPort: Number(values['xds-rest-port']),
      adminPort: Number(values['admin-port']),
      manifests: values.manifests,
      dataDir: values['data-dir'],
    });
  } catch (e) {
    if (e instanceof ClinimeshError) {
      for (const p of e.problems) console.error(formatProblem(p));
      return 1;
    }
    throw e;
  }
  const state = cp.controlPlane.state();
  const first = [...state.services.values()].find((s) => s.instances.length > 0);
  console.log(`clinimesh: mesh '${state.mesh.name}' (trust domain ${state.mesh.trustDomain}), revision ${state.revision}, ${state.services.size} services`);
  console.log(`  xDS gRPC (ADS):   ${cp.host}:${cp.xdsPort}`);
  console.log(`  xDS REST polling: http://${cp.host}:${cp.xdsRestPort}/v3/discovery:<type>`);
  console.log(`  admin API:        ${cp.adminUrl}  (/v1/status, /v1/apply, /metrics, /healthz, /readyz)`);
  if (first) {
    console.log(`start a sidecar:`);
    console.log(`  npm run clinimesh -- bootstrap --namespace ${first.namespace} --service ${first.name} --instance ${first.instances[0]!.name} --xds-port ${cp.xdsPort} > envoy.json`);
    console.log(`  envoy -c envoy.json    # (npm run envoy installs Envoy into .envoy/ if you have none)`);
  }
  const shutdown = () => {
    void cp.stop().then(() => process.exit(0));
  };
  process.once('SIGINT', shutdown);
  process.once('SIGTERM', shutdown);
  return 0;
}

