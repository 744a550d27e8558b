// Interop harness: oidc-provider (panva), a certified OpenID Provider, on
// loopback, configured for the kind `oauth2` scenarios of tokensmith.
//
// Usage: node server.mjs [--jwks-dir DIR] [--max-lifetime SECONDS]
//
// Listens on 127.0.0.1 at an ephemeral port and, once ready, prints ONE line
// on stdout:
//
//   TOKENSMITH_INTEROP_READY {"issuer":"http://127.0.0.1:PORT","port":PORT}
//
// Everything else (oidc-provider's notices and warnings, request errors) goes
// to stderr. The server exits when its stdin closes (the test that started it
// is gone) or after --max-lifetime seconds (default 600), whichever is first.
//
// Clients (ids and secrets are test fixtures, nothing else):
//   cc-basic     client_credentials, client_secret_basic, secret cc-basic-secret
//   cc-post      client_credentials, client_secret_post,  secret cc-post-secret
//   app-public   authorization_code (PKCE S256 required) + refresh_token, public
//                (token_endpoint_auth_method none), refresh tokens rotated
//   pkjwt-rs256  client_credentials, private_key_jwt RS256, keys from
//                DIR/rs256.jwks.json (public JWKS)
//   pkjwt-es256  client_credentials, private_key_jwt ES256, keys from
//                DIR/es256.jwks.json (public JWKS)
//   introspector client_secret_basic, secret introspector-secret: the
//                resource server that calls the introspection endpoint
//
// Scopes: openid, offline_access, api:read, api:write. Resource indicator
// (RFC 8707) urn:tokensmith:api grants api:read and api:write and yields
// opaque (introspectable) access tokens with that audience.

import { generateKeyPairSync } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

import Provider, { errors } from 'oidc-provider';

const READY = 'TOKENSMITH_INTEROP_READY';
const RESOURCE = 'urn:tokensmith:api';

// oidc-provider prints its notices with console.info (stdout): keep stdout
// for the ready line alone.
console.info = (...args) => console.error(...args);
console.log = (...args) => console.error(...args);

const { values: options } = parseArgs({
  options: {
    'jwks-dir': { type: 'string', default: join(dirname(fileURLToPath(import.meta.url)), 'keys') },
    'max-lifetime': { type: 'string', default: '600' },
  },
});

function readJwks(file) {
  const jwks = JSON.parse(readFileSync(join(options['jwks-dir'], file), 'utf8'));
  for (const key of jwks.keys) {
    if (key.d !== undefined) {
      throw new Error(`${file} holds a private key; pass the public JWKS only`);
    }
  }
  return jwks;
}

// The provider's own signing key (id tokens), fresh per run.
const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const signingKey = { ...privateKey.export({ format: 'jwk' }), kid: 'interop-rs256', use: 'sig', alg: 'RS256' };

const noRedirects = { redirect_uris: [], response_types: [] };

const clients = [
  {
    client_id: 'cc-basic',
    client_secret: 'cc-basic-secret',
    grant_types: ['client_credentials'],
    token_endpoint_auth_method: 'client_secret_basic',
    scope: 'api:read api:write',
    ...noRedirects,
  },
  {
    client_id: 'cc-post',
    client_secret: 'cc-post-secret',
    grant_types: ['client_credentials'],
    token_endpoint_auth_method: 'client_secret_post',
    scope: 'api:read api:write',
    ...noRedirects,
  },
  {
    client_id: 'app-public',
    application_type: 'native',
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    redirect_uris: ['http://127.0.0.1/callback'],
    token_endpoint_auth_method: 'none',
  },
  {
    // A confidential web client exchanging its code with client_secret_basic
    // (tokensmith also sends client_id in the body, which must match).
    client_id: 'app-basic',
    client_secret: 'app-basic-secret',
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    redirect_uris: ['http://127.0.0.1/callback'],
    token_endpoint_auth_method: 'client_secret_basic',
  },
  {
    client_id: 'pkjwt-rs256',
    grant_types: ['client_credentials'],
    token_endpoint_auth_method: 'private_key_jwt',
    token_endpoint_auth_signing_alg: 'RS256',
    jwks: readJwks('rs256.jwks.json'),
    scope: 'api:read api:write',
    ...noRedirects,
  },
  {
    client_id: 'pkjwt-es256',
    grant_types: ['client_credentials'],
    token_endpoint_auth_method: 'private_key_jwt',
    token_endpoint_auth_signing_alg: 'ES256',
    jwks: readJwks('es256.jwks.json'),
    scope: 'api:read api:write',
    ...noRedirects,
  },
  {
    client_id: 'introspector',
    client_secret: 'introspector-secret',
    grant_types: ['client_credentials'],
    token_endpoint_auth_method: 'client_secret_basic',
    ...noRedirects,
  },
];

const configuration = {
  clients,
  jwks: { keys: [signingKey] },
  cookies: { keys: ['tokensmith-interop-cookie-key'] },
  scopes: ['openid', 'offline_access', 'api:read', 'api:write'],
  clientAuthMethods: ['client_secret_basic', 'client_secret_post', 'private_key_jwt', 'none'],
  enabledJWA: {
    clientAuthSigningAlgValues: ['RS256', 'ES256'],
  },
  pkce: {
    methods: ['S256'],
    required: () => true,
  },
  // A refresh token is issued for `offline_access` (default policy) and is
  // rotated on every use, for every client.
  rotateRefreshToken: true,
  features: {
    devInteractions: { enabled: true },
    clientCredentials: { enabled: true },
    introspection: {
      enabled: true,
      // Only the resource server may introspect.
      allowedPolicy: async (ctx, client) => client.clientId === 'introspector',
    },
    revocation: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: async () => undefined,
      useGrantedResource: async () => true,
      getResourceServerInfo: async (ctx, resourceIndicator) => {
        if (resourceIndicator === RESOURCE) {
          return {
            scope: 'api:read api:write',
            audience: RESOURCE,
            accessTokenTTL: 600,
            accessTokenFormat: 'opaque',
          };
        }
        throw new errors.InvalidTarget();
      },
    },
  },
  ttl: {
    AccessToken: 600,
    AuthorizationCode: 60,
    ClientCredentials: 600,
    IdToken: 600,
    RefreshToken: 3600,
    Interaction: 600,
    Session: 3600,
    Grant: 3600,
  },
  // Errors are reported to stderr (the test prints them on failure).
  renderError: async (ctx, out) => {
    ctx.type = 'json';
    ctx.body = out;
  },
};

const server = createServer();
server.listen(0, '127.0.0.1', () => {
  const { port } = server.address();
  const issuer = `http://127.0.0.1:${port}`;
  const provider = new Provider(issuer, configuration);
  provider.on('server_error', (ctx, err) => console.error('server_error', err));
  provider.on('grant.error', (ctx, err) => console.error('grant.error', err.message, err.error_description ?? ''));
  server.on('request', provider.callback());
  process.stdout.write(`${READY} ${JSON.stringify({ issuer, port })}\n`);
});

function shutdown() {
  server.close();
  process.exit(0);
}

process.stdin.on('end', shutdown);
process.stdin.on('error', shutdown);
process.stdin.resume();
setTimeout(shutdown, Number(options['max-lifetime']) * 1000);
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
