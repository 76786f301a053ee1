// Which AccessPolicy rules open which port of their destination. One answer for the generators
// (an inbound listener carries only its port's rules) and for `clinimesh analyze`.
import type { AccessRule, ServicePort } from './types.ts';

/** A port as the rules see it: its name (for a rule's `ports`) and whether it speaks HTTP. */
export type RulePort = Pick<ServicePort, 'name' | 'protocol'>;

/**
 * A rule applies to the ports it names (all of them when it names none); on a TCP port, only a rule
 * without `http` conditions applies, since there is no request to hold them against.
 */
export function ruleAppliesTo(rule: AccessRule, port: RulePort): boolean {
  if (rule.ports && !rule.ports.includes(port.name)) return false;
  return port.protocol !== 'tcp' || rule.http === undefined;
}
