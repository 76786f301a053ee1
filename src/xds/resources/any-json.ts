// Envoy messages in proto3 JSON form, typed by the types generated from the descriptor set
// (src/xds/resources/gen, `npm run gen:types`), so a misspelled field is a compile error. An Any
// (`typed_config` and the like) is typed by its `@type` through anyJson.
import type { EnvoyJsonTypes } from './gen/messages.ts';
import type { TypeUrl } from './type-urls.ts';

/** The full name of a message in the descriptor set, e.g. `envoy.config.cluster.v3.Cluster`. */
export type EnvoyMessageName = keyof EnvoyJsonTypes;

/** A google.protobuf.Any in proto3 JSON: `@type` names the message, its fields sit beside it. */
export type AnyJsonOf<N extends EnvoyMessageName> = {
  '@type': `type.googleapis.com/${N}`;
} & EnvoyJsonTypes[N];

/** The JSON body of an xDS resource of type `U` (`ResourceJson<typeof CLUSTER>` is ClusterJson). */
export type ResourceJson<U extends TypeUrl> =
  U extends `type.googleapis.com/${infer N extends EnvoyMessageName}` ? EnvoyJsonTypes[N] : never;

/**
 * An Any payload checked against the message its `@type` names (inferred from it). Returns its
 * argument: the parent's field type (AnyJson) knows only `@type`, so this is where the rest is checked.
 */
export function anyJson<N extends EnvoyMessageName>(value: AnyJsonOf<N>): AnyJsonOf<N> {
  return value;
}
