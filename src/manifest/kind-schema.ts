// The contract between the document envelope (schema.ts) and the validator of one kind.
import type { Manifest, Origin } from './types.ts';
import type { MapFields } from './yaml-reader.ts';

export const DEFAULT_NAMESPACE = 'default';

/** What the envelope has read before handing a document to its kind. */
export interface DocumentHeader {
  readonly name: string;
  /** Set for namespaced kinds (default `DEFAULT_NAMESPACE`), absent for cluster-scoped ones. */
  readonly namespace?: string;
  readonly origin: Origin;
  /** `metadata`, for a kind that reads fields of it besides name and namespace (`metadataFields`). */
  readonly metadata?: MapFields;
}

export interface KindSchema<M extends Manifest = Manifest> {
  /** Whether `metadata.namespace` exists for this kind. */
  readonly namespaced: boolean;
  /** Fields of `metadata` this kind reads itself (e.g. Service `labels`); any other is unknown. */
  readonly metadataFields?: readonly string[];
  /**
   * Reads the rest of the document (its `spec`), reporting every problem to `doc.r`. Whatever it
   * returns is discarded if any problem was reported, so it may return a best-effort value.
   */
  readonly read: (doc: MapFields, header: DocumentHeader) => M | undefined;
}
