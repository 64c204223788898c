// The OpenID provider of the `atp login` tests: the npm package `oidc-provider` (a certified
// implementation) on 127.0.0.1 port 0, configured for a command-line operator client. Prints
// `ISSUER <url>` once it listens; exits when stdin closes (the test process is gone).
//
// Clients (public, no secret, native: any loopback port is a valid redirect):
// - `atp-cli`: device grant, authorization code + PKCE, refresh tokens; 600 s access tokens.
// - `atp-cli-short`: the same with 10 s access tokens (inside the CLI's 30 s refresh margin).
// Access tokens are ES256 JWTs for the resource `urn:atp:node`, with a `groups` claim.
// Development interactions are on: the tests sign in on the provider's own login and consent
// pages over HTTP (any login name; `alice` is in atp-admins). Revocation is on.
import http from 'node:http';
import crypto from 'node:crypto';
import Provider from 'oidc-provider';

const RESOURCE = 'urn:atp:node';
const GROUPS_OF = { alice: ['atp-admins'] };

const cliClient = (clientId) => ({
  client_id: clientId,
  application_type: 'native',
  token_endpoint_auth_method: 'none',
  grant_types: ['urn:ietf:params:oauth:grant-type:device_code', 'authorization_code', 'refresh_token'],
  response_types: ['code'],
  redirect_uris: ['http://127.0.0.1/callback'],
  scope: 'openid offline_access atp',
});

const { privateKey } = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
const signingKey = {
  ...privateKey.export({ format: 'jwk' }),
  kid: `cli-test-${crypto.randomUUID()}`,
  alg: 'ES256',
  use: 'sig',
};

const server = http.createServer();
server.listen(0, '127.0.0.1', () => {
  const issuer = `http://127.0.0.1:${server.address().port}`;
  const provider = new Provider(issuer, {
    clients: [cliClient('atp-cli'), cliClient('atp-cli-short')],
    jwks: { keys: [signingKey] },
    clientDefaults: { id_token_signed_response_alg: 'ES256' },
    cookies: { keys: [crypto.randomBytes(32).toString('hex')] },
    scopes: ['openid', 'offline_access', 'atp'],
    claims: { openid: ['sub'], email: ['email'] },
    features: {
      deviceFlow: { enabled: true },
      devInteractions: { enabled: true },
      revocation: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => RESOURCE,
        useGrantedResource: () => true,
        getResourceServerInfo: (ctx, resource, client) => {
          if (resource !== RESOURCE) throw new Error(`unknown resource ${resource}`);
          return {
            scope: 'atp',
            audience: RESOURCE,
            accessTokenFormat: 'jwt',
            accessTokenTTL: client.clientId === 'atp-cli-short' ? 10 : 600,
            jwt: { sign: { alg: 'ES256' } },
          };
        },
      },
    },
    findAccount: async (ctx, id) => ({
      accountId: id,
      claims: async () => ({ sub: id, email: `${id}@example.test` }),
    }),
    extraTokenClaims: async (ctx, token) => (token.accountId
      ? { groups: GROUPS_OF[token.accountId] ?? [], email: `${token.accountId}@example.test` }
      : undefined),
    ttl: { DeviceCode: 120, RefreshToken: 3600, Interaction: 300, Session: 3600, Grant: 3600 },
  });
  server.on('request', provider.callback());
  process.stdout.write(`ISSUER ${issuer}\n`);
});
process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
