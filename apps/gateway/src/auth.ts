import { CanActivate, ExecutionContext, Injectable, SetMetadata } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
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

/** The scope a route needs. A route with neither this nor `@Public()` needs `admin`: closed by default. */
export const RequireScope = (scope: Scope) => SetMetadata(SCOPE_KEY, scope);
/** A route anyone may call without a key (the docs page shell only: it holds no data). */
export const Public = () => SetMetadata(PUBLIC_KEY, true);
/** A route any valid key may call, whatever its scopes (the OpenAPI document). */
export const AnyKey = () => SetMetadata(SCOPE_KEY, 'any');

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
  keys: ApiKeyStore;
  rateLimiter: RateLimiter;
}

/**
 * The gateway's one gate: every route needs a valid key holding the route's scope, except the
 * health, readiness and metrics endpoints (probes and Prometheus) and routes marked `@Public()`.
 * No key or a bad one is a 401 with `WWW-Authenticate: Bearer`; a missing scope a 403 naming it;
 * a key over its request rate a 429 with `Retry-After`.
 */
@Injectable()
export class AuthGuard implements CanActivate {
  constructor(
    private readonly reflector: Reflector,
    private readonly options: AuthOptions,
  ) {}

  async canActivate(ctx: ExecutionContext): Promise<boolean> {
    if (ctx.getType() !== 'http') return true;
    if (ctx.getClass() === HealthController) return true;
    const targets = [ctx.getHandler(), ctx.getClass()];
    if (this.reflector.getAllAndOverride<boolean>(PUBLIC_KEY, targets)) return true;
    const needed = this.reflector.getAllAndOverride<Scope | 'any' | undefined>(SCOPE_KEY, targets) ?? 'admin';
    const req = ctx.switchToHttp().getRequest<RequestWithPrincipal>();
    const res = ctx.switchToHttp().getResponse<Response>();
    const principal = this.options.disabled ? ANONYMOUS : await this.authenticate(req, res);
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

  private async authenticate(req: Request, res: Response): Promise<Principal> {
    const token = tokenOf(req);
    const fail = (code: UnauthorizedError['code'], message: string): never => {
      res.setHeader('WWW-Authenticate', `Bearer realm="blixard"${code === 'missing_api_key' ? '' : ', error="invalid_token"'}`);
      throw new UnauthorizedError(code, message);
    };
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
