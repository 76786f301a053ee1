// The agent endpoints clinimesh writes through: service register/deregister/maintenance and check
// updates. As a Consul agent, only TTL checks take pass/warn/fail/update; any other check's status
// belongs to the agent's own probes.
import { BadRequest, parseCheckUpdate, parseRegistration } from './agent-api.ts';
import type { AgentChecks } from './agent-checks.ts';
import { HttpError, parseJsonBody, sendJson } from './http.ts';
import type { RouteContext, RouteFamily } from './route.ts';
import { methodNotAllowed } from './route.ts';
import type { CatalogState } from './state.ts';

const DEREGISTER = /^\/v1\/agent\/service\/deregister\/([^/]+)$/;
const MAINTENANCE = /^\/v1\/agent\/service\/maintenance\/([^/]+)$/;
const CHECK = /^\/v1\/agent\/check\/(pass|warn|fail|update)\/([^/]+)$/;
const STATUS = { pass: 'passing', warn: 'warning', fail: 'critical' } as const;

export function agentRoutes(state: CatalogState, node: string, checks: AgentChecks): RouteFamily {
  const maintenance = (ctx: RouteContext, serviceId: string): void => {
    const enable = ctx.q.get('enable');
    if (enable !== 'true' && enable !== 'false') throw new BadRequest('Missing value for enable');
    if (!state.findService(node, serviceId)) throw new HttpError(404, `Unknown service ID "${serviceId}"`);
    const checkId = `_service_maintenance:${serviceId}`;
    if (enable === 'true') {
      state.addServiceCheck(node, serviceId, {
        checkId,
        name: 'Service Maintenance Mode',
        status: 'critical',
        notes:
          ctx.q.get('reason') ||
          'Maintenance mode is enabled for this service, but no reason was provided. This is a default message.',
        definition: {},
      });
    } else {
      state.removeCheck(node, checkId);
    }
  };

  const checkUpdate = (ctx: RouteContext, verb: string, checkId: string): void => {
    const check = state.findCheck(node, checkId);
    if (!check)
      throw new HttpError(
        404,
        `Unknown check ID "${checkId}". Ensure that the check ID is passed, not the check name.`,
      );
    if (check.type !== 'ttl') throw new HttpError(500, `CheckID "${checkId}" does not have associated TTL`);
    const update =
      verb === 'update'
        ? parseCheckUpdate(parseJsonBody(ctx.body))
        : { status: STATUS[verb as keyof typeof STATUS], output: ctx.q.get('note') ?? '' };
    state.updateCheck(node, checkId, update.status, update.output);
    checks.refreshTtl(checkId);
  };

  return {
    matches: (p) =>
      p === '/v1/agent/service/register' || DEREGISTER.test(p) || MAINTENANCE.test(p) || CHECK.test(p),
    handle: async (ctx) => {
      if (ctx.method !== 'PUT') methodNotAllowed(ctx.method, ['PUT']);
      ctx.requireWrite('service:write');
      let m: RegExpExecArray | null;
      if (ctx.path === '/v1/agent/service/register') {
        const { service, checks: defs } = parseRegistration(parseJsonBody(ctx.body), undefined);
        state.registerService(node, service, defs, ctx.q.has('replace-existing-checks'));
      } else if ((m = DEREGISTER.exec(ctx.path))) {
        const id = decodeURIComponent(m[1]!);
        if (state.deregisterService(node, id) === undefined)
          throw new HttpError(
            404,
            `Unknown service ID "${id}". Ensure that the service ID is passed, not the service name.`,
          );
      } else if ((m = MAINTENANCE.exec(ctx.path))) {
        maintenance(ctx, decodeURIComponent(m[1]!));
      } else if ((m = CHECK.exec(ctx.path))) {
        checkUpdate(ctx, m[1]!, decodeURIComponent(m[2]!));
      }
      sendJson(ctx.res, 200, undefined);
    },
  };
}
