// The alert inbox in the browser: an operator who looks after one engine sees the header's
// badge count that engine's failures live as they happen, acknowledges them in the inbox
// (the badge counts down), and finds a run's alerts on its page.
import { APIRequestContext } from '@playwright/test';
import { expect, test } from '../support/test';
import {
  ADMIN,
  ADMIN_PASSWORD,
  freshApi,
  makeAccount,
  signInPage,
  visitor,
} from '../support/identity';
import { uniqueId, workflowStarted } from '../support/ingest';

test.skip(({ javaScriptEnabled }) => !javaScriptEnabled, 'live: needs the hydrated app');

/** The engine only this test pushes to (the tests' token may push as it). */
const SOURCE = 'e2e-alerts';
const ALERTS = '/api/platform/orchestration/alerts';

async function pushFailure(request: APIRequestContext, id: string): Promise<void> {
  const response = await request.post('/api/platform/orchestration/events', {
    data: {
      source: SOURCE,
      events: [
        workflowStarted(id, { workflow_type: 'e2e_alerted' }),
        {
          type: 'workflow_status_changed',
          workflow_id: id,
          at: new Date().toISOString(),
          status: 'FAILED',
          reason: '<b>not bold</b> the ledger refused the batch',
        },
      ],
    },
  });
  expect(response.status(), await response.text()).toBe(200);
}

test('the badge counts an engine’s failures live and acknowledging clears them', async ({
  browser,
  baseURL,
  request,
}) => {
  // An operator of this engine alone: the badge counts its alerts and no other's.
  const login = uniqueId('alerts-operator');
  const password = 'alerts-operator-password-1';
  const admin = await freshApi(baseURL!);
  const signedIn = await admin.post('/api/auth/sign-in', {
    headers: { Origin: baseURL! },
    data: { login: ADMIN, password: ADMIN_PASSWORD },
  });
  expect(signedIn.status()).toBe(200);
  await makeAccount(admin, baseURL!, login, password, 'operator', `custom:${SOURCE}`);
  const context = await visitor(browser, baseURL!);
  const page = await context.newPage();
  await signInPage(page, login, password);

  // A clean slate: what earlier runs of the tests left open on this engine, acknowledged.
  const open = await page.request.get(`${ALERTS}?limit=500`);
  expect(open.status()).toBe(200);
  for (const alert of (await open.json()).alerts) {
    if (!alert.acknowledged_at) {
      const acknowledged = await page.request.post(`${ALERTS}/${alert.id}/acknowledge`, {
        headers: { Origin: baseURL! },
      });
      expect(acknowledged.status()).toBe(200);
    }
  }

  await page.goto('/orchestration/alerts');
  await expect(page.locator('.connection')).toHaveAttribute('data-state', 'connected');
  const badge = page.getByTestId('alert-count');
  await expect(badge).toHaveCount(0);

  const first = uniqueId('alerted');
  const second = uniqueId('alerted');
  await pushFailure(request, first);
  await expect(badge).toHaveText('1');
  await pushFailure(request, second);
  await expect(badge).toHaveText('2');
  await expect(page.getByTestId('alerts-link')).toHaveAttribute('aria-label', 'Alerts 2 open');

  // The inbox lists both, live, the run's words as text.
  const row = (id: string) => page.getByTestId('alert-row').filter({ hasText: id });
  await expect(row(first)).toHaveAttribute('data-condition', 'failed');
  await expect(row(second)).toContainText('<b>not bold</b> the ledger refused the batch');
  await expect(row(second).locator('b')).toHaveCount(0);

  await row(first).getByTestId('acknowledge').click();
  await expect(row(first).getByTestId('acknowledged')).toContainText(`acknowledged by ${login}`);
  await expect(badge).toHaveText('1');
  await row(second).getByTestId('acknowledge').click();
  await expect(badge).toHaveCount(0);

  // The run's page lists its alert, acknowledged.
  await page.goto(`/orchestration/workflows/${first}`);
  const runAlert = page.getByTestId('run-alert');
  await expect(runAlert).toHaveAttribute('data-condition', 'failed');
  await expect(runAlert).toContainText(`acknowledged by ${login}`);

  await context.close();
  await admin.dispose();
});
