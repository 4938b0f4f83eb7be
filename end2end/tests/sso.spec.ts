// Single sign-on through a real OpenID Connect provider (oidc/provider.mjs, which
// Playwright starts): the sign-in page's link, the provider's login form, and back to
// Stepline signed in with the roles the person's groups map to (stepline-operators:
// operator, stepline-viewers: viewer). A person with no mapped group is refused, and so is
// a callback that is not the answer to a sign-in this browser began. Each test starts
// from a fresh context with no token and no cookie.
import { Page, request as playwrightRequest } from '@playwright/test';
import { expect, test } from '../support/test';
import { startWorkflow, waitForStep } from '../support/engine';
import { visitor } from '../support/identity';
import { WorkflowPage } from '../support/workflow-page';

const API = '/api/platform/orchestration';
const PROVIDER = `http://127.0.0.1:${process.env.STEPLINE_E2E_OIDC_PORT ?? 3901}`;
const CALLBACK = '/signin/oidc/e2e/callback';

/** From the sign-in page that `path` sends a visitor to, through its SSO link to the provider's login form. */
async function toProvider(page: Page, path: string): Promise<void> {
  await page.goto(path);
  await expect(page).toHaveURL(/\/signin\?next=/);
  const sso = page.getByRole('link', { name: 'Sign in with Test SSO' });
  await expect(sso).toHaveAttribute('href', /\/signin\/oidc\/e2e\?next=/);
  await sso.click();
  await expect(page).toHaveURL(new RegExp(`^${PROVIDER.replace(/\./g, '\\.')}/interaction/`));
}

/** Signs in on the provider's development login form, which takes any password. */
async function signInAtProvider(page: Page, login: string): Promise<void> {
  await page.locator('input[name="login"]').fill(login);
  await page.locator('input[name="password"]').fill('any password will do');
  await page.getByRole('button', { name: 'Sign-in', exact: true }).click();
}

test('an operator by their group signs in through the provider, sees the actions, and signs out', async ({
  browser,
  baseURL,
  request,
}) => {
  const id = await startWorkflow(request, 'e2e_deploy');
  await waitForStep(request, id, 3, 'RUNNING');

  const context = await visitor(browser, baseURL!);
  const page = await context.newPage();
  const authorization = page.waitForRequest((sent) => sent.url().startsWith(`${PROVIDER}/auth?`));
  await toProvider(page, '/orchestration');
  // What Stepline asked the provider for: a code, with PKCE, state, nonce and the groups.
  const asked = new URL((await authorization).url()).searchParams;
  expect(asked.get('client_id')).toBe('stepline-e2e');
  expect(asked.get('response_type')).toBe('code');
  expect(asked.get('code_challenge_method')).toBe('S256');
  expect(asked.get('state')).toBeTruthy();
  expect(asked.get('nonce')).toBeTruthy();
  expect(asked.get('scope')?.split(' ')).toEqual(expect.arrayContaining(['openid', 'email', 'profile', 'groups']));

  await signInAtProvider(page, 'olivia');
  await expect(page).toHaveURL(`${baseURL}/orchestration`);
  await expect(page.getByTestId('signed-in-as')).toHaveText('Olivia Operator');
  const session = (await context.cookies()).find((cookie) => cookie.name === 'stepline_session');
  expect(session?.httpOnly).toBe(true);
  const me = await page.request.get('/api/auth/me');
  expect(me.status()).toBe(200);
  expect(await me.json()).toMatchObject({
    actor: 'olivia@example.com',
    display_name: 'Olivia Operator',
    via: 'oidc:e2e',
    bindings: [{ role: 'operator', engines: '*' }],
  });

  const run = new WorkflowPage(page);
  await run.goto(id);
  await expect(run.action('cancel')).toBeVisible();
  await expect(page.getByTestId('read-only')).toHaveCount(0);

  await page.getByTestId('sign-out').click();
  await expect(page).toHaveURL(/\/signin/);
  const stale = await playwrightRequest.newContext({
    baseURL,
    extraHTTPHeaders: { Cookie: `stepline_session=${session!.value}` },
    storageState: { cookies: [], origins: [] },
  });
  expect((await stale.get('/api/auth/me')).status()).toBe(401);
  await stale.dispose();

  // The stuck step is stopped whatever happened above.
  await request.post(`${API}/workflows/${id}/cancel`, { data: { reason: 'e2e cleanup' } });
  await context.close();
});

test.describe('with the app hydrated', () => {
  test.skip(({ javaScriptEnabled }) => !javaScriptEnabled, 'one run of each flow is enough');

  test('a viewer by their group comes back to the run they asked for, with no actions; the API refuses with 403', async ({
    browser,
    baseURL,
    request,
  }) => {
    const id = await startWorkflow(request, 'e2e_deploy');
    await waitForStep(request, id, 3, 'RUNNING');

    const context = await visitor(browser, baseURL!);
    const page = await context.newPage();
    await toProvider(page, `/orchestration/workflows/${id}`);
    await signInAtProvider(page, 'victor');
    // Where they were going before the round trip through the provider.
    await expect(page).toHaveURL(`${baseURL}/orchestration/workflows/${id}`);
    await expect(page.getByTestId('signed-in-as')).toHaveText('Victor Viewer');
    const me = await page.request.get('/api/auth/me');
    expect(me.status()).toBe(200);
    expect(await me.json()).toMatchObject({
      actor: 'victor@example.com',
      via: 'oidc:e2e',
      bindings: [{ role: 'viewer', engines: '*' }],
    });

    await expect(page.getByTestId('read-only')).toBeVisible();
    await expect(page.locator('button[data-action]')).toHaveCount(0);
    const refused = await context.request.post(`${API}/workflows/${id}/cancel`, {
      headers: { Origin: baseURL! },
      data: { reason: 'not mine to cancel' },
    });
    expect(refused.status()).toBe(403);
    expect((await refused.json()).error).toBe('forbidden');

    await request.post(`${API}/workflows/${id}/cancel`, { data: { reason: 'e2e cleanup' } });
    await context.close();
  });

  test('a person whose groups give no role is refused with 403 and not signed in', async ({ browser, baseURL }) => {
    const context = await visitor(browser, baseURL!);
    const page = await context.newPage();
    await toProvider(page, '/orchestration');
    const callback = page.waitForResponse((response) => new URL(response.url()).pathname === CALLBACK);
    await signInAtProvider(page, 'nora');
    expect((await callback).status()).toBe(403);
    await expect(page.getByText('no role in Stepline')).toBeVisible();
    expect((await page.request.get('/api/auth/me')).status()).toBe(401);
    await context.close();
  });

  test('a callback with a state Stepline did not give out is refused with 400', async ({ browser, baseURL }) => {
    const context = await visitor(browser, baseURL!);
    const page = await context.newPage();
    const forged = `${CALLBACK}?code=x&state=made-up`;
    // With no sign-in under way, and with one under way (the browser at the provider's form).
    expect((await page.goto(forged))!.status()).toBe(400);
    await toProvider(page, '/orchestration');
    expect((await page.goto(forged))!.status()).toBe(400);
    expect((await page.request.get('/api/auth/me')).status()).toBe(401);
    await context.close();
  });
});
