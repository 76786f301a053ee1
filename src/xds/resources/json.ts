// Plain JSON values, for what has no message type: the admin API's bodies, node metadata, config
// dumps. Envoy's messages are typed by the types generated from the descriptor set (any-json.ts).
export type { JsonObject, JsonValue } from '@bufbuild/protobuf';
