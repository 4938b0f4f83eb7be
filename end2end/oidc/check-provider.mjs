// A check of the test OpenID Connect provider alone, without Stepline or a browser: plays
// the client's part of the authorization code flow (PKCE S256) against a running
// oidc/provider.mjs, signs in as a login through its development form, exchanges the code
// with the client's secret, and prints the ID token's claims. For when the SSO tests fail
// and it is unclear which side is wrong. Not run by the test suite.
//
//   node oidc/provider.mjs &   then   node oidc/check-provider.mjs [login]   (from end2end/)
import { createHash, randomBytes } from 'node:crypto';

const port = Number(process.env.STEPLINE_E2E_OIDC_PORT ?? 3901);
const steplinePort = Number(process.env.STEPLINE_E2E_PORT ?? 3400);
const secret = process.env.STEPLINE_OIDC_E2E_SECRET ?? 'e2e-oidc-client-secret';
const login = process.argv[2] ?? 'olivia';
const issuer = `http://127.0.0.1:${port}`;
const redirectUri = `http://127.0.0.1:${steplinePort}/signin/oidc/e2e/callback`;

const base64url = (bytes) => Buffer.from(bytes).toString('base64url');
const verifier = base64url(randomBytes(32));
const state = base64url(randomBytes(16));
const nonce = base64url(randomBytes(16));

// The provider's cookies, by name (each request sends all of them; paths do not matter here).
const jar = new Map();
async function get(url, init = {}) {
  const response = await fetch(new URL(url, issuer), {
    ...init,
    redirect: 'manual',
    headers: { ...init.headers, Cookie: [...jar].map(([name, value]) => `${name}=${value}`).join('; ') },
  });
  for (const cookie of response.headers.getSetCookie()) {
    const [pair] = cookie.split(';');
    const at = pair.indexOf('=');
    jar.set(pair.slice(0, at), pair.slice(at + 1));
  }
  return response;
}

function fail(message) {
  console.error(`check-provider: ${message}`);
  process.exit(1);
}

const discovery = await (await get('/.well-known/openid-configuration')).json();
if (discovery.issuer !== issuer) fail(`issuer is ${discovery.issuer}, not ${issuer}`);

const authorize = new URL(discovery.authorization_endpoint);
authorize.search = new URLSearchParams({
  client_id: 'stepline-e2e',
  redirect_uri: redirectUri,
  response_type: 'code',
  scope: 'openid email profile groups',
  state,
  nonce,
  code_challenge: base64url(createHash('sha256').update(verifier).digest()),
  code_challenge_method: 'S256',
}).toString();

// Follow the provider's redirects, submitting the login form when it is shown, until it
// sends the browser back to the client's callback.
let response = await get(authorize);
let callback;
for (let hops = 0; hops < 10 && !callback; hops += 1) {
  const location = response.headers.get('location');
  if (location?.startsWith(redirectUri)) {
    callback = new URL(location);
  } else if (location) {
    console.log(`-> ${response.status} ${location}`);
    response = await get(location);
  } else if (response.status === 200) {
    const form = (await response.text()).match(/<form[^>]*action="([^"]+)"[^>]*>[\s\S]*?name="prompt" value="(\w+)"/);
    if (!form) fail('a page that is not the login form');
    console.log(`   form: prompt=${form[2]}, posting to ${form[1]}`);
    response = await get(form[1], {
      method: 'POST',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ prompt: form[2], login, password: 'anything' }).toString(),
    });
  } else {
    fail(`${response.status}: ${await response.text()}`);
  }
}
if (!callback) fail('never sent back to the callback');
console.log(`-> callback ${callback}`);
if (callback.searchParams.get('error')) fail(`error ${callback.searchParams.get('error_description')}`);
if (callback.searchParams.get('state') !== state) fail('state not given back');

const tokens = await fetch(discovery.token_endpoint, {
  method: 'POST',
  headers: {
    Authorization: `Basic ${Buffer.from(`stepline-e2e:${secret}`).toString('base64')}`,
    'Content-Type': 'application/x-www-form-urlencoded',
  },
  body: new URLSearchParams({
    grant_type: 'authorization_code',
    code: callback.searchParams.get('code'),
    redirect_uri: redirectUri,
    code_verifier: verifier,
  }).toString(),
});
const body = await tokens.json();
if (tokens.status !== 200) fail(`token endpoint ${tokens.status}: ${JSON.stringify(body)}`);
const [header, payload] = body.id_token.split('.').slice(0, 2).map((part) => JSON.parse(Buffer.from(part, 'base64url')));
console.log('token response fields:', Object.keys(body).join(', '));
console.log('id token header:', JSON.stringify(header));
console.log('id token claims:', JSON.stringify(payload, null, 2));
if (payload.nonce !== nonce) fail('nonce not in the ID token');
for (const claim of ['email', 'name', 'groups']) {
  if (!(claim in payload)) fail(`${claim} not in the ID token`);
}
console.log('ok');
