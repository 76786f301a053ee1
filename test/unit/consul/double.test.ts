// The double's own promises, beyond the shared contract: parameter validation, filtering, catalog
// endpoints, ACL token sources, no namespaces, TTLs and the test controls (stop/start, failNext).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConsulDouble } from '../../consul-double/server.ts';
import { httpRequest } from '../../helpers/upstream.ts';
import { waitFor } from '../../helpers/wait.ts';

const TOKEN = 'f00df00d-0000-4000-8000-000000000001';
const READ = 'f00df00d-0000-4000-8000-000000000002';

describe('the Consul double', () => {
  let double: ConsulDouble;
  const get = (path: string, token = TOKEN) =>
    httpRequest(`http://${double.address}${path}`, { headers: { 'x-consul-token': token } });
  const put = (path: string, body?: unknown, headers: Record<string, string> = { 'x-consul-token': TOKEN }) =>
    httpRequest(`http://${double.address}${path}`, {
      method: 'PUT',
      headers,
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
  const json = async (path: string) =>
    JSON.parse((await get(path)).body) as Array<Record<string, Record<string, unknown>>>;

  beforeAll(async () => {
    double = await ConsulDouble.start({ acl: { management: TOKEN, read: [READ] } });
    double.addNode({
      name: 'node-eu',
      address: '127.0.30.1',
      meta: { region: 'eu-west', zone: 'eu-west-1a' },
    });
    double.registerService(
      { ID: 'lab-1', Name: 'lab', Port: 9001, Tags: ['primary', 'v2'], Meta: { zone: 'a' } },
      { node: 'node-eu' },
    );
    double.registerService({
      ID: 'lab-2',
      Name: 'lab',
      Port: 9002,
      Tags: ['v2'],
      Check: { CheckID: 'lab-2-ttl', TTL: '10m', Status: 'warning' },
    });
  });
  afterAll(() => double.stop());

  it('answers with Consul headers and never an index below 1', async () => {
    const res = await get('/v1/health/service/lab');
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toBe('application/json');
    expect(Number(res.headers['x-consul-index'])).toBeGreaterThanOrEqual(1);
    expect(res.headers['x-consul-knownleader']).toBe('true');
    expect(res.headers['x-consul-lastcontact']).toBe('0');
    expect(res.headers['x-consul-query-backend']).toBe('blocking-query');
    expect(res.headers['x-consul-default-acl-policy']).toBe('deny');
  });

  it('returns health entries in Consul shape, node checks included', async () => {
    const eu = (await json('/v1/health/service/lab')).find((e) => e.Service!.ID === 'lab-1');
    expect(eu!.Node).toMatchObject({
      Node: 'node-eu',
      Address: '127.0.30.1',
      Datacenter: 'dc1',
      Meta: { region: 'eu-west' },
    });
    expect(eu!.Service).toMatchObject({
      ID: 'lab-1',
      Service: 'lab',
      Tags: ['primary', 'v2'],
      Address: '',
      Port: 9001,
      Weights: { Passing: 1, Warning: 1 },
    });
    expect(eu!.Checks).toEqual([
      expect.objectContaining({ CheckID: 'serfHealth', Status: 'passing', ServiceID: '' }),
    ]);
  });

  it('rejects a bad index, wait, consistency mix or datacenter as Consul does', async () => {
    expect((await get('/v1/health/service/lab?index=x')).status).toBe(400);
    expect((await get('/v1/health/service/lab?index=1&wait=5')).status).toBe(400);
    expect((await get('/v1/health/service/lab?stale&consistent')).status).toBe(400);
    expect(await get('/v1/health/service/lab?dc=dc9')).toMatchObject({
      status: 500,
      body: 'No path to datacenter',
    });
  });

  it('holds a blocking query for wait plus at most wait/16', async () => {
    const index = (await get('/v1/health/service/lab')).headers['x-consul-index'];
    const started = Date.now();
    const res = await get(`/v1/health/service/lab?index=${index}&wait=320ms`);
    const elapsed = Date.now() - started;
    expect(elapsed).toBeGreaterThanOrEqual(315);
    expect(elapsed).toBeLessThan(320 + 20 + 1_000);
    expect(res.headers['x-consul-index']).toBe(index);
  });

  it('filters by passing, tag, node-meta and filter expressions', async () => {
    const ids = async (q: string) => (await json(`/v1/health/service/lab?${q}`)).map((e) => e.Service!.ID);
    expect(await ids('passing')).toEqual(['lab-1']);
    expect(await ids('passing=false')).toEqual(['lab-2', 'lab-1']); // by node name, then ID
    expect(await ids('tag=primary&tag=v2')).toEqual(['lab-1']);
    expect(await ids('node-meta=region:eu-west')).toEqual(['lab-1']);
    expect(await ids(`filter=${encodeURIComponent('Service.Meta.zone == "a"')}`)).toEqual(['lab-1']);
    expect(
      await ids(`filter=${encodeURIComponent('"primary" not in Service.Tags and Service.Port == 9002')}`),
    ).toEqual(['lab-2']);
    expect((await get(`/v1/health/service/lab?filter=${encodeURIComponent('(a == b)')}`)).status).toBe(400);
  });

  it('lists catalog services with their tags, and holds a catalog query through a check change', async () => {
    const res = await get('/v1/catalog/services');
    expect(JSON.parse(res.body)).toEqual({ consul: [], lab: ['primary', 'v2'] });
    const index = res.headers['x-consul-index'];
    const pending = get(`/v1/catalog/services?index=${index}&wait=2s`);
    await waitFor(async () => double.pendingBlockingQueries === 1, { what: 'the held query' });
    double.setCheckStatus('lab-2-ttl', 'critical');
    double.setCheckStatus('lab-2-ttl', 'warning');
    expect(double.pendingBlockingQueries).toBe(1);
    double.registerService({ ID: 'pacs-1', Name: 'pacs', Port: 104 });
    const after = await pending;
    expect(Number(after.headers['x-consul-index'])).toBeGreaterThan(Number(index));
    expect(Object.keys(JSON.parse(after.body))).toEqual(['consul', 'lab', 'pacs']);
    double.deregisterService('pacs-1');
  });

  it('lists a catalog service in Consul shape', async () => {
    const [entry] = JSON.parse((await get('/v1/catalog/service/lab?tag=primary')).body) as Array<
      Record<string, unknown>
    >;
    expect(entry).toMatchObject({
      Node: 'node-eu',
      Address: '127.0.30.1',
      NodeMeta: { zone: 'eu-west-1a' },
      ServiceID: 'lab-1',
      ServiceName: 'lab',
      ServicePort: 9001,
      ServiceWeights: { Passing: 1, Warning: 1 },
    });
  });

  it('registers like an agent: snake_case keys, defaults, validation, 404 for unknown IDs', async () => {
    expect(
      (await put('/v1/agent/service/register', { name: 'ris', port: 8042, enable_tag_override: true }))
        .status,
    ).toBe(200);
    const [ris] = await json('/v1/health/service/ris');
    expect(ris!.Service).toMatchObject({
      ID: 'ris',
      Service: 'ris',
      Port: 8042,
      EnableTagOverride: true,
      Weights: { Passing: 1, Warning: 1 },
    });
    expect(await put('/v1/agent/service/register', { Port: 1 })).toMatchObject({
      status: 400,
      body: 'Missing service name',
    });
    expect((await put('/v1/agent/service/register', { Name: 'x', Meta: { 'bad.key': 'v' } })).status).toBe(
      400,
    );
    expect(
      (await put('/v1/agent/service/register', { Name: 'x', Weights: { Passing: 0, Warning: 1 } })).status,
    ).toBe(400);
    expect((await put('/v1/agent/service/deregister/ris')).status).toBe(200);
    expect((await put('/v1/agent/service/deregister/ris')).status).toBe(404);
  });

  it('updates checks through the agent API, only moving the index when something changed', async () => {
    expect((await put('/v1/agent/check/update/lab-2-ttl', { Status: 'passing', Output: 'ok' })).status).toBe(
      200,
    );
    const index = double.index;
    expect((await put('/v1/agent/check/update/lab-2-ttl', { Status: 'passing', Output: 'ok' })).status).toBe(
      200,
    );
    expect(double.index).toBe(index);
    expect((await put('/v1/agent/check/warn/lab-2-ttl?note=slow')).status).toBe(200);
    expect(double.index).toBe(index + 1);
    expect((await put('/v1/agent/check/pass/nope')).status).toBe(404);
    expect((await put('/v1/agent/check/update/lab-2-ttl', { Status: 'sideways' })).status).toBe(400);
  });

  it("lets tests replace a service's checks and set their status directly", async () => {
    double.setChecks('lab-1', [{ CheckID: 'lab-1-a', Status: 'passing' }, { Status: 'warning' }], 'node-eu');
    const lab1 = async () =>
      (await json('/v1/health/service/lab')).find((e) => e.Service!.ID === 'lab-1')!
        .Checks as unknown as Array<Record<string, string>>;
    expect((await lab1()).map((c) => [c.CheckID, c.Status])).toEqual([
      ['lab-1-a', 'passing'],
      ['service:lab-1:2', 'warning'],
      ['serfHealth', 'passing'],
    ]);
    double.setCheckStatus('service:lab-1:2', 'passing', '', 'node-eu');
    expect((await lab1()).every((c) => c.Status === 'passing')).toBe(true);
    double.setChecks('lab-1', [], 'node-eu');
  });

  it('turns a TTL check critical when it is not refreshed in time', async () => {
    double.registerService({
      ID: 'ttl-1',
      Name: 'ttl',
      Port: 1,
      Check: { CheckID: 'ttl-1-check', TTL: '300ms', Status: 'passing' },
    });
    await waitFor(
      async () =>
        JSON.stringify(await json('/v1/health/service/ttl')).includes(
          '"Status":"critical","Notes":"","Output":"TTL expired"',
        ),
      { what: 'the TTL to expire' },
    );
    double.deregisterService('ttl-1');
  });

  it('takes tokens from the header, a bearer token or ?token=, and enforces read versus write', async () => {
    const bare = (path: string, headers: Record<string, string> = {}) =>
      httpRequest(`http://${double.address}${path}`, { headers });
    expect((await bare(`/v1/health/service/lab?token=${TOKEN}`)).body).toContain('lab-1');
    expect((await bare('/v1/health/service/lab', { authorization: `Bearer ${TOKEN}` })).body).toContain(
      'lab-1',
    );
    const anonymous = await bare('/v1/health/service/lab');
    expect([anonymous.body, anonymous.headers['x-consul-results-filtered-by-acls']]).toEqual(['[]', 'true']);
    expect(await get('/v1/health/service/lab', 'f00df00d-0000-4000-8000-0000000000ff')).toMatchObject({
      status: 403,
      body: 'ACL not found',
    });
    expect((await get('/v1/health/service/lab', READ)).body).toContain('lab-1');
    const denied = await put('/v1/agent/service/register', { Name: 'x' }, { 'x-consul-token': READ });
    expect(denied.status).toBe(403);
    expect(denied.body).toMatch(/^Permission denied/);
  });

  it('has no namespaces, as open-source Consul: a Namespace field other than default is refused', async () => {
    const res = await put('/v1/agent/service/register', {
      ID: 'emr-ns',
      Name: 'emr',
      Port: 1,
      Namespace: 'clinical',
    });
    expect([res.status, res.body]).toEqual([
      400,
      'Request decode failed: json: unknown field "Namespace" - Namespaces are a Consul Enterprise feature',
    ]);
    const plain = await put('/v1/agent/service/register', {
      ID: 'emr-ns',
      Name: 'emr',
      Port: 1,
      Namespace: 'default',
    });
    expect(plain.status).toBe(200);
    expect((await json('/v1/health/service/emr')).map((e) => e.Service!.ID)).toEqual(['emr-ns']);
    double.deregisterService('emr-ns');
  });

  it('goes down and comes back on the same port with its state, and fails on demand', async () => {
    const port = double.port;
    await double.stop();
    await expect(get('/v1/health/service/lab')).rejects.toThrow();
    double.registerService({ ID: 'lab-3', Name: 'lab', Port: 9003 });
    await double.start();
    expect(double.port).toBe(port);
    expect((await json('/v1/health/service/lab')).map((e) => e.Service!.ID)).toContain('lab-3');
    double.failNext(2, 503, 'overloaded');
    expect(await get('/v1/health/service/lab')).toMatchObject({ status: 503, body: 'overloaded' });
    expect((await get('/v1/health/service/lab')).status).toBe(503);
    expect((await get('/v1/health/service/lab')).status).toBe(200);
  });

  it('pauses as a partition (connections held, unanswered) and resumes on the same port with its state', async () => {
    const port = double.port;
    await double.pause('hang');
    await expect(
      httpRequest(`http://${double.address}/v1/health/service/lab`, { timeoutMs: 500 }),
    ).rejects.toThrow(/no complete response/);
    double.registerService({ ID: 'lab-4', Name: 'lab', Port: 9004 });
    await double.resume();
    expect(double.port).toBe(port);
    expect((await json('/v1/health/service/lab')).map((e) => e.Service!.ID)).toContain('lab-4');
    await double.pause();
    await expect(get('/v1/health/service/lab')).rejects.toThrow(/ECONNREFUSED/);
    await double.resume();
    expect((await get('/v1/health/service/lab')).status).toBe(200);
    double.deregisterService('lab-4');
  });
});
