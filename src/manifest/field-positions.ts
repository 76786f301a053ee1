// Where each field of a manifest was written, kept on the manifest for checks across documents.
// A document's positions are one string of `\n<path>\t<line>:<col>` entries: they are read only to
// place a problem, while every manifest keeps them for as long as it is applied, and as a map of
// [line, col] pairs they took 21 MB for the 2500 Services of the bench's 5000-sidecar mesh (~190
// bytes an entry), as text 3.2 MB. Paths never hold a raw tab or newline: `childPath` quotes such
// keys as JSON.

/** Positions by field path, as the reader records them (1-based line and column). */
export type FieldPositionMap = Readonly<Record<string, readonly [line: number, col: number]>>;

/**
 * Field positions as a manifest keeps them: packed text, or a map of pairs (manifests stored by an
 * earlier version, in a state file or Consul KV, and hand-built ones in tests).
 */
export type FieldPositions = string | FieldPositionMap;

export function packFieldPositions(map: FieldPositionMap): string {
  const parts: string[] = [];
  for (const path in map) {
    const at = map[path]!;
    parts.push(`\n${path}\t${at[0]}:${at[1]}`);
  }
  // join makes one flat string; `+=` would keep a rope of every piece (as large as the map was).
  return parts.join('');
}

/** The [line, col] where `path` was written, if it was read from YAML. */
export function fieldAt(
  positions: FieldPositions | undefined,
  path: string,
): readonly [line: number, col: number] | undefined {
  if (positions === undefined) return undefined;
  if (typeof positions !== 'string') return Object.hasOwn(positions, path) ? positions[path] : undefined;
  const key = `\n${path}\t`;
  const start = positions.indexOf(key);
  if (start < 0) return undefined;
  const from = start + key.length;
  const end = positions.indexOf('\n', from);
  const text = positions.slice(from, end < 0 ? undefined : end);
  const colon = text.indexOf(':');
  return [Number(text.slice(0, colon)), Number(text.slice(colon + 1))];
}
