// A real, certified OpenID provider (npm `oidc-provider`) for the SSO tests, on 127.0.0.1
// port 0. Prints `ISSUER <url>` when it listens.
//
// - Clients: `atp-admin-bot` (group atp-admins), `atp-viewer-bot` (group atp-viewers) and
//   `atp-short-bot` (group atp-admins, 1 s tokens) use client credentials; `atp-cli` is a public
//   client for the device authorization grant (RFC 8628) with refresh tokens.
// - Access tokens are JWTs (ES256) for the resource `urn:atp:node` (or another resource, for
//   the wrong-audience case), with a `groups` claim.
// - Development interactions are on: the test logs in on the provider's own pages.
// - POST /__rotate swaps in a second provider with the same issuer and a NEW signing key (the
//   old one is gone from the JWKS): a key rotation at the provider.
import http from 'node:http';
import crypto from 'node:crypto';
import Provider from 'oidc-provider';

const GROUPS = {
  'atp-admin-bot': ['atp-admins'],
  'atp-viewer-bot': ['atp-viewers'],
  'atp-short-bot': ['atp-admins'],
};
const ACCOUNT_GROUPS = { alice: ['atp-admins'], bob: ['atp-viewers'] };
const SECRET = 'test-secret-not-for-production-0123456789';

function signingKey(kid) {
  const { privateKey } = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return { ...privateKey.export({ format: 'jwk' }), kid, alg: 'ES256', use: 'sig' };
}

function makeProvider(issuer, key) {
  const bot = (id) => ({
    client_id: id,
    client_secret: SECRET,
    grant_types: ['client_credentials'],
    redirect_uris: [],
    response_types: [],
    token_endpoint_auth_method: 'client_secret_post',
    scope: 'atp',
  });
  const provider = new Provider(issuer, {
    clients: [
      bot('atp-admin-bot'),
      bot('atp-viewer-bot'),
      bot('atp-short-bot'),
      {
        client_id: 'atp-cli',
        token_endpoint_auth_method: 'none',
        grant_types: ['urn:ietf:params:oauth:grant-type:device_code', 'refresh_token'],
        redirect_uris: [],
        response_types: [],
        scope: 'openid offline_access atp',
      },
    ],
    jwks: { keys: [key] },
    clientDefaults: { id_token_signed_response_alg: 'ES256', grant_types: [], response_types: [] },
    cookies: { keys: [crypto.randomBytes(32).toString('hex')] },
    scopes: ['openid', 'offline_access', 'atp'],
    features: {
      clientCredentials: { enabled: true },
      deviceFlow: { enabled: true },
      devInteractions: { enabled: true },
      revocation: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => 'urn:atp:node',
        useGrantedResource: () => true,
        getResourceServerInfo: (ctx, resource, client) => ({
          scope: 'atp',
          audience: resource,
          accessTokenFormat: 'jwt',
          accessTokenTTL: client.clientId === 'atp-short-bot' ? 1 : 600,
          jwt: { sign: { alg: 'ES256' } },
        }),
      },
    },
    loadExistingGrant: async (ctx) => {
      // Consent is implied for the device flow test: grant what the client asked for.
      const grant = new provider.Grant({
        clientId: ctx.oidc.client.clientId,
        accountId: ctx.oidc.session.accountId,
      });
      grant.addOIDCScope('openid offline_access atp');
      grant.addResourceScope('urn:atp:node', 'atp');
      await grant.save();
      return grant;
    },
    issueRefreshToken: async () => true,
    extraTokenClaims: async (ctx, token) => {
      const groups = token.accountId ? ACCOUNT_GROUPS[token.accountId] : GROUPS[token.clientId];
      return { groups: groups ?? [], email: token.accountId ? `${token.accountId}@example.test` : undefined };
    },
    findAccount: async (ctx, id) => ({
      accountId: id,
      claims: async () => ({ sub: id, email: `${id}@example.test`, groups: ACCOUNT_GROUPS[id] ?? [] }),
    }),
    claims: { openid: ['sub'], email: ['email'], groups: ['groups'] },
    pkce: { required: () => false },
    ttl: { DeviceCode: 120, RefreshToken: 3600, AccessToken: 600 },
  });
  provider.proxy = false;
  return provider;
}

let current;
const server = http.createServer((req, res) => {
  if (req.method === 'POST' && req.url === '/__rotate') {
    current = next;
    res.writeHead(204).end();
    return;
  }
  current(req, res);
});
let next;
server.listen(0, '127.0.0.1', () => {
  const issuer = `http://127.0.0.1:${server.address().port}`;
  current = makeProvider(issuer, signingKey(`key-a-${crypto.randomUUID()}`)).callback();
  next = makeProvider(issuer, signingKey(`key-b-${crypto.randomUUID()}`)).callback();
  process.stdout.write(`ISSUER ${issuer}\n`);
});
process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
