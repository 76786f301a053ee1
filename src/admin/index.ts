export {
  startAdminListener,
  type AdminListener,
  type AdminListenerOptions,
  type ServingIdentity,
} from './listener.ts';
export type { AdminCredential } from './credential.ts';
export type { AdminDeps, JoinTokenIssuer } from './deps.ts';
export type { HistoryEntry, HistoryAction } from './history.ts';
export type { Principal, Role, TokenInfo } from './tokens.ts';
export { Metrics } from './metrics.ts';
