// The story's operator flows 1-4 against the real server and its built-in engine,
// running the test workflow types of end2end/workflows.
import { expect, test } from '../support/test';
import { startWorkflow, waitForStatus, waitForStep } from '../support/engine';
import { OrchestrationPage } from '../support/orchestration-page';
import { WorkflowPage } from '../support/workflow-page';

test('the detail page renders a run with its timeline and attempts', async ({ page, request }) => {
  const id = await startWorkflow(request, 'e2e_failing');
  await waitForStatus(request, id, 'FAILED');

  const run = new WorkflowPage(page);
  await run.goto(id);
  await expect(run.status()).toContainText('FAILED');
  await expect(page.getByTestId('status-reason')).toContainText(
    'step 4 (database_insert) failed: psycopg2.OperationalError: Connection refused',
  );
  await expect(run.step(4)).toHaveAttribute('data-status', 'FAILED');
  await expect(run.step(4)).toContainText('Retry 3/3');
  // Works without JavaScript too: the timeline is <details>.
  await run.step(4).locator('summary').click();
  const attempts = run.step(4).locator('table.attempts tbody tr');
  await expect(attempts).toHaveText([/Attempt 1/, /Retry 1\/3/, /Retry 2\/3/, /Retry 3\/3 \(Final\)/]);
  await expect(run.step(4).getByTestId('retry-policy')).toHaveText(
    'Up to 3 retries, exponential backoff (0.1s, 0.2s, 0.4s)',
  );
  await expect(run.step(4).getByTestId('step-error')).toHaveText(
    'psycopg2.OperationalError: Connection refused',
  );
});

test.describe('operator flows', () => {
  test.skip(({ javaScriptEnabled }) => !javaScriptEnabled, 'needs the hydrated app');

  test('flow 1: active workflows show live progress and move between tabs', async ({
    page,
    request,
  }) => {
    const list = new OrchestrationPage(page);
    await list.goto('?tab=active');
    await list.waitUntilLive();
    const id = await startWorkflow(request, 'e2e_monitor');
    await expect(list.row(id)).toBeVisible();
    await expect(list.progressText(id)).toHaveText('1/3 (33%)');
    await expect(list.progressText(id)).toHaveText('2/3 (67%)');
    await expect(list.progressText(id)).toHaveText('3/3 (100%)');
    // Completed: it leaves the Active tab without a reload.
    await expect(list.row(id)).toHaveCount(0, { timeout: 10_000 });
    await page.locator('a[data-tab="completed"]').click();
    await expect(page).toHaveURL(/tab=completed/);
    await expect(list.row(id)).toBeVisible();
    await expect(list.status(id)).toContainText('COMPLETED');
  });

  test('flow 2: a stuck step shows its input and its live log tail', async ({ page, request }) => {
    const id = await startWorkflow(request, 'e2e_deploy', { customer_id: 'cust-stuck', region: 'eu-west-1' });
    try {
      await waitForStep(request, id, 3, 'RUNNING');

      const list = new OrchestrationPage(page);
      await list.goto();
      await list.row(id).getByRole('link', { name: id }).click();
      await expect(page).toHaveURL(new RegExp(`/orchestration/workflows/${id}$`));
      const run = new WorkflowPage(page);
      await run.waitUntilLive();
      await expect(run.step(3)).toHaveAttribute('data-status', 'RUNNING');
      await run.expand(3);
      await expect(run.step(3).getByTestId('step-input')).toContainText('"customer_id": "cust-stuck"');
      await expect(run.step(3).getByTestId('step-logs')).toContainText('Still waiting for partner API');
      await expect(run.step(3)).toContainText('Logs (live tail)');
    } finally {
      // The stuck program is stopped by the cancel, whatever happened above: an open run
      // left behind would change what the analytics test counts.
      await request.post(`/api/platform/orchestration/workflows/${id}/cancel`, { data: {} });
    }
  });

  test('flow 3: cancel asks first, then the rollback runs in reverse order', async ({
    page,
    request,
  }) => {
    const id = await startWorkflow(request, 'e2e_deploy');
    await waitForStep(request, id, 3, 'RUNNING');
    const run = new WorkflowPage(page);
    await run.goto(id);
    await run.waitUntilLive();

    await run.action('cancel').click();
    await expect(page.getByRole('dialog')).toContainText(`Cancel ${id}? This will trigger rollback.`);
    await page.getByRole('dialog').getByRole('textbox').fill('Runaway deployment');
    await run.action('confirm-cancel').click();
    // CANCELLING lasts as long as the two compensations: a slow read may see the end.
    await expect(run.status()).toContainText(/CANCELLING|CANCELLED/);
    await expect(run.rollback()).toBeVisible();
    await expect(run.rollback().locator('li.step').first()).toContainText('C1 compensate deploy_container');
    await expect(run.rollback().locator('li.step').nth(1)).toContainText('C2 compensate reserve_resources');
    await expect(run.status()).toContainText('CANCELLED', { timeout: 10_000 });
    await expect(page.getByTestId('status-reason')).toHaveText('Runaway deployment');
    await expect(run.step(3)).toHaveAttribute('data-status', 'CANCELLED');
    await expect(run.rollback().locator('li.step[data-status="COMPLETED"]')).toHaveCount(2);
  });

  test('flow 4: a failed workflow is read, retried from the failed step, and succeeds', async ({
    page,
    request,
  }) => {
    const id = await startWorkflow(request, 'e2e_failing');
    await waitForStatus(request, id, 'FAILED');

    const list = new OrchestrationPage(page);
    await list.goto();
    await page.locator('a[data-tab="failed"]').click();
    await expect(list.row(id)).toBeVisible();
    await list.row(id).getByRole('link', { name: id }).click();
    const run = new WorkflowPage(page);
    await run.waitUntilLive();
    await run.expand(4);
    await expect(run.step(4).getByTestId('step-error')).toHaveText(
      'psycopg2.OperationalError: Connection refused',
    );
    await expect(run.step(4).locator('table.attempts tbody tr')).toHaveCount(4);

    await run.action('retry').click();
    await run.action('retry-failed-step').click();
    await expect(run.notice()).toHaveText('Retrying from step 4 (database_insert)');
    await expect(run.status()).toContainText('COMPLETED', { timeout: 10_000 });
    await expect(run.step(4)).toHaveAttribute('data-status', 'COMPLETED');
    await expect(run.step(4).locator('table.attempts tbody tr')).toHaveCount(5);
    await expect(run.step(1).locator('table.attempts tbody tr')).toHaveCount(1);
  });

  test('an action the engine refuses shows its reason', async ({ page, request }) => {
    // The page gets no live updates here, so its Pause button goes stale.
    await page.routeWebSocket('/ws/orchestration', () => {});
    const id = await startWorkflow(request, 'e2e_deploy');
    await waitForStep(request, id, 3, 'RUNNING');
    const run = new WorkflowPage(page);
    await run.goto(id);
    await run.waitUntilLive();
    // The re-read that follows the (mocked) connection is done before the run changes.
    await page.waitForLoadState('networkidle');
    await expect(run.action('pause')).toBeVisible();
    const cancelled = await request.post(`/api/platform/orchestration/workflows/${id}/cancel`, {
      data: {},
    });
    expect(cancelled.status()).toBe(200);
    await run.action('pause').click();
    await expect(run.notice()).toContainText(/cannot pause a (CANCELLING|CANCELLED) workflow/);
  });
});
