// The field-by-field request decoders read what protobuf-es's reflective fromBinary reads, for any
// (Delta)DiscoveryRequest: random requests with node, NACK detail, resource locators (skipped),
// initial versions and unknown fields are decoded both ways and compared.
import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import { BinaryWriter, WireType } from '@bufbuild/protobuf/wire';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { messageDesc } from '../../../src/xds/resources/registry.ts';
import { readDeltaDiscoveryRequest, readDiscoveryRequest } from '../../../src/xds/server/request-wire.ts';

const sotwDesc = messageDesc('envoy.service.discovery.v3.DiscoveryRequest');
const deltaDesc = messageDesc('envoy.service.discovery.v3.DeltaDiscoveryRequest');

const text = fc.string({ maxLength: 12 });
const node = fc.option(
  fc.record({
    id: text,
    cluster: text,
    userAgentName: text,
    metadata: fc.dictionary(fc.string({ minLength: 1, maxLength: 6 }), text, { maxKeys: 3 }),
  }),
  { nil: undefined },
);
const errorDetail = fc.option(fc.record({ code: fc.integer({ min: 0, max: 16 }), message: text }), {
  nil: undefined,
});
const locators = fc.array(
  fc.record({ name: text }).map((l) => l),
  { maxLength: 2 },
);

/** An unknown field (number 99, length-delimited) appended, as a newer Envoy might send. */
function withUnknownField(bytes: Uint8Array, extra: boolean): Uint8Array {
  if (!extra) return bytes;
  const w = new BinaryWriter();
  w.raw(bytes);
  w.tag(99, WireType.LengthDelimited).string('from the future');
  return w.finish();
}

/** The reflective decode without what the direct one does not read (and protobuf-es's own keys). */
function without(m: Record<string, unknown>, skipped: readonly string[]): Record<string, unknown> {
  const drop = new Set([...skipped, '$typeName', '$unknown']);
  return Object.fromEntries(Object.entries(m).filter(([k]) => !drop.has(k)));
}

interface Decoded {
  readonly node?: { id: string; cluster: string; userAgentName: string; metadata?: unknown };
  readonly errorDetail?: { code: number; message: string };
  readonly [field: string]: unknown;
}

/** What both decoders must agree on, in plain terms. */
function comparable(m: Decoded) {
  return {
    ...m,
    node: m.node && {
      id: m.node.id,
      cluster: m.node.cluster,
      userAgentName: m.node.userAgentName,
      metadata: m.node.metadata,
    },
    errorDetail: m.errorDetail && { code: m.errorDetail.code, message: m.errorDetail.message },
  };
}

describe('request decoding off the wire', () => {
  it('reads a DiscoveryRequest as fromBinary does', () => {
    fc.assert(
      fc.property(
        fc.record({
          versionInfo: text,
          node,
          resourceNames: fc.array(text, { maxLength: 4 }),
          resourceLocators: locators,
          typeUrl: text,
          responseNonce: text,
          errorDetail,
        }),
        fc.boolean(),
        (fields, extra) => {
          const bytes = withUnknownField(toBinary(sotwDesc, create(sotwDesc, fields as never)), extra);
          const reflective = fromBinary(sotwDesc, bytes) as unknown as Record<string, unknown>;
          const direct = readDiscoveryRequest(bytes);
          const expected = without(reflective, ['resourceLocators']);
          expect(comparable({ ...direct })).toEqual(comparable(expected as Decoded));
        },
      ),
    );
  });

  it('reads a DeltaDiscoveryRequest as fromBinary does', () => {
    fc.assert(
      fc.property(
        fc.record({
          node,
          typeUrl: text,
          resourceNamesSubscribe: fc.array(text, { maxLength: 4 }),
          resourceNamesUnsubscribe: fc.array(text, { maxLength: 4 }),
          resourceLocatorsSubscribe: locators,
          initialResourceVersions: fc.dictionary(text, text, { maxKeys: 4 }),
          responseNonce: text,
          errorDetail,
        }),
        fc.boolean(),
        (fields, extra) => {
          const bytes = withUnknownField(toBinary(deltaDesc, create(deltaDesc, fields as never)), extra);
          const reflective = fromBinary(deltaDesc, bytes) as unknown as Record<string, unknown>;
          const direct = readDeltaDiscoveryRequest(bytes);
          const expected = without(reflective, ['resourceLocatorsSubscribe', 'resourceLocatorsUnsubscribe']);
          expect(
            comparable({ ...direct, initialResourceVersions: { ...direct.initialResourceVersions } }),
          ).toEqual(comparable(expected as Decoded));
        },
      ),
    );
  });

  it('holds initial versions without a prototype: a resource named constructor is not held unless sent', () => {
    const bytes = toBinary(
      deltaDesc,
      create(deltaDesc, { typeUrl: 't', initialResourceVersions: { 'outbound|http|his': 'v1' } } as never),
    );
    const m = readDeltaDiscoveryRequest(bytes);
    expect('constructor' in m.initialResourceVersions).toBe(false);
    expect(m.initialResourceVersions['outbound|http|his']).toBe('v1');
  });

  it('refuses a known field with the wrong wire type, as fromBinary does', () => {
    const w = new BinaryWriter();
    w.tag(4, WireType.Varint).uint32(7);
    const bytes = w.finish();
    expect(() => fromBinary(sotwDesc, bytes)).toThrow();
    expect(() => readDiscoveryRequest(bytes)).toThrow(/type_url/);
  });
});
