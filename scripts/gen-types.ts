// Generates TypeScript types for the proto3 JSON form of every message and enum in
// proto/envoy-descriptors.binpb into src/xds/resources/gen/, so the generators' resources are typed
// and a misspelled field is a compile error. `npm run gen:types` writes them (`npm run build:protos`
// runs it); with `--check` it writes nothing and fails when the committed files are stale, which
// test/unit/xds/generated-types.test.ts runs (as a child process, so that type-checking the project
// never needs this build-time tool's dependencies).
//
// Why not protoc-gen-es's `json_types`: its types name fields by their lowerCamelCase JSON names,
// while our generators, golden files and Envoy's own YAML use the proto field names (snake_case),
// which proto3 JSON parsers accept alike. So this is a small protoplugin plugin that prints the same
// shapes keyed by proto names, run in-process on the committed descriptor set: no protoc, no buf,
// no network. Well-known types come from @bufbuild/protobuf/wkt, as protoc-gen-es does it.
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  create,
  fromBinary,
  ScalarType,
  type DescEnum,
  type DescField,
  type DescMessage,
} from '@bufbuild/protobuf';
import { scalarJsonType } from '@bufbuild/protobuf/codegenv2';
import { CodeGeneratorRequestSchema, FileDescriptorSetSchema, isWrapperDesc } from '@bufbuild/protobuf/wkt';
import {
  createEcmaScriptPlugin,
  type GeneratedFile,
  type Printable,
  type Schema,
} from '@bufbuild/protoplugin';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const DESCRIPTORS = join(ROOT, 'proto', 'envoy-descriptors.binpb');
const GEN_DIR = join(ROOT, 'src', 'xds', 'resources', 'gen');
/** The file that maps every message's full name to its JSON type (for typed `Any` payloads). */
const INDEX_FILE = 'messages.ts';

const plugin = createEcmaScriptPlugin({ name: 'clinimesh gen-types', version: 'v1', generateTs });

function generateTs(schema: Schema): void {
  const index = schema.generateFile(INDEX_FILE);
  index.print(
    '// Every message of the descriptor set by its full name, with the type of its proto3 JSON form.',
  );
  index.print(index.export('interface', 'EnvoyJsonTypes'), ' {');
  for (const file of schema.files) {
    const f = schema.generateFile(`${file.name}_pb.ts`);
    f.preamble(file);
    for (const desc of schema.typesInFile(file)) {
      if (desc.kind === 'message') {
        messageJson(f, desc);
        index.print('  ', index.string(desc.typeName), ': ', { kind: 'es_json_type_ref', desc }, ';');
      } else if (desc.kind === 'enum') {
        enumJson(f, desc);
      }
    }
  }
  index.print('}');
}

function messageJson(f: GeneratedFile, message: DescMessage): void {
  const exp = f.export('type', f.importJson(message).name);
  if (isWrapperDesc(message) && message.fields[0]) {
    f.print(exp, ' = ', fieldJsonType(message.fields[0]), ';');
    return;
  }
  f.print(exp, ' = {');
  for (const field of message.fields) {
    const key = /^[A-Za-z_$][\w$]*$/.test(field.name) ? field.name : f.string(field.name);
    f.print('  ', key, '?: ', fieldJsonType(field), ';');
  }
  f.print('};');
}

function enumJson(f: GeneratedFile, desc: DescEnum): void {
  // Values by their proto names, as our generators write them (fromJson accepts those and numbers).
  const names = desc.values.map((v) => f.string(v.name));
  const union = names.flatMap((n, i) => (i ? [' | ', n] : [n]));
  f.print(f.export('type', f.importJson(desc).name), ' = ', union.length ? union : 'never', ';');
}

/** 64-bit integers: proto3 JSON writes them as strings and reads numbers too; we write numbers. */
function scalarType(scalar: ScalarType): string {
  const t = scalarJsonType(scalar);
  switch (scalar) {
    case ScalarType.INT64:
    case ScalarType.UINT64:
    case ScalarType.SINT64:
    case ScalarType.FIXED64:
    case ScalarType.SFIXED64:
      return 'number | string';
    default:
      return t;
  }
}

function fieldJsonType(field: DescField): Printable {
  switch (field.fieldKind) {
    case 'scalar':
      return scalarType(field.scalar);
    case 'message':
      return { kind: 'es_json_type_ref', desc: field.message };
    case 'enum':
      return { kind: 'es_json_type_ref', desc: field.enum };
    case 'list':
      if (field.listKind === 'scalar') return ['(', scalarType(field.scalar), ')[]'];
      return [
        { kind: 'es_json_type_ref', desc: field.listKind === 'enum' ? field.enum : field.message },
        '[]',
      ];
    case 'map': {
      const value: Printable =
        field.mapKind === 'scalar'
          ? scalarType(field.scalar)
          : { kind: 'es_json_type_ref', desc: field.mapKind === 'enum' ? field.enum : field.message };
      return ['{ [key: string]: ', value, ' }'];
    }
  }
}

/** The generated files (path relative to GEN_DIR → content) for a serialized FileDescriptorSet. */
function generateTypes(descriptorSet: Uint8Array): Map<string, string> {
  const set = fromBinary(FileDescriptorSetSchema, descriptorSet);
  const request = create(CodeGeneratorRequestSchema, {
    // Well-known types are imported from @bufbuild/protobuf/wkt rather than generated.
    fileToGenerate: set.file.map((f) => f.name).filter((n) => !n.startsWith('google/protobuf/')),
    protoFile: set.file,
    parameter: 'target=ts,import_extension=ts',
  });
  const response = plugin.run(request);
  if (response.error) throw new Error(`gen-types: ${response.error}`);
  return new Map(response.file.map((f) => [f.name, f.content]));
}

function committedFiles(): string[] {
  if (!existsSync(GEN_DIR)) return [];
  return readdirSync(GEN_DIR, { withFileTypes: true, recursive: true })
    .filter((d) => d.isFile())
    .map((d) => relative(GEN_DIR, join(d.parentPath, d.name)));
}

/** What differs between the committed files and `files`: stale, missing and extra paths. */
function staleFiles(files: ReadonlyMap<string, string>): string[] {
  const changed = [...files]
    .filter(
      ([name, content]) =>
        !existsSync(join(GEN_DIR, name)) || readFileSync(join(GEN_DIR, name), 'utf8') !== content,
    )
    .map(([name]) => name);
  const extra = committedFiles().filter((name) => !files.has(name));
  return [...changed, ...extra].sort();
}

function write(files: ReadonlyMap<string, string>): void {
  rmSync(GEN_DIR, { recursive: true, force: true });
  for (const [name, content] of files) {
    const path = join(GEN_DIR, name);
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, content);
  }
  console.log(`gen-types: wrote ${files.size} files to ${relative(ROOT, GEN_DIR)}`);
}

function main(args: readonly string[]): number {
  const files = generateTypes(readFileSync(DESCRIPTORS));
  if (!args.includes('--check')) {
    write(files);
    return 0;
  }
  const stale = staleFiles(files);
  if (stale.length === 0) {
    console.log(`gen-types: ${files.size} files up to date`);
    return 0;
  }
  console.error(`gen-types: stale (run npm run gen:types): ${stale.join(', ')}`);
  return 1;
}

process.exitCode = main(process.argv.slice(2));
