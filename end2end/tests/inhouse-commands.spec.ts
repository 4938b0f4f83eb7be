// Flow 3 on an in-house engine that takes commands by pulling them: this test plays the
// engine through Stepline's API (it pulls its command, accepts it, and pushes the events
// of carrying it out). The operator's cancel is shown as requested and not confirmed —
// the run stays RUNNING — until the engine's own events show it done, with the engine's
// compensation as the rollback.
import { APIRequestContext } from '@playwright/test';
import { expect, test } from '../support/test';
import { now, uniqueId } from '../support/ingest';
import { WorkflowPage } from '../support/workflow-page';

/** The pulling source scripts/test.sh declares (STEPLINE_PUSH_SOURCES). */
const SOURCE = 'e2e-inhouse';
const API = '/api/platform/orchestration';

async function push(request: APIRequestContext, events: Record<string, unknown>[]): Promise<void> {
  const response = await request.post(`${API}/events`, { data: { source: SOURCE, events } });
  expect(response.status(), await response.text()).toBe(200);
}

test.describe('with the app hydrated', () => {
  test.skip(({ javaScriptEnabled }) => !javaScriptEnabled, 'one run of the flow is enough');

  test('flow 3 on an in-house engine: the cancel waits for the engine, which pulls it and rolls back', async ({
    page,
    request,
  }) => {
    const id = uniqueId('inhouse-deploy');
    await push(request, [
      { type: 'workflow_started', workflow_id: id, at: now(), workflow_type: 'deploy', total_steps: 2 },
      { type: 'step_started', workflow_id: id, at: now(), step_number: 1, name: 'deploy_container' },
    ]);
    const run = new WorkflowPage(page);
    await run.goto(id);
    await run.waitUntilLive();

    await run.action('cancel').click();
    await page.getByRole('dialog').getByRole('textbox').fill('Runaway deployment');
    await run.action('confirm-cancel').click();
    await expect(run.notice()).toContainText('not confirmed yet');
    await expect(run.status()).toContainText('RUNNING');
    const command = page.getByTestId('engine-command');
    // Who asked: the suite's pages send its token as well as the admin's session.
    await expect(command).toContainText(/cancel asked by (admin|token:e2e) at /);
    await expect(command).toContainText('not delivered');

    // The engine pulls its command, and accepts it.
    const pulled = await request.get(`${API}/sources/${SOURCE}/commands?wait=10`);
    expect(pulled.status()).toBe(200);
    const cancel = (await pulled.json()).commands.find(
      (candidate: { workflow_id: string }) => candidate.workflow_id === id,
    );
    expect(cancel).toMatchObject({ action: 'cancel', reason: 'Runaway deployment' });
    expect(cancel.idempotency_key).toBeTruthy();
    const answered = await request.post(`${API}/sources/${SOURCE}/commands/${cancel.id}`, {
      data: { accepted: true },
    });
    expect(answered.status()).toBe(200);

    // Its events carry it out: CANCELLING, the compensation of step 1, CANCELLED.
    await push(request, [
      { type: 'workflow_status_changed', workflow_id: id, at: now(), status: 'CANCELLING', reason: 'Runaway deployment' },
      { type: 'step_cancelled', workflow_id: id, at: now(), step_number: 1, reason: 'cancelled by the operator' },
      {
        type: 'step_scheduled',
        workflow_id: id,
        at: now(),
        step_number: 3,
        name: 'compensate deploy_container',
        kind: 'compensation',
        compensates: 1,
      },
      { type: 'step_started', workflow_id: id, at: now(), step_number: 3 },
      { type: 'step_completed', workflow_id: id, at: now(), step_number: 3 },
      { type: 'workflow_status_changed', workflow_id: id, at: now(), status: 'CANCELLED', reason: 'Runaway deployment' },
    ]);
    await expect(run.status()).toContainText('CANCELLED');
    await expect(run.rollback()).toBeVisible();
    await expect(run.rollback().locator('li.step').first()).toContainText('compensate deploy_container');
    await expect(command).toContainText('carried out');
  });
});
