// The real OpenID Connect provider the browser tests sign in through (tests/sso.spec.ts):
// oidc-provider with its built-in development login page, one client (Stepline, as
// end2end/oidc/providers.toml configures it) and a fixed table of people and their groups.
// Playwright starts it before Stepline (playwright.config.ts). It is a test provider, not
// for production: any password is accepted, its keys are throwaway, nothing is persisted.
//
//   node oidc/provider.mjs   (from end2end/; STEPLINE_E2E_OIDC_PORT, default 3901)
import { generateKeyPairSync } from 'node:crypto';
import Provider from 'oidc-provider';

const port = Number(process.env.STEPLINE_E2E_OIDC_PORT ?? 3901);
const steplinePort = Number(process.env.STEPLINE_E2E_PORT ?? 3400);
const issuer = `http://127.0.0.1:${port}`;

/** The people the tests sign in as; any other login is a person with no group. */
const PEOPLE = {
  olivia: { name: 'Olivia Operator', groups: ['stepline-operators'] },
  victor: { name: 'Victor Viewer', groups: ['stepline-viewers'] },
  nora: { name: 'Nora Nobody', groups: [] }, // no role in Stepline
};

function account(login) {
  const known = PEOPLE[login];
  const email = login.includes('@') ? login : `${login}@example.com`;
  return {
    accountId: login,
    // Every claim of the granted scopes; oidc-provider keeps only those the scopes name.
    async claims() {
      return {
        sub: login,
        email,
        email_verified: true,
        name: known?.name ?? login,
        preferred_username: login,
        groups: known?.groups ?? [],
      };
    },
  };
}

// A signing key made at each start: Stepline must read the provider's JWKS, as with a
// real provider, rather than rely on a key it was given.
const signingKey = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'jwk' });

const provider = new Provider(issuer, {
  clients: [
    {
      client_id: 'stepline-e2e',
      client_secret: process.env.STEPLINE_OIDC_E2E_SECRET ?? 'e2e-oidc-client-secret',
      token_endpoint_auth_method: 'client_secret_basic',
      grant_types: ['authorization_code'],
      response_types: ['code'],
      redirect_uris: [`http://127.0.0.1:${steplinePort}/signin/oidc/e2e/callback`],
    },
  ],
  responseTypes: ['code'],
  jwks: { keys: [{ ...signingKey, kid: 'e2e', use: 'sig', alg: 'RS256' }] },
  scopes: ['openid', 'email', 'profile', 'groups'],
  claims: {
    openid: ['sub'],
    email: ['email', 'email_verified'],
    profile: ['name', 'preferred_username'],
    groups: ['groups'],
  },
  // Stepline reads who signed in from the ID token, not the userinfo endpoint: put the
  // claims of the granted scopes in the ID token too.
  conformIdTokenClaims: false,
  findAccount: async (ctx, id) => account(id),
  // Consent is skipped: the client is given whatever it asked for, at once. The tests
  // are about Stepline, not about the provider's consent page.
  loadExistingGrant: async (ctx) => {
    const grant = new ctx.oidc.provider.Grant({
      accountId: ctx.oidc.account.accountId,
      clientId: ctx.oidc.client.clientId,
    });
    grant.addOIDCScope([...ctx.oidc.requestParamOIDCScopes].join(' '));
    grant.addOIDCClaims([...ctx.oidc.requestParamClaims]);
    await grant.save();
    return grant;
  },
  // Short lives, in seconds: a test run is minutes long.
  ttl: { Interaction: 600, Session: 3600, Grant: 3600, AccessToken: 600, IdToken: 600, AuthorizationCode: 60 },
  features: {
    devInteractions: { enabled: true }, // the login form: fields login and password, "Sign-in"
  },
  // PKCE (S256) stays required, as oidc-provider has it by default.
  cookies: {
    // Cookies are per host, not per port: Stepline on the same 127.0.0.1 must not see
    // names it might use. Fixed keys are fine for a test provider.
    names: {
      session: 'oidc_session',
      interaction: 'oidc_interaction',
      resume: 'oidc_interaction_resume',
    },
    keys: ['stepline-e2e-oidc-test-cookie-key-not-a-secret'],
    // Lax, not the default None (which needs Secure, and this is plain HTTP): every
    // request that needs the cookies is a top-level navigation to the provider.
    long: { signed: true, sameSite: 'lax' },
    short: { signed: true, sameSite: 'lax' },
  },
});

// The development pages import a web font from Google: the test machine has no internet,
// and a page must not wait on it. Drop the import.
provider.use(async (ctx, next) => {
  await next();
  if (ctx.type === 'text/html' && typeof ctx.body === 'string') {
    ctx.body = ctx.body.replace(/@import url\(https:\/\/fonts\.googleapis\.com[^)]*\);/g, '');
  }
});

// What went wrong, where the test run's output shows it (Playwright pipes stderr).
for (const event of ['authorization.error', 'grant.error', 'server_error']) {
  provider.on(event, (ctx, error) => {
    console.error(`oidc provider: ${event}: ${error.message} ${error.error_description ?? ''}`);
  });
}

const server = provider.listen(port, '127.0.0.1', () => {
  console.log(`oidc provider listening on ${issuer}`);
});

function stop() {
  server.close(() => process.exit(0));
  server.closeAllConnections();
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
