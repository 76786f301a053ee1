// `clinimesh agent`: the node agent beside one Envoy. It attests the workload, keeps its keys here,
// writes Envoy's bootstrap and secret files into --out-dir, and renews them until stopped.
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { parseArgs } from 'node:util';
import { startAgent } from '../agent/agent.ts';
import { ClinimeshError, formatProblem } from '../errors.ts';
import type { Evidence } from '../identity/attestation.ts';

export const usage = `clinimesh agent --control-plane HOST:PORT --out-dir DIR (--join-token T | --join-token-file F | --k8s-token-file F)
  [--instance NAME (default: the token's, else $POD_NAME, else the host name)] [--ca-file FILE]
  [--transport ads|rest] [--xds-address HOST:PORT] [--envoy-admin-port 15000] [--audit-log PATH]
  [--bundle-poll 30s] [--proxyless [--xds-proxy-port 15010]]
Attests this workload to the control plane (HTTPS port, default 18001), makes its keys locally, and
writes DIR/envoy.json and DIR/sds/ for Envoy: run \`envoy -c DIR/envoy.json\` beside it.
With --proxyless it serves a proxyless gRPC application instead: DIR/grpc-bootstrap.json (set
GRPC_XDS_BOOTSTRAP to it), certificate files in DIR/certs/, and a loopback xDS proxy that carries the
application's ADS stream to the control plane over the agent's mutual TLS.`;

function seconds(text: string | undefined, fallback: number): number {
  if (!text) return fallback;
  const m = /^(\d+)(ms|s|m)?$/.exec(text);
  if (!m) return NaN;
  return Number(m[1]) * (m[2] === 'ms' ? 1 : m[2] === 'm' ? 60_000 : 1000);
}

export async function agentCommand(args: string[]): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args,
      options: {
        'control-plane': { type: 'string', default: process.env.CLINIMESH_CONTROL_PLANE },
        'out-dir': { type: 'string' },
        'join-token': { type: 'string', default: process.env.CLINIMESH_JOIN_TOKEN },
        'join-token-file': { type: 'string' },
        'k8s-token-file': { type: 'string' },
        instance: { type: 'string' },
        'ca-file': { type: 'string' },
        transport: { type: 'string', default: 'ads' },
        'xds-address': { type: 'string' },
        'envoy-admin-port': { type: 'string', default: '15000' },
        'audit-log': { type: 'string' },
        'bundle-poll': { type: 'string' },
        proxyless: { type: 'boolean', default: false },
        'xds-proxy-port': { type: 'string', default: '15010' },
        help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (e) {
    console.error(`${(e as Error).message}\n${usage}`);
    return 2;
  }
  if (values.help) {
    console.log(usage);
    return 0;
  }
  const transport = values.transport;
  const pollMs = seconds(values['bundle-poll'], 30_000);
  const evidenceFlags = [values['join-token'], values['join-token-file'], values['k8s-token-file']].filter(Boolean).length;
  if (!values['control-plane'] || !values['out-dir'] || evidenceFlags !== 1 || (transport !== 'ads' && transport !== 'rest') || !(pollMs > 0)) {
    console.error(usage);
    return 2;
  }
  const read = (file: string) => readFileSync(file, 'utf8').trim();
  // Files are read again at each attestation: kubelet rotates projected tokens.
  const evidence = (): Evidence | undefined => {
    if (values['k8s-token-file']) return { kubernetesToken: read(values['k8s-token-file']) };
    if (values['join-token-file']) return { joinToken: read(values['join-token-file']) };
    return values['join-token'] ? { joinToken: values['join-token'] } : undefined;
  };
  try {
    const agent = await startAgent({
      controlPlane: values['control-plane'],
      evidence,
      caPem: values['ca-file'] ? readFileSync(values['ca-file'], 'utf8') : undefined,
      instance: values.instance ?? process.env.POD_NAME ?? (values['k8s-token-file'] ? hostname() : undefined),
      outDir: values['out-dir'],
      transport,
      xdsAddress: values['xds-address'],
      envoyAdminPort: Number(values['envoy-admin-port']),
      auditLog: values['audit-log'],
      bundlePollMs: pollMs,
      ...(values.proxyless && { proxyless: { xdsProxyPort: Number(values['xds-proxy-port']) } }),
    });
    process.on('SIGHUP', () => void agent.renewNow());
    const stop = () => {
      agent.stop();
      process.exit(0);
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    // Keep running: renewals are timers the agent unrefs.
    setInterval(() => undefined, 1 << 30);
    return 0;
  } catch (e) {
    if (e instanceof ClinimeshError) {
      for (const p of e.problems) console.error(formatProblem(p));
      return 1;
    }
    if (e instanceof Error && 'code' in e) {
      console.error(`clinimesh agent: ${e.message}`);
      return 1;
    }
    throw e;
  }
}
