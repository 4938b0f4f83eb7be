// Temporal and the built-in engine side by side (issue 6): the Stepline under test also
// follows the Temporal dev server that scripts/test.sh starts, with its fixture worker.
import { expect, test } from '../support/test';
import { startWorkflow, waitForStatus } from '../support/engine';
import { OrchestrationPage } from '../support/orchestration-page';
import { startInTemporal, statusIn, temporal } from '../support/temporal';
import { WorkflowPage } from '../support/workflow-page';

test.describe('a Temporal source beside the built-in engine', () => {
  test.skip(!temporal, 'needs the Temporal dev server that scripts/test.sh starts');

  test('both engines share the list, and the Temporal run opens on its timeline', async ({ page, request }) => {
    const builtin = await startWorkflow(request, 'e2e_failing');
    const fromTemporal = await startInTemporal('SequentialWF', { steps: 3, step_ms: 100 });
    await expect.poll(() => statusIn(request, fromTemporal), { timeout: 20_000 }).toBe('COMPLETED');
    await waitForStatus(request, builtin, 'FAILED');

    const list = new OrchestrationPage(page);
    await list.goto('?sort=newest');
    await expect(list.row(fromTemporal)).toBeVisible();
    await expect(list.row(builtin)).toBeVisible();
    await expect(list.row(fromTemporal)).toContainText('temporal:e2e:default');
    await expect(list.row(fromTemporal)).toContainText('SequentialWF');
    await expect(list.row(builtin)).toContainText('builtin');

    await list.row(fromTemporal).locator('a').first().click();
    await expect(page).toHaveURL(new RegExp(`/orchestration/workflows/${fromTemporal.replace(/[.]/g, '\\.')}`));
    const run = new WorkflowPage(page);
    await expect(run.status()).toContainText('COMPLETED');
    await expect(page.locator('li.step')).toHaveCount(3);
    await expect(run.step(1)).toContainText('do_step');
    await expect(run.step(3)).toHaveAttribute('data-status', 'COMPLETED');
    // Its engine takes actions too: clone is offered, pause is not (the run ended).
    await expect(run.action('clone')).toBeVisible();
    await expect(run.action('pause')).toHaveCount(0);
  });
});

test.describe('Temporal actions from the detail page', () => {
  test.skip(!temporal, 'needs the Temporal dev server that scripts/test.sh starts');
  test.skip(({ javaScriptEnabled }) => !javaScriptEnabled, 'actions need the hydrated app');

  test('terminate is a separate, confirmed hard stop', async ({ page, request }) => {
    const id = await startInTemporal('LongRunningWF', { steps: 2, step_ms: 30000 });
    await expect.poll(() => statusIn(request, id), { timeout: 20_000 }).toBe('RUNNING');
    const run = new WorkflowPage(page);
    await run.goto(id);
    await run.waitUntilLive();
    // Cancel says what it does on Temporal: a request the workflow's code answers.
    await expect(run.action('cancel')).toHaveAttribute('title', /its own code decides what to roll back/);
    await run.action('terminate').click();
    await expect(page.getByRole('dialog')).toContainText(`Terminate ${id}? It stops at once and nothing is rolled back.`);
    await page.locator('button[data-action="confirm-terminate"]').click();
    await expect(run.notice()).toContainText('Terminated in Temporal');
    await expect(run.status()).toContainText('TERMINATED', { timeout: 10_000 });
  });
});
