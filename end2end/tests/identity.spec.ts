// Who may see and do what, in the browser: signing in with a password and out again, a
// viewer who sees no actions and whom the API refuses, an operator whose cancel (with its
// reason) the run's page and the audit log attribute to them, and a cross-site form that
// is refused. Each test starts from a fresh context with no token and no cookie.
import { APIRequestContext, request as playwrightRequest } from '@playwright/test';
import { expect, test } from '../support/test';
import { startWorkflow, waitForStep } from '../support/engine';
import {
  ADMIN,
  ADMIN_PASSWORD,
  freshApi,
  makeAccount,
  signInApi,
  signInPage,
  visitor,
} from '../support/identity';
import { WorkflowPage } from '../support/workflow-page';

const API = '/api/platform/orchestration';

/**
 * An account with `role` (made by the admin, whose signed-in API context is returned for
 * more), and a run of e2e_deploy waiting at its third step.
 */
async function accountAndRun(
  baseURL: string,
  request: APIRequestContext,
  login: string,
  password: string,
  role: 'viewer' | 'operator',
): Promise<{ admin: APIRequestContext; id: string }> {
  const admin = await freshApi(baseURL);
  await signInApi(admin, baseURL, ADMIN, ADMIN_PASSWORD);
  await makeAccount(admin, baseURL, login, password, role);
  const id = await startWorkflow(request, 'e2e_deploy');
  await waitForStep(request, id, 3, 'RUNNING');
  return { admin, id };
}

test('signing in with a password opens the console; signing out ends the session', async ({
  browser,
  baseURL,
}) => {
  const context = await visitor(browser, baseURL!);
  const page = await context.newPage();
  await signInPage(page, ADMIN, ADMIN_PASSWORD);
  await expect(page.getByTestId('signed-in-as')).toHaveText('Administrator');
  const session = (await context.cookies()).find((cookie) => cookie.name === 'stepline_session');
  expect(session?.httpOnly).toBe(true);
  expect(session?.sameSite).toBe('Lax');

  await page.getByTestId('sign-out').click();
  await expect(page).toHaveURL(/\/signin/);
  const stale = await playwrightRequest.newContext({
    baseURL,
    extraHTTPHeaders: { Cookie: `stepline_session=${session!.value}` },
    storageState: { cookies: [], origins: [] },
  });
  expect((await stale.get('/api/auth/me')).status()).toBe(401);
  await stale.dispose();
  await context.close();
});

test('a wrong password is refused on the sign-in page, which says so', async ({ browser, baseURL }) => {
  const context = await visitor(browser, baseURL!);
  const page = await context.newPage();
  await page.goto('/signin');
  await page.getByLabel('Login').fill(ADMIN);
  await page.getByLabel('Password').fill('not the password at all');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page).toHaveURL(/\/signin\?error=/);
  await expect(page.getByRole('alert')).toHaveText('wrong login or password');
  await context.close();
});

test.describe('with the app hydrated', () => {
  test.skip(({ javaScriptEnabled }) => !javaScriptEnabled, 'one run of each flow is enough');

  test('a viewer sees no action buttons, and the API refuses their cancel with 403', async ({
    browser,
    baseURL,
    request,
  }) => {
    const { admin, id } = await accountAndRun(baseURL!, request, 'vera@example.com', 'vera-viewer-password', 'viewer');

    const context = await visitor(browser, baseURL!);
    const page = await context.newPage();
    await signInPage(page, 'vera@example.com', 'vera-viewer-password');
    const run = new WorkflowPage(page);
    await run.goto(id);
    await expect(page.getByTestId('read-only')).toBeVisible();
    await expect(page.locator('button[data-action]')).toHaveCount(0);
    const refused = await context.request.post(`${API}/workflows/${id}/cancel`, {
      headers: { Origin: baseURL! },
      data: { reason: 'not mine to cancel' },
    });
    expect(refused.status()).toBe(403);
    expect((await refused.json()).error).toBe('forbidden');

    // The audit log is for operators: no link to it, and its page says why it is not shown.
    await expect(page.getByRole('link', { name: 'Audit', exact: true })).toHaveCount(0);
    const auditPage = await page.goto('/orchestration/audit');
    expect(auditPage!.status()).toBe(403);
    await expect(page.getByRole('alert')).toContainText('the operator role is needed');

    // The stuck step is stopped whatever happened above.
    await request.post(`${API}/workflows/${id}/cancel`, { data: { reason: 'e2e cleanup' } });
    await admin.dispose();
    await context.close();
  });

  test('an operator cancels with a reason; the run page and the audit log say who and why', async ({
    browser,
    baseURL,
    request,
  }) => {
    const { admin, id } = await accountAndRun(baseURL!, request, 'ana@example.com', 'ana-operator-password', 'operator');

    const context = await visitor(browser, baseURL!);
    const page = await context.newPage();
    await signInPage(page, 'ana@example.com', 'ana-operator-password');
    const run = new WorkflowPage(page);
    await run.goto(id);
    await run.waitUntilLive();
    await run.action('cancel').click();
    await page.getByRole('dialog').getByRole('textbox').fill('runaway');
    await run.action('confirm-cancel').click();
    await expect(run.status()).toContainText('CANCELLED', { timeout: 15_000 });
    const entry = page.getByTestId('audit-entry').filter({ hasText: 'cancel' });
    await expect(entry).toContainText('cancel by ana@example.com');
    await expect(entry).toContainText('reason: runaway');

    const audit = await admin.get(`${API}/audit?workflow_id=${id}&action=cancel`);
    expect(audit.status()).toBe(200);
    const entries = (await audit.json()).entries;
    expect(entries[0]).toMatchObject({ actor: 'ana@example.com', via: 'session', reason: 'runaway', outcome: 'ok' });

    // The audit page, from the header's link, filtered by the run as a person would.
    await page.getByRole('link', { name: 'Audit', exact: true }).click();
    await expect(page).toHaveURL(/\/orchestration\/audit/);
    await page.getByLabel('Run').fill(id);
    await page.getByRole('button', { name: 'Search' }).click();
    await expect(page).toHaveURL(new RegExp(`workflow_id=${id}`));
    const row = page.getByTestId('audit-row').filter({ hasText: 'cancel' });
    await expect(row).toContainText('ana@example.com');
    await expect(row).toContainText('reason: runaway');
    await expect(row.getByRole('link', { name: id })).toHaveAttribute('href', `/orchestration/workflows/${id}`);
    await admin.dispose();
    await context.close();
  });

  test('a cross-site form riding on the session cookie is refused', async ({ browser, baseURL, request }) => {
    const id = await startWorkflow(request, 'e2e_deploy');
    await waitForStep(request, id, 3, 'RUNNING');
    const context = await visitor(browser, baseURL!);
    const page = await context.newPage();
    await signInPage(page, ADMIN, ADMIN_PASSWORD);
    // The same cookie, sent by a page of another origin (a form and a text/plain fetch).
    for (const contentType of ['application/x-www-form-urlencoded', 'text/plain']) {
      const forged = await context.request.post(`${API}/workflows/${id}/cancel`, {
        headers: { Origin: 'http://evil.example', 'Content-Type': contentType },
        data: 'reason=gotcha',
      });
      expect(forged.status(), contentType).toBe(403);
      expect(await forged.text()).toContain('cross-site request refused');
    }
    const detail = await request.get(`${API}/workflows/${id}`);
    expect((await detail.json()).status).toBe('RUNNING');
    await request.post(`${API}/workflows/${id}/cancel`, { data: { reason: 'e2e cleanup' } });
    await context.close();
  });
});
