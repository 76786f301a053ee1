// Plain JSON values: generators speak Envoy's proto3 JSON (the same form as Envoy's own YAML config).
export type JsonValue = string | number | boolean | null | JsonValue[] | JsonObject;
export interface JsonObject {
  [key: string]: JsonValue;
}
