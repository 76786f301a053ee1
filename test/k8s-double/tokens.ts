// Service-account tokens as the API server issues them through the TokenRequest API (the kubelet's
// projected volumes): RS256 JWTs signed with the issuer's key, with `aud`, `exp`, `iat`, `nbf`,
// `iss`, `sub` = system:serviceaccount:<ns>:<sa>, and the `kubernetes.io` claim naming the service
// account and the pod the token is bound to. Verification checks the signature, the issuer and the
// time window with go-jose's default leeway of one minute, as the API server's validator does.
import { createSign, createVerify, generateKeyPairSync, randomUUID } from 'node:crypto';

export const ISSUER = 'https://kubernetes.default.svc.cluster.local';
const LEEWAY_S = 60;

export interface ServiceAccountClaims {
  readonly iss: string;
  readonly sub: string;
  readonly aud: readonly string[];
  readonly exp: number;
  readonly iat: number;
  readonly nbf: number;
  readonly jti: string;
  readonly 'kubernetes.io': {
    readonly namespace: string;
    readonly serviceaccount: { readonly name: string; readonly uid: string };
    readonly pod?: { readonly name: string; readonly uid: string };
  };
}

const b64url = (data: string | Buffer): string => Buffer.from(data).toString('base64url');

export class TokenIssuer {
  readonly #keys = generateKeyPairSync('rsa', { modulusLength: 2048 });
  readonly #kid = randomUUID();

  sign(claims: ServiceAccountClaims): string {
    const header = b64url(JSON.stringify({ alg: 'RS256', kid: this.#kid }));
    const payload = b64url(JSON.stringify(claims));
    const signature = createSign('sha256').update(`${header}.${payload}`).sign(this.#keys.privateKey);
    return `${header}.${payload}.${b64url(signature)}`;
  }

  /** The claims of a token this issuer signed and that is valid at `nowS`, or why not. */
  verify(token: string, nowS: number): { claims: ServiceAccountClaims } | { error: string } {
    const parts = token.split('.');
    if (parts.length !== 3) return { error: 'invalid bearer token' };
    const [header, payload, signature] = parts as [string, string, string];
    let claims: ServiceAccountClaims;
    try {
      const h = JSON.parse(Buffer.from(header, 'base64url').toString('utf8')) as {
        alg?: string;
        kid?: string;
      };
      if (h.alg !== 'RS256' || h.kid !== this.#kid) return { error: 'invalid bearer token' };
      const valid = createVerify('sha256')
        .update(`${header}.${payload}`)
        .verify(this.#keys.publicKey, Buffer.from(signature, 'base64url'));
      if (!valid) return { error: 'invalid bearer token, square/go-jose: error in cryptographic primitive' };
      claims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as ServiceAccountClaims;
    } catch {
      return { error: 'invalid bearer token' };
    }
    if (claims.iss !== ISSUER) return { error: 'invalid bearer token' };
    if (nowS > claims.exp + LEEWAY_S)
      return { error: 'invalid bearer token, service account token has expired' };
    if (nowS < claims.nbf - LEEWAY_S)
      return { error: 'invalid bearer token, service account token is not valid yet' };
    return { claims };
  }
}
