// Operators' actions from the run page with JavaScript off: every button is a form the
// browser sends itself, a dialog is the page asked for again with it open, and the
// engine's answer or refusal comes back as a page. The hydrated app's actions are
// covered by operator-flows.spec.ts.
import { expect, test } from '../support/test';
import { startWorkflow, waitForStatus, waitForStep, workflowDetail } from '../support/engine';
import { WorkflowPage } from '../support/workflow-page';

test.describe('actions without JavaScript', () => {
  test.skip(({ javaScriptEnabled }) => javaScriptEnabled, 'the hydrated app is tested in operator-flows');

  test('cancel asks first, takes the typed reason, and comes back to the run', async ({
    page,
    request,
  }) => {
    const id = await startWorkflow(request, 'e2e_deploy');
    await waitForStep(request, id, 3, 'RUNNING');
    const run = new WorkflowPage(page);
    await run.goto(id);

    await run.action('cancel').click();
    await expect(page).toHaveURL(new RegExp(`/orchestration/workflows/${id}\\?confirm=cancel$`));
    const dialog = page.getByRole('dialog');
    await expect(dialog).toContainText(`Cancel ${id}? This will trigger rollback.`);
    await expect(dialog.getByRole('textbox')).toHaveValue('Manual cancellation');
    await dialog.getByRole('textbox').fill('Stopped from a plain form');
    await run.action('confirm-cancel').click();

    // Back on the run's page, not on the dialog that was answered.
    await expect(page).toHaveURL(new RegExp(`/orchestration/workflows/${id}$`));
    await expect(page.getByRole('dialog')).toHaveCount(0);
    await expect(run.status()).toContainText(/CANCELLING|CANCELLED/);
    await waitForStatus(request, id, 'CANCELLED');
    await page.reload();
    await expect(page.getByTestId('status-reason')).toHaveText('Stopped from a plain form');
    await expect(run.rollback().locator('li.step[data-status="COMPLETED"]')).toHaveCount(2);
  });

  test('keep running closes the dialog and sends nothing', async ({ page, request }) => {
    const id = await startWorkflow(request, 'e2e_deploy');
    await waitForStep(request, id, 3, 'RUNNING');
    try {
      const run = new WorkflowPage(page);
      await run.goto(id);
      await run.action('cancel').click();
      await expect(page.getByRole('dialog')).toContainText(`Cancel ${id}?`);
      await page.getByRole('dialog').getByRole('button', { name: 'Keep running' }).click();
      await expect(page).toHaveURL(new RegExp(`/orchestration/workflows/${id}$`));
      await expect(page.getByRole('dialog')).toHaveCount(0);
      expect((await workflowDetail(request, id)).status).toBe('RUNNING');
    } finally {
      // An open run left behind would change what the analytics test counts.
      await request.post(`/api/platform/orchestration/workflows/${id}/cancel`, { data: {} });
    }
  });

  test('a failed run is retried from its failed step', async ({ page, request }) => {
    const id = await startWorkflow(request, 'e2e_failing');
    await waitForStatus(request, id, 'FAILED');
    const run = new WorkflowPage(page);
    await run.goto(id);

    await run.action('retry').click();
    await run.action('retry-failed-step').click();
    await expect(page).toHaveURL(new RegExp(`/orchestration/workflows/${id}$`));
    await waitForStatus(request, id, 'COMPLETED');
    await page.reload();
    await expect(run.step(4)).toHaveAttribute('data-status', 'COMPLETED');
    await run.step(4).locator('summary').click();
    await expect(run.step(4).locator('table.attempts tbody tr')).toHaveCount(5);
    await expect(run.step(1).locator('table.attempts tbody tr')).toHaveCount(1);
  });

  test("a refused action comes back with the engine's reason", async ({ page, request }) => {
    const id = await startWorkflow(request, 'e2e_deploy');
    await waitForStep(request, id, 3, 'RUNNING');
    const run = new WorkflowPage(page);
    await run.goto(id);
    await expect(run.action('pause')).toBeVisible();
    // The page as served still offers Pause; the run is cancelled before it is sent.
    const cancelled = await request.post(`/api/platform/orchestration/workflows/${id}/cancel`, {
      data: {},
    });
    expect(cancelled.status()).toBe(200);
    await run.action('pause').click();
    await expect(run.notice()).toContainText(/cannot pause a (CANCELLING|CANCELLED) workflow/);
    await expect(run.action('pause')).toHaveCount(0);
  });
});
