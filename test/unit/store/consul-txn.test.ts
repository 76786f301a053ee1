import { describe, expect, it } from 'vitest';
import { kvPath, kvProblem } from '../../../src/store/consul-kv.ts';
import { ConsulHttpError } from '../../../src/consul/http.ts';
import { decodeEntries, encodeTxnOps, txnSize } from '../../../src/store/consul-txn.ts';

describe('Consul KV wire shapes', () => {
  it('escapes each key segment but keeps the slashes', () => {
    expect(kvPath('clinimesh/state/manifests/Service/clinical/his')).toBe(
      '/kv/clinimesh/state/manifests/Service/clinical/his',
    );
    expect(kvPath('a b/c?d')).toBe('/kv/a%20b/c%3Fd');
  });

  it('encodes txn operations with base64 values and numeric indexes, as Consul reads them', () => {
    const ops = encodeTxnOps([
      { verb: 'cas', key: 'p/revision', value: '{"revision":2}', index: 17n },
      { verb: 'delete', key: 'p/x' },
      { verb: 'check-index', key: 'p/y', index: 0n },
    ]);
    expect(ops).toEqual([
      {
        KV: {
          Verb: 'cas',
          Key: 'p/revision',
          Value: Buffer.from('{"revision":2}').toString('base64'),
          Index: 17,
        },
      },
      { KV: { Verb: 'delete', Key: 'p/x' } },
      { KV: { Verb: 'check-index', Key: 'p/y', Index: 0 } },
    ]);
    expect(txnSize([{ verb: 'set', key: 'k', value: 'v' }])).toBe(
      JSON.stringify(encodeTxnOps([{ verb: 'set', key: 'k', value: 'v' }])).length,
    );
  });

  it('decodes entries, null values as empty, indexes as bigint', () => {
    const decoded = decodeEntries([
      {
        Key: 'a',
        Value: Buffer.from('hi').toString('base64'),
        Flags: 3,
        CreateIndex: 5,
        ModifyIndex: 9,
        LockIndex: 0,
      },
      { Key: 'b', Value: null, CreateIndex: 6, ModifyIndex: 6, Session: 'sess' },
    ]);
    expect(decoded.ok).toBe(true);
    if (!decoded.ok) return;
    expect(decoded.value[0]).toMatchObject({ key: 'a', flags: 3, createIndex: 5n, modifyIndex: 9n });
    expect(decoded.value[0]!.value.toString()).toBe('hi');
    expect(decoded.value[1]).toMatchObject({ key: 'b', session: 'sess', lockIndex: 0n });
    expect(decoded.value[1]!.value.length).toBe(0);
    expect(decodeEntries([{ Key: 'a' }]).ok).toBe(false);
    expect(decodeEntries({}).ok).toBe(false);
  });

  it('names the operation and key of a failure, and says Consul is unreachable on a network error', () => {
    const p = kvProblem(
      'txn',
      'clinimesh/state/revision',
      new ConsulHttpError('connect ECONNREFUSED', 'network'),
    );
    expect(p.code).toBe('CONSUL');
    expect(p.resource).toBe('Consul KV clinimesh/state/revision');
    expect(p.message).toMatch(/^txn: Consul unreachable/);
  });
});
