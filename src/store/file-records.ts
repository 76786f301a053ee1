// The file backend's record sets, in the files and formats they had before the backend existed
// (`tokens.json` as {version, tokens}, `join-tokens.json` as a list), replaced durably (0600) before
// a change is visible. One process writes them, so check-and-set is decided in memory.
import { readFile } from 'node:fs/promises';
import { fail, ok, type Result } from '../errors.ts';
import type { StoredRecord } from './backend.ts';
import { writeFileDurably } from './durable-file.ts';
import { MemoryRecordSet } from './memory-backend.ts';

export interface RecordFileFormat {
  readonly file: string;
  encode(values: readonly unknown[]): string;
  /** The records' values (each with a string `id`), or undefined when the shape is wrong. */
  decode(json: unknown): readonly { id: string }[] | undefined;
}

const withIds = (list: unknown): readonly { id: string }[] | undefined =>
  Array.isArray(list) && list.every((t) => typeof (t as { id?: unknown } | null)?.id === 'string')
    ? (list as { id: string }[])
    : undefined;

export const adminTokensFormat: RecordFileFormat = {
  file: 'tokens.json',
  encode: (values) => `${JSON.stringify({ version: 1, tokens: values }, null, 2)}\n`,
  decode: (json) => withIds((json as { tokens?: unknown } | null)?.tokens),
};

export const joinTokensFormat: RecordFileFormat = {
  file: 'join-tokens.json',
  encode: (values) => JSON.stringify(values, null, 2),
  decode: withIds,
};

export class FileRecordSet extends MemoryRecordSet {
  private read = false;

  constructor(
    readonly path: string,
    private readonly format: RecordFileFormat,
  ) {
    super();
  }

  override async load(): Promise<Result<ReadonlyMap<string, StoredRecord>>> {
    if (!this.read) {
      let text: string | undefined;
      try {
        text = await readFile(this.path, 'utf8');
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENOENT')
          return fail([{ code: 'IO', resource: this.path, message: `cannot read: ${(e as Error).message}` }]);
      }
      if (text !== undefined) {
        let values: readonly { id: string }[] | undefined;
        try {
          values = this.format.decode(JSON.parse(text));
        } catch {
          values = undefined;
        }
        if (!values)
          return fail([{ code: 'IO', resource: this.path, message: 'unexpected shape (not valid JSON?)' }]);
        this.records = new Map(values.map((v) => [v.id, { value: v, version: ++this.version }]));
      }
      this.read = true;
    }
    return super.load();
  }

  protected override async swap(next: Map<string, StoredRecord>): Promise<Result<void>> {
    try {
      await writeFileDurably(this.path, this.format.encode([...next.values()].map((r) => r.value)));
    } catch (e) {
      return fail([{ code: 'IO', resource: this.path, message: `cannot write: ${(e as Error).message}` }]);
    }
    this.records = next;
    return ok(undefined);
  }
}
