import { applyDecorators, CanActivate, ExecutionContext, Injectable, SetMetadata } from '@nestjs/common';
import type { Request, Response } from 'express';
import type { ApiKeyStore } from '@blixard/db';
import { ForbiddenError, hasScope, Scope, SCOPES, TooManyRequestsError, UnauthorizedError } from '@blixard/domain';
import { HealthController } from '@blixard/service';
import type { RateLimiter } from './limits';

/** Who is calling: the API key (or, with AUTH_DISABLED, the anonymous development principal). */
export interface Principal {
  keyId: string;
  keyName: string;
  tenant: string;
  scopes: readonly string[];
}

/** With AUTH_DISABLED: tenant `default`, every scope. */
export const ANONYMOUS: Principal = { keyId: 'anonymous', keyName: 'anonymous (AUTH_DISABLED)', tenant: 'default', scopes: ['admin'] };

const SCOPE_KEY = 'blixard:scope';
const PUBLIC_KEY = 'blixard:public';
const DOCS_KEY = 'blixard:docs';

/** The scope a route needs. A route with neither this nor `@Public()` needs `admin`: closed by default. */
export const RequireScope = (scope: Scope) => SetMetadata(SCOPE_KEY, scope);
/** A route anyone may call without a key. */
export const Public = () => SetMetadata(PUBLIC_KEY, true);
/** A route any valid key may call, whatever its scopes. */
export const AnyKey = () => SetMetadata(SCOPE_KEY, 'any');
/**
 * The API's documentation (`/docs`, `/openapi.json`): any valid key, whatever its scopes, unless
 * the operator publishes it with PUBLIC_DOCS=true. Without a key the 401 says how to reach it.
 */
export const DocsAccess = () => applyDecorators(SetMetadata(SCOPE_KEY, 'any'), SetMetadata(DOCS_KEY, true));

/** Who may call a route: anyone, or a valid key holding `scope` (`any`: whatever its scopes). */
export type RouteAccess = { public: true } | { public: false; scope: Scope | 'any'; docs: boolean };

/**
 * A route's access, from its handler's and controller's metadata (the handler's wins). The one
 * reading of that metadata: the guard enforces it and the OpenAPI document (openapi/build.ts)
 * publishes it, so the two cannot disagree. Health, readiness and metrics are open to probes and
 * Prometheus; a route that says nothing needs `admin`.
 */
export function routeAccess(controller: Function, handler: Function, options: { publicDocs: boolean }): RouteAccess {
  if (controller === HealthController) return { public: true };
  const read = <T>(key: string): T | undefined => {
    for (const target of [handler, controller]) {
      const value = Reflect.getMetadata(key, target) as T | undefined;
      if (value !== undefined) return value;
    }
    return undefined;
  };
  if (read<boolean>(PUBLIC_KEY)) return { public: true };
  const docs = read<boolean>(DOCS_KEY) === true;
  if (docs && options.publicDocs) return { public: true };
  return { public: false, scope: read<Scope | 'any'>(SCOPE_KEY) ?? 'admin', docs };
}

/** The 401 of `/docs` or `/openapi.json` without a key: how to reach them. */
export const DOCS_NEED_A_KEY =
  'the API documentation needs an API key of any scope: send `Authorization: Bearer <key>` (or `X-API-Key: <key>`), ' +
  'or start the gateway with PUBLIC_DOCS=true to serve /docs and /openapi.json without one';

type RequestWithPrincipal = Request & { principal?: Principal; apiKeyId?: string };

export function principalOf(req: Request): Principal {
  return (req as RequestWithPrincipal).principal ?? ANONYMOUS;
}

/** Throws 403 unless the caller holds `scope`. */
export function requireScope(req: Request, scope: Scope, why?: string): void {
  if (!hasScope(principalOf(req).scopes, scope)) throw new ForbiddenError(scope, why ? `${why}: this API key lacks the scope ${scope}` : undefined);
}

/** The token: `Authorization: Bearer <token>`, or `X-API-Key: <token>` for older clients. */
export function tokenOf(req: Request): string | undefined {
  const auth = req.headers.authorization;
  if (typeof auth === 'string' && auth.length > 0) {
    const m = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(auth);
    return m ? m[1] : '';
  }
  const legacy = req.headers['x-api-key'];
  return typeof legacy === 'string' ? legacy.trim() : undefined;
}

export interface AuthOptions {
  disabled: boolean;
  /** PUBLIC_DOCS: `/docs` and `/openapi.json` answer without a key. */
  publicDocs: boolean;
  keys: ApiKeyStore;
  rateLimiter: RateLimiter;
}

/**
 * The gateway's one gate: every route needs a valid key holding the route's scope, except the
 * health, readiness and metrics endpoints (probes and Prometheus), routes marked `@Public()` and,
 * with PUBLIC_DOCS, the documentation (see `routeAccess`).
 * No key or a bad one is a 401 with `WWW-Authenticate: Bearer`; a missing scope a 403 naming it;
 * a key over its request rate a 429 with `Retry-After`.
 */
@Injectable()
export class AuthGuard implements CanActivate {
  constructor(private readonly options: AuthOptions) {}

  async canActivate(ctx: ExecutionContext): Promise<boolean> {
    if (ctx.getType() !== 'http') return true;
    const access = routeAccess(ctx.getClass(), ctx.getHandler(), this.options);
    if (access.public) return true;
    const needed = access.scope;
    const req = ctx.switchToHttp().getRequest<RequestWithPrincipal>();
    const res = ctx.switchToHttp().getResponse<Response>();
    const principal = this.options.disabled ? ANONYMOUS : await this.authenticate(req, res, access.docs);
    req.principal = principal;
    req.apiKeyId = principal.keyId;
    if (!this.options.disabled) {
      const wait = this.options.rateLimiter.take(principal.keyId);
      if (wait > 0) {
        const seconds = Math.max(1, Math.ceil(wait / 1000));
        res.setHeader('Retry-After', String(seconds));
        throw new TooManyRequestsError('rate_limited', `this API key made more requests than RATE_LIMIT_PER_SECOND allows; retry in ${seconds} s`, seconds);
      }
    }
    if (needed !== 'any' && !hasScope(principal.scopes, needed)) throw new ForbiddenError(needed);
    return true;
  }

  private async authenticate(req: Request, res: Response, docs: boolean): Promise<Principal> {
    const token = tokenOf(req);
    const fail = (code: UnauthorizedError['code'], message: string): never => {
      res.setHeader('WWW-Authenticate', `Bearer realm="blixard"${code === 'missing_api_key' ? '' : ', error="invalid_token"'}`);
      throw new UnauthorizedError(code, message);
    };
    if (token === undefined && docs) return fail('missing_api_key', DOCS_NEED_A_KEY);
    if (token === undefined) return fail('missing_api_key', 'an API key is required: send `Authorization: Bearer <key>`');
    if (token === '' || token.length > 200) return fail('invalid_api_key', 'the Authorization header is not `Bearer <key>`');
    const result = await this.options.keys.authenticate(token);
    if (!result.ok) {
      if (result.reason === 'revoked') return fail('revoked_api_key', 'this API key has been revoked');
      if (result.reason === 'expired') return fail('expired_api_key', 'this API key has expired');
      return fail('invalid_api_key', 'this API key is not valid');
    }
    return { ...result.principal, scopes: result.principal.scopes.filter((s) => SCOPES.includes(s as Scope)) };
  }
}
