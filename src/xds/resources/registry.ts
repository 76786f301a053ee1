// Envoy's message descriptors, loaded once from the committed FileDescriptorSet that
// scripts/build-protos.mjs builds from Envoy's API protos. Everything that encodes, decodes or validates Envoy messages uses this.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { createFileRegistry, fromBinary, type DescMessage, type FileRegistry } from '@bufbuild/protobuf';
import { FileDescriptorSetSchema } from '@bufbuild/protobuf/wkt';

const DESCRIPTORS = fileURLToPath(new URL('../../../proto/envoy-descriptors.binpb', import.meta.url));

let registry: FileRegistry | undefined;

export function envoyRegistry(): FileRegistry {
  if (!registry) {
    let bytes: Buffer;
    try {
      bytes = readFileSync(DESCRIPTORS);
    } catch {
      // A broken checkout, not bad input, so an exception is right.
      throw new Error(`Envoy descriptors missing at ${DESCRIPTORS}: run 'npm run build:protos'`);
    }
    registry = createFileRegistry(fromBinary(FileDescriptorSetSchema, bytes));
  }
  return registry;
}

/** The descriptor of a fully-qualified message type, e.g. `envoy.config.cluster.v3.Cluster`. */
export function messageDesc(typeName: string): DescMessage {
  const desc = envoyRegistry().getMessage(typeName);
  if (!desc) throw new Error(`unknown message type ${typeName}`);
  return desc;
}
