// Document identity across a set of manifests: no two documents with the same kind, namespace and
// name (wherever they came from), and at most one Mesh.
import type { Problem } from '../errors.ts';
import { problemAt, where } from './problem-at.ts';
import { manifestId, type Manifest } from './types.ts';

export function checkDocumentIdentity(ms: readonly Manifest[]): Problem[] {
  return indexDocuments(ms).problems;
}

/**
 * One pass over a set: its identity problems, and each document's first definition by manifest id
 * (in set order), which every other check of the set reads.
 */
export function indexDocuments(ms: readonly Manifest[]): {
  problems: Problem[];
  first: Map<string, Manifest>;
} {
  const problems: Problem[] = [];
  const first = new Map<string, Manifest>();
  let mesh: Manifest | undefined;
  for (const m of ms) {
    const id = manifestId(m);
    const earlier = first.get(id);
    if (earlier) {
      problems.push(
        problemAt(
          m.origin,
          id,
          'metadata.name',
          'DUPLICATE',
          `${id} is already defined at ${where(earlier.origin)}`,
        ),
      );
      continue;
    }
    first.set(id, m);
    if (m.kind !== 'Mesh') continue;
    if (mesh) {
      problems.push(
        problemAt(
          m.origin,
          id,
          'metadata.name',
          'CONFLICT',
          `only one Mesh is allowed; ${manifestId(mesh)} is defined at ${where(mesh.origin)}`,
        ),
      );
    } else {
      mesh = m;
    }
  }
  return { problems, first };
}
