// Whether Consul lets anyone in: it names its `acl.default_policy` on every answer
// (X-Consul-Default-ACL-Policy, Consul 1.9 and later), and says `allow` when ACLs are off too.
import type { ConsulHttp } from './http.ts';

/** Consul's default ACL policy, or undefined when Consul did not answer or did not say. */
export async function consulDefaultAclPolicy(http: ConsulHttp): Promise<'allow' | 'deny' | undefined> {
  try {
    // Needs no ACL at all, so it answers whatever token clinimesh holds.
    return (await http.get('/status/leader', undefined, { timeoutMs: 5_000 })).defaultAclPolicy;
  } catch {
    return undefined; // unreachable: the store's own reads report that, with their context
  }
}
