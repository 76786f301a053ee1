// The real-Envoy harness proves itself without the control plane: a static bootstrap routes to named
// upstreams, and the test reads what happened from the bodies, the upstreams and Envoy's admin API.
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { describeWithEnvoy, dumpLogsOnFailure, startEnvoy } from '../helpers/envoy.ts';
import type { EnvoyHandle } from '../helpers/envoy.ts';
import { freePort, loopbackAddress } from '../helpers/ports.ts';
import { httpRequest, startHttpUpstream, startTcpEchoUpstream } from '../helpers/upstream.ts';
import type { ServedBy, Upstream } from '../helpers/upstream.ts';
import { waitFor } from '../helpers/wait.ts';
import { createConnection } from 'node:net';

const ROUTER = 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router';
const HCM =
  'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager';
const TCP_PROXY = 'type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy';

function staticCluster(name: string, upstreams: Upstream[]): object {
  const lbEndpoints = upstreams.map((u) => ({
    endpoint: { address: { socket_address: { address: u.host, port_value: u.port } } },
  }));
  return {
    name,
    type: 'STATIC',
    connect_timeout: '1s',
    lb_policy: 'ROUND_ROBIN',
    load_assignment: { cluster_name: name, endpoints: [{ lb_endpoints: lbEndpoints }] },
  };
}

function listener(name: string, address: string, port: number, filter: object): object {
  return {
    name,
    address: { socket_address: { address, port_value: port } },
    filter_chains: [{ filters: [filter] }],
  };
}

function httpProxy(cluster: string): object {
  const routeConfig = {
    name: 'local',
    virtual_hosts: [
      { name: 'all', domains: ['*'], routes: [{ match: { prefix: '/' }, route: { cluster } }] },
    ],
  };
  const hcm = {
    '@type': HCM,
    stat_prefix: 'ingress_http',
    route_config: routeConfig,
    http_filters: [{ name: 'envoy.filters.http.router', typed_config: { '@type': ROUTER } }],
  };
  return { name: 'envoy.filters.network.http_connection_manager', typed_config: hcm };
}

function tcpProxy(cluster: string): object {
  return {
    name: 'envoy.filters.network.tcp_proxy',
    typed_config: { '@type': TCP_PROXY, stat_prefix: 'ingress_tcp', cluster },
  };
}

function tcpExchange(host: string, port: number, send: string, expectBytes: number): Promise<string> {
  return new Promise((resolve, reject) => {
    let received = '';
    const socket = createConnection({ host, port }, () => socket.write(send));
    socket.setTimeout(5_000, () => socket.destroy(new Error('tcp exchange timed out')));
    socket.on('data', (chunk: Buffer) => {
      received += chunk.toString('utf8');
      if (received.length >= expectBytes) socket.end();
    });
    socket.on('error', reject);
    socket.on('close', () => resolve(received));
  });
}

describeWithEnvoy('the real-Envoy test harness', () => {
  const listenHost = loopbackAddress();
  let envoy: EnvoyHandle | undefined;
  let his: Upstream[] = [];
  let pacs: Upstream | undefined;
  let httpPort = 0;
  let tcpPort = 0;

  beforeAll(async () => {
    his = await Promise.all(
      ['his-1', 'his-2'].map((name) => startHttpUpstream({ name, host: loopbackAddress() })),
    );
    pacs = await startTcpEchoUpstream({ name: 'pacs', host: loopbackAddress() });
    httpPort = await freePort(listenHost);
    envoy = await startEnvoy({
      name: 'harness',
      bootstrap: {
        static_resources: {
          listeners: [
            listener('http_in', listenHost, httpPort, httpProxy('his')),
            // Port 0: the test reads the real port back from /listeners.
            listener('tcp_in', listenHost, 0, tcpProxy('pacs')),
          ],
          clusters: [staticCluster('his', his), staticCluster('pacs', [pacs])],
        },
      },
    });
    tcpPort = (await envoy.listenerPorts()).tcp_in ?? 0;
  });

  afterEach(dumpLogsOnFailure(() => [envoy]));

  afterAll(async () => {
    await envoy?.stop();
    await Promise.all([...his, pacs].map((u) => u?.close()));
  });

  it('reports bound ports of its listeners, including one bound to port 0', async () => {
    const ports = await envoy!.listenerPorts();
    expect(ports.http_in).toBe(httpPort);
    expect(tcpPort).toBeGreaterThan(0);
  });

  it('shows each static cluster with its healthy hosts', async () => {
    const hosts = await envoy!.clusterEndpoints('his');
    expect(hosts.map((h) => h.address).sort()).toEqual(his.map((u) => `${u.host}:${u.port}`).sort());
    expect(hosts.every((h) => h.healthy)).toBe(true);
    await expect(envoy!.clusterEndpoints('no-such-cluster')).rejects.toThrow(/not in \/clusters/);
  });

  it('round-robins HTTP requests over both upstreams and says who served each', async () => {
    const before = his.map((u) => u.count);
    const servedBy: string[] = [];
    for (let i = 0; i < 6; i++) {
      const res = await httpRequest(`http://${listenHost}:${httpPort}/patients/${i}`, {
        headers: { 'x-request-id': `req-${i}` },
      });
      expect(res.status).toBe(200);
      expect(res.headers['x-request-id']).toBe(`req-${i}`);
      const body = JSON.parse(res.body) as ServedBy;
      expect(body).toMatchObject({ method: 'GET', path: `/patients/${i}` });
      servedBy.push(body.served_by);
    }
    expect(servedBy.filter((n) => n === 'his-1')).toHaveLength(3);
    expect(servedBy.filter((n) => n === 'his-2')).toHaveLength(3);
    expect(his.map((u, i) => u.count - (before[i] ?? 0))).toEqual([3, 3]);
  });

  it('proxies TCP to the echo upstream', async () => {
    const reply = await tcpExchange(listenHost, tcpPort, 'ping', 'pacs:ping'.length);
    expect(reply).toBe('pacs:ping');
    expect(pacs!.count).toBe(1);
  });

  it('reads counters from /stats', async () => {
    const stats = await waitFor(
      async () => {
        const s = await envoy!.stats(
          '^cluster\\.his\\.upstream_rq_total$|^http\\.ingress_http\\.downstream_rq_2xx$',
        );
        return (s['cluster.his.upstream_rq_total'] ?? 0) >= 6 && s;
      },
      { what: 'cluster.his.upstream_rq_total to reach 6', timeoutMs: 5_000 },
    );
    expect(stats['http.ingress_http.downstream_rq_2xx']).toBe(6);
    expect(Object.keys(stats).sort()).toEqual([
      'cluster.his.upstream_rq_total',
      'http.ingress_http.downstream_rq_2xx',
    ]);
  });

  it('keeps the log readable and stops idempotently', async () => {
    // The log file is flushed every 100 ms (see startEnvoy), so the line may take a moment to appear.
    await waitFor(async () => /starting main dispatch loop/.test(envoy!.logTail(500)), {
      what: 'envoy.log to say the dispatch loop started',
      timeoutMs: 5_000,
    });
    const first = envoy!.stop();
    const second = envoy!.stop();
    await Promise.all([first, second]);
    await expect(envoy!.admin('/ready')).rejects.toThrow();
    expect(envoy!.logTail(500)).toMatch(/main dispatch loop exited/);
  });
});
