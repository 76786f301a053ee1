import { describe, expect, it } from 'vitest';
import { createConsulClient } from '../../../src/consul/http.ts';
import { consulConfigFromEnv, parseConsulAddress } from '../../../src/consul/config.ts';

const fields = (r: ReturnType<typeof consulConfigFromEnv>) =>
  r.ok ? [] : r.errors.map((p) => [p.code, p.field]);

describe('CONSUL_HTTP_ADDR', () => {
  it('defaults to 127.0.0.1:8500 over http', () => {
    expect(consulConfigFromEnv({})).toMatchObject({
      ok: true,
      value: { address: { scheme: 'http', host: '127.0.0.1', port: 8500 } },
    });
  });

  it('accepts host:port, [v6]:port, explicit schemes and unix sockets', () => {
    expect(parseConsulAddress('consul.service:8500', false).address).toEqual({
      scheme: 'http',
      host: 'consul.service',
      port: 8500,
    });
    expect(parseConsulAddress('[::1]:8501', true).address).toEqual({
      scheme: 'https',
      host: '[::1]',
      port: 8501,
    });
    expect(parseConsulAddress('https://10.0.0.1:8501', false).address).toEqual({
      scheme: 'https',
      host: '10.0.0.1',
      port: 8501,
    });
    expect(parseConsulAddress('unix:///var/run/consul.sock', false).address).toEqual({
      scheme: 'unix',
      socketPath: '/var/run/consul.sock',
    });
  });

  it('lets an explicit scheme win over CONSUL_HTTP_SSL, as Consul does', () => {
    const r = consulConfigFromEnv({ CONSUL_HTTP_ADDR: 'http://10.0.0.1:8500', CONSUL_HTTP_SSL: 'true' });
    expect(r.ok && r.value.address).toEqual({ scheme: 'http', host: '10.0.0.1', port: 8500 });
    const ssl = consulConfigFromEnv({ CONSUL_HTTP_ADDR: '10.0.0.1:8501', CONSUL_HTTP_SSL: '1' });
    expect(ssl.ok && ssl.value.address).toEqual({ scheme: 'https', host: '10.0.0.1', port: 8501 });
  });

  it('names the variable that holds a bad address, scheme or port', () => {
    expect(fields(consulConfigFromEnv({ CONSUL_HTTP_ADDR: 'ftp://x:1' }))).toEqual([
      ['CONSUL', 'CONSUL_HTTP_ADDR'],
    ]);
    expect(fields(consulConfigFromEnv({ CONSUL_HTTP_ADDR: 'x:99999' }))).toEqual([
      ['CONSUL', 'CONSUL_HTTP_ADDR'],
    ]);
    expect(fields(consulConfigFromEnv({}, { address: 'a b' }))).toEqual([['CONSUL', '--consul-http-addr']]);
  });
});

describe('the other Consul variables', () => {
  it('reads the token, TLS files, namespace and TLS settings', () => {
    const r = consulConfigFromEnv({
      CONSUL_HTTP_TOKEN: 'secret-1',
      CONSUL_CACERT: '/etc/consul/ca.pem',
      CONSUL_CLIENT_CERT: '/etc/consul/cert.pem',
      CONSUL_CLIENT_KEY: '/etc/consul/key.pem',
      CONSUL_HTTP_SSL_VERIFY: 'false',
      CONSUL_TLS_SERVER_NAME: 'server.dc1.consul',
      CONSUL_NAMESPACE: 'clinical',
    });
    expect(r).toMatchObject({
      ok: true,
      value: {
        token: 'secret-1',
        tls: {
          caFile: '/etc/consul/ca.pem',
          certFile: '/etc/consul/cert.pem',
          keyFile: '/etc/consul/key.pem',
          serverName: 'server.dc1.consul',
          insecureSkipVerify: true,
        },
        namespace: 'clinical',
        origins: { token: 'CONSUL_HTTP_TOKEN', caFile: 'CONSUL_CACERT' },
      },
    });
  });

  it('lets flags override the environment', () => {
    const r = consulConfigFromEnv(
      { CONSUL_HTTP_ADDR: '10.0.0.1:8500', CONSUL_HTTP_TOKEN: 'env', CONSUL_NAMESPACE: 'a' },
      { address: 'https://10.0.0.2:8501', token: 'flag', namespace: 'b', datacenter: 'dc2', ssl: false },
    );
    expect(r).toMatchObject({
      ok: true,
      value: {
        address: { scheme: 'https', host: '10.0.0.2' },
        token: 'flag',
        namespace: 'b',
        datacenter: 'dc2',
        origins: { token: '--consul-token' },
      },
    });
  });

  it('reports every bad variable at once, by name', () => {
    const r = consulConfigFromEnv(
      {
        CONSUL_HTTP_SSL: 'yes',
        CONSUL_HTTP_TOKEN: 'has space',
        CONSUL_CLIENT_CERT: '/c.pem',
        CONSUL_NAMESPACE: 'no/slashes',
      },
      { datacenter: 'dc 1' },
    );
    expect(fields(r)).toEqual([
      ['CONSUL', 'CONSUL_HTTP_SSL'],
      ['CONSUL', 'CONSUL_HTTP_TOKEN'],
      ['CONSUL', 'CONSUL_CLIENT_CERT'],
      ['CONSUL', '--consul-datacenter'],
      ['CONSUL', 'CONSUL_NAMESPACE'],
    ]);
  });
});

describe('creating the client', () => {
  it('names the variable whose file cannot be read', async () => {
    const config = consulConfigFromEnv({
      CONSUL_CACERT: '/nope/ca.pem',
      CONSUL_HTTP_TOKEN_FILE: '/nope/token',
    });
    if (!config.ok) throw new Error('config');
    const client = await createConsulClient(config.value, {
      readFile: () => Promise.reject(new Error('ENOENT')),
    });
    expect(client.ok ? [] : client.errors.map((p) => p.field)).toEqual([
      'CONSUL_HTTP_TOKEN_FILE',
      'CONSUL_CACERT',
    ]);
  });
});
