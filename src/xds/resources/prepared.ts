// A resource validated, encoded and hashed once, then shared by every sidecar and stream that sends
// it. Identical generator output (the same cluster for 500 sidecars) is prepared only once.
import { createHash } from 'node:crypto';
import { fromBinary, fromJson, toBinary, toJson, type Message } from '@bufbuild/protobuf';
import { BinaryWriter, WireType } from '@bufbuild/protobuf/wire';
import { fail, ok, type Problem, type Result } from '../../errors.ts';
import type { Resource } from '../generate/types.ts';
import type { JsonObject } from './json.ts';
import { validateMessage } from './pgv.ts';
import { envoyRegistry, messageDesc } from './registry.ts';
import { messageTypeOf, shortName, type TypeUrl } from './type-urls.ts';

export interface PreparedResource {
  readonly typeUrl: TypeUrl;
  readonly name: string;
  /** Content hash of the encoded message: equal bytes, equal hash, across restarts. */
  readonly hash: string;
  /** The resource as an encoded google.protobuf.Any, ready to splice into a DiscoveryResponse. */
  readonly anyBytes: Uint8Array;
  /** Canonical proto3 JSON with `@type`, for REST polling and config dumps (rendered on first use). */
  json(): JsonObject;
}

// Only the encoded bytes are kept: a decoded message is a tree of objects many times their size,
// held for every resource of every sidecar, while JSON is asked for only by REST polling and the
// admin API (and then rendered once from the bytes).
class Prepared implements PreparedResource {
  #json: JsonObject | undefined;
  constructor(
    readonly typeUrl: TypeUrl,
    readonly name: string,
    readonly hash: string,
    readonly anyBytes: Uint8Array,
    /** The encoded message is the tail of `anyBytes` (the Any's value field comes last). */
    private readonly messageBytes: number,
  ) {}

  json(): JsonObject {
    if (!this.#json) {
      const desc = messageDesc(messageTypeOf(this.typeUrl));
      const message = fromBinary(desc, this.anyBytes.subarray(this.anyBytes.length - this.messageBytes));
      const body = toJson(desc, message, { registry: envoyRegistry() }) as JsonObject;
      this.#json = { '@type': this.typeUrl, ...body };
    }
    return this.#json;
  }

  toJSON(): JsonObject {
    return this.json();
  }
}

export function encodeAny(typeUrl: string, value: Uint8Array): Uint8Array {
  return new BinaryWriter()
    .tag(1, WireType.LengthDelimited)
    .string(typeUrl)
    .tag(2, WireType.LengthDelimited)
    .bytes(value)
    .finish();
}

/** Validate against Envoy's protoc-gen-validate rules and encode; errors name the resource and field. */
export function prepareResource(r: Resource): Result<PreparedResource> {
  const label = `${shortName(r.typeUrl)} ${r.name}`;
  const desc = messageDesc(messageTypeOf(r.typeUrl));
  let message: Message;
  try {
    message = fromJson(desc, r.body, { registry: envoyRegistry() });
  } catch (e) {
    return fail([
      { code: 'PGV', resource: label, message: `not a valid ${desc.typeName}: ${(e as Error).message}` },
    ]);
  }
  const problems = validateMessage(desc, message, label);
  if (problems.length) return fail(problems);
  const bytes = toBinary(desc, message);
  const hash = createHash('sha256').update(bytes).digest('hex').slice(0, 16);
  return ok(new Prepared(r.typeUrl, r.name, hash, encodeAny(r.typeUrl, bytes), bytes.length));
}

/**
 * Interns prepared resources by their generator output, so re-generating an unchanged resource
 * costs one JSON.stringify and a map lookup, and the very same generator output (shared between
 * callers by the planner) a WeakMap lookup. `retain` drops entries no snapshot uses any more.
 */
export class ResourcePool {
  private entries = new Map<string, PreparedResource>();
  private readonly byObject = new WeakMap<Resource, PreparedResource>();

  prepare(r: Resource): Result<PreparedResource> {
    const known = this.byObject.get(r);
    if (known) return ok(known);
    const result = this.prepareContent(r);
    if (result.ok) this.byObject.set(r, result.value);
    return result;
  }

  /** Every resource prepared, or every problem found among them. */
  prepareAll(resources: readonly Resource[]): Result<PreparedResource[]> {
    const out: PreparedResource[] = [];
    const problems: Problem[] = [];
    for (const r of resources) {
      const p = this.prepare(r);
      if (p.ok) out.push(p.value);
      else problems.push(...p.errors);
    }
    return problems.length ? fail(problems) : ok(out);
  }

  private prepareContent(r: Resource): Result<PreparedResource> {
    const key = createHash('sha1')
      .update(`${r.typeUrl}\u0000${r.name}\u0000${JSON.stringify(r.body)}`)
      .digest('base64');
    const hit = this.entries.get(key);
    if (hit) return ok(hit);
    const result = prepareResource(r);
    if (result.ok) this.entries.set(key, result.value);
    return result;
  }

  retain(live: ReadonlySet<PreparedResource>): void {
    for (const [key, value] of this.entries) if (!live.has(value)) this.entries.delete(key);
  }

  get size(): number {
    return this.entries.size;
  }
}
