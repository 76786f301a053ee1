// What Prometheus scrapes from a real control plane: standard Node/process metrics under their stock
// names, sidecars by sync state, the soonest expiry of the certificates the control plane holds, and
// how long applies take.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sidecarSyncState } from '../../../src/admin/metrics.ts';
import { startControlPlane, type RunningControlPlane } from '../../../src/main.ts';
import { CLUSTER, ENDPOINT, LISTENER } from '../../../src/xds/resources/type-urls.ts';
import { StatusRegistry } from '../../../src/xds/status.ts';
import { adminRequest } from '../../helpers/admin.ts';
import { serviceYaml } from '../admin/fixtures.ts';

/** `name{labels} value` lines of a scrape, as a map from `name{labels}` to the value. */
function samples(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const at = line.lastIndexOf(' ');
    out.set(line.slice(0, at), Number(line.slice(at + 1)));
  }
  return out;
}

describe('metrics', () => {
  let cp: RunningControlPlane;
  const scrape = async () => {
    const res = await adminRequest(cp, 'GET', '/metrics');
    expect(res.status).toBe(200);
    return { text: res.text, values: samples(res.text) };
  };

  beforeAll(async () => {
    cp = await startControlPlane({ xdsPort: 0, xdsRestPort: 0, adminPort: 0 });
  });
  afterAll(async () => {
    await cp?.stop();
  });

  it('exposes standard Node and process metrics unprefixed, as stock dashboards expect', async () => {
    const { text, values } = await scrape();
    for (const name of [
      'process_cpu_seconds_total',
      'process_start_time_seconds',
      'process_resident_memory_bytes',
      'nodejs_heap_size_used_bytes',
      'nodejs_eventloop_lag_seconds',
      'nodejs_version_info',
    ])
      expect(text, name).toMatch(new RegExp(`^${name}[{ ]`, 'm'));
    expect(text).not.toMatch(/^clinimesh_(process|nodejs)_/m);
    expect(values.get('process_cpu_seconds_total')).toBeGreaterThan(0);
  });

  it('counts sidecars by sync state, from the status registry at scrape time', async () => {
    const s = cp.statuses;
    const synced = s.open('clinical/emr/emr-1', 'ads', 'test');
    s.pushed(synced, CLUSTER, 'c1', 'n1', 10);
    s.acked(synced, CLUSTER, 'c1');
    const stale = s.open('clinical/his/his-1', 'ads', 'test');
    s.pushed(stale, CLUSTER, 'c1', 'n2', 10);
    s.acked(stale, CLUSTER, 'c1');
    s.pushed(stale, ENDPOINT, 'e1', 'n3', 10); // in flight
    const nacked = s.open('clinical/his/his-2', 'rest', 'test');
    s.pushed(nacked, CLUSTER, 'c1', 'n4', 10);
    s.acked(nacked, CLUSTER, 'c1');
    s.pushed(nacked, LISTENER, 'l2', 'n5', 10);
    s.nacked(nacked, LISTENER, {
      version: 'l2',
      nonce: 'n5',
      error: 'bad listener',
      at: new Date().toISOString(),
    });
    try {
      const { values } = await scrape();
      expect(values.get('clinimesh_sidecars{state="synced"}')).toBe(1);
      expect(values.get('clinimesh_sidecars{state="stale"}')).toBe(1);
      expect(values.get('clinimesh_sidecars{state="nacked"}')).toBe(1);
    } finally {
      for (const x of [synced, stale, nacked]) s.close(x);
    }
    const { values } = await scrape();
    expect(values.get('clinimesh_sidecars{state="synced"}')).toBe(0);
    expect(values.get('clinimesh_sidecars{state="nacked"}')).toBe(0);
  });

  it('gives the soonest expiry of the root, the intermediate (when one signs) and the serving certificate', async () => {
    const { values } = await scrape();
    const ca = cp.ca.describe();
    expect(values.get('clinimesh_certificate_expiry_timestamp_seconds{kind="root"}')).toBe(
      new Date(ca.root.notAfter).getTime() / 1000,
    );
    const serving = values.get('clinimesh_certificate_expiry_timestamp_seconds{kind="serving"}')!;
    expect(serving * 1000).toBeGreaterThan(Date.now());
    expect(serving * 1000).toBeLessThanOrEqual(new Date(ca.signerExpiresAt).getTime());
    if (ca.intermediate)
      expect(values.get('clinimesh_certificate_expiry_timestamp_seconds{kind="intermediate"}')).toBe(
        new Date(ca.intermediate.notAfter).getTime() / 1000,
      );
    else
      expect(values.has('clinimesh_certificate_expiry_timestamp_seconds{kind="intermediate"}')).toBe(false);
  });

  it('times applies through the admin API by result, and leaves dry runs out', async () => {
    const count = (values: Map<string, number>, result: string) =>
      values.get(`clinimesh_apply_duration_seconds_count{result="${result}"}`) ?? 0;
    const before = (await scrape()).values;
    const ok = await adminRequest(cp, 'POST', '/v1/apply', { body: serviceYaml('clinical', 'lab') });
    expect(ok.status).toBe(200);
    const dry = await adminRequest(cp, 'POST', '/v1/apply?dryRun=true', {
      body: serviceYaml('clinical', 'pharmacy'),
    });
    expect(dry.status).toBe(200);
    // Valid YAML the store refuses: an AccessPolicy for a service that does not exist.
    const refused = await adminRequest(cp, 'POST', '/v1/apply', {
      body: 'apiVersion: clinimesh.io/v1alpha1\nkind: AccessPolicy\nmetadata: { name: p, namespace: clinical }\nspec:\n  destination: nowhere\n  rules: [{ from: [{ service: lab }] }]\n',
    });
    expect(refused.status, refused.text).toBe(400);
    const after = (await scrape()).values;
    expect(count(after, 'ok') - count(before, 'ok')).toBe(1);
    expect(after.get('clinimesh_apply_duration_seconds_sum{result="ok"}')).toBeGreaterThan(0);
    expect(count(after, 'rejected') - count(before, 'rejected')).toBe(1);
    expect(after.has('clinimesh_apply_duration_seconds_bucket{le="0.1",result="ok"}')).toBe(true);
  });
});

describe('sidecarSyncState', () => {
  const registry = new StatusRegistry();

  it('is stale before any exchange, synced once every type ACKed what was sent', () => {
    const s = registry.open('a/b/c', 'ads', 'x');
    expect(sidecarSyncState(s)).toBe('stale');
    registry.pushed(s, CLUSTER, 'v1', 'n1', 1);
    expect(sidecarSyncState(s)).toBe('stale');
    registry.acked(s, CLUSTER, 'v1');
    expect(sidecarSyncState(s)).toBe('synced');
  });

  it('is nacked while the answer to the last push was a NACK, and synced again after an ACK', () => {
    const s = registry.open('a/b/d', 'ads', 'x');
    registry.pushed(s, CLUSTER, 'v1', 'n1', 1);
    registry.acked(s, CLUSTER, 'v1');
    registry.pushed(s, CLUSTER, 'v2', 'n2', 1);
    registry.nacked(s, CLUSTER, { version: 'v2', nonce: 'n2', error: 'no', at: '' });
    expect(sidecarSyncState(s)).toBe('nacked');
    registry.pushed(s, CLUSTER, 'v3', 'n3', 1);
    expect(sidecarSyncState(s)).toBe('stale');
    registry.acked(s, CLUSTER, 'v3');
    // The old NACK stays on record, but it no longer describes what the sidecar runs.
    expect(sidecarSyncState(s)).toBe('synced');
  });
});
