// The read endpoints of the catalog and health APIs, plus `/v1/status/leader`.
import { sendJson } from './http.ts';
import { catalogService, catalogServices, healthService } from './reads.ts';
import type { RouteContext, RouteFamily } from './route.ts';
import { methodNotAllowed } from './route.ts';
import type { CatalogState } from './state.ts';
import { DEFAULT_NAMESPACE } from './state.ts';

const HEALTH = /^\/v1\/health\/service\/([^/]+)$/;
const SERVICE = /^\/v1\/catalog\/service\/([^/]+)$/;

function onlyGet(ctx: RouteContext): void {
  if (ctx.method !== 'GET') methodNotAllowed(ctx.method, ['GET']);
}

export function catalogRoutes(state: CatalogState): RouteFamily {
  return {
    matches: (p) => HEALTH.test(p) || SERVICE.test(p) || p === '/v1/catalog/services',
    handle: async (ctx) => {
      onlyGet(ctx);
      const ns = DEFAULT_NAMESPACE;
      const health = HEALTH.exec(ctx.path);
      if (health) return ctx.read(healthService(state, decodeURIComponent(health[1]!), ns, ctx.q));
      const service = SERVICE.exec(ctx.path);
      if (service) return ctx.read(catalogService(state, decodeURIComponent(service[1]!), ns, ctx.q));
      return ctx.read(catalogServices(state, ns, ctx.q));
    },
  };
}

export const statusRoutes: RouteFamily = {
  namespaced: false,
  matches: (p) => p === '/v1/status/leader',
  handle: async (ctx) => {
    onlyGet(ctx);
    sendJson(ctx.res, 200, '127.0.0.1:8300');
  },
};
