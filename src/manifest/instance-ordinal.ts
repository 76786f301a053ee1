// Which instance of a service is "number k": the ordinal that per-instance ports (instancePorts)
// expose at base+k. StatefulSet pods are named `<name>-<k>`, Consul service IDs usually end the
// same way (`kafka.imaging-kafka-2`); meta `ordinal` says it outright where names do not.

/** The key in instance meta (manifest `meta`, Consul service meta) that states an ordinal. */
export const ORDINAL_META = 'ordinal';

const DIGITS = /^(0|[1-9]\d{0,8})$/;
const SUFFIX = /-(0|[1-9]\d{0,8})$/;

/** meta `ordinal` first, else the name's `-<k>` suffix; undefined when neither gives one. */
export function instanceOrdinal(name: string, meta: Readonly<Record<string, string>>): number | undefined {
  const stated = meta[ORDINAL_META];
  if (stated !== undefined) return DIGITS.test(stated) ? Number(stated) : undefined;
  const suffix = SUFFIX.exec(name);
  return suffix ? Number(suffix[1]) : undefined;
}
