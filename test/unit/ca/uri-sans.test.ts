// URI SANs read from a certificate's subjectaltname as Node prints it, for every side that checks
// one: the xDS server and agent API (a client's SPIFFE ID), the agent and CLI (the control plane's).
import { describe, expect, it } from 'vitest';
import { uriSans } from '../../../src/ca/spiffe.ts';
import { spiffeIdOfSan } from '../../../src/xds/server/peer.ts';

describe('uriSans', () => {
  it('keeps only URI entries, in order, without their prefix', () => {
    expect(
      uriSans('DNS:localhost, URI:spiffe://hospital.local/ns/clinical/sa/emr, IP Address:127.0.0.1'),
    ).toEqual(['spiffe://hospital.local/ns/clinical/sa/emr']);
  });
  it('unquotes a value Node printed JSON-quoted', () => {
    expect(uriSans('URI:"spiffe://hospital.local/ns/clinical/sa/his"')).toEqual([
      'spiffe://hospital.local/ns/clinical/sa/his',
    ]);
  });
  it('is empty for no SANs', () => {
    expect(uriSans(undefined)).toEqual([]);
    expect(spiffeIdOfSan('DNS:localhost, URI:https://example.org/x')).toBeUndefined();
  });
});
