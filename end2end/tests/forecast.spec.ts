// Forecasts in the browser: a run of a type with history, forecast to miss its SLA target,
// shows the warning live in the list and on its page long before 90 % of the target has
// passed, and the "Will breach" filter lists it.
import { expect, test } from '../support/test';
import { OrchestrationPage } from '../support/orchestration-page';
import { push, SourceEvent, uniqueId, workflowStarted } from '../support/ingest';

test.skip(({ javaScriptEnabled }) => !javaScriptEnabled, 'live: needs the hydrated app');

const SECOND = 1000;

function at(ms: number): string {
  return new Date(ms).toISOString();
}

/** A completed run of `type`: extract for 60 s, then load for 30 s, from `start`. */
function earlierRun(id: string, type: string, start: number): SourceEvent[] {
  const extracted = start + 60 * SECOND;
  const loaded = extracted + 30 * SECOND;
  return [
    workflowStarted(id, { at: at(start), workflow_type: type, total_steps: 2 }),
    { type: 'step_started', workflow_id: id, at: at(start), step_number: 1, name: 'extract' },
    { type: 'step_completed', workflow_id: id, at: at(extracted), step_number: 1 },
    { type: 'step_started', workflow_id: id, at: at(extracted), step_number: 2, name: 'load' },
    { type: 'step_completed', workflow_id: id, at: at(loaded), step_number: 2 },
    { type: 'workflow_status_changed', workflow_id: id, at: at(loaded), status: 'COMPLETED' },
  ];
}

test('a run forecast to miss its SLA is flagged live, before its 90 % warning', async ({
  page,
  request,
}) => {
  // A type of its own: its history is exactly what this test pushed.
  const type = uniqueId('forecast_type').replace(/-/g, '_');
  const hourAgo = Date.now() - 3600 * SECOND;
  const history: SourceEvent[] = [];
  for (let n = 0; n < 6; n++) {
    history.push(...earlierRun(uniqueId('forecast-history'), type, hourAgo + n * 300 * SECOND));
  }
  await push(request, history);

  const list = new OrchestrationPage(page);
  await list.goto(`?type=${type}`);
  await list.waitUntilLive();

  // A 60 s target, and extract alone usually takes 60 s: expected about 90 s after start.
  const id = uniqueId('forecast-late');
  const start = Date.now();
  await push(request, [
    workflowStarted(id, { at: at(start), workflow_type: type, total_steps: 2, sla_target_seconds: 60 }),
    { type: 'step_started', workflow_id: id, at: at(start), step_number: 1, name: 'extract' },
  ]);

  const forecast = list.row(id).locator('[data-testid="forecast"]');
  await expect(forecast).toHaveAttribute('data-breach', 'likely');
  await expect(forecast).toContainText('likely breach');
  // Told before the 90 % warning: the SLA column still says on track.
  expect(Date.now() - start).toBeLessThan(54 * SECOND);
  await expect(list.row(id).locator('.badge.sla-on_track')).toBeVisible();

  // The "Will breach" filter keeps it.
  await page.getByTestId('will-breach').check();
  await page.getByRole('button', { name: 'Apply' }).click();
  await expect(page).toHaveURL(/will_breach=true/);
  await expect(list.row(id)).toBeVisible();

  // Its page says when it is expected and against which deadline.
  await page.goto(`/orchestration/workflows/${id}`);
  const line = page.getByTestId('forecast-line');
  await expect(line).toHaveAttribute('data-breach', 'likely');
  await expect(line).toContainText('Expected');
  await expect(line).toContainText('SLA');
  await expect(line).toContainText('likely breach');
  await expect(line).toContainText('from 6 earlier runs');
  expect(Date.now() - start).toBeLessThan(54 * SECOND);
});

test('a run of a type with too little history says so', async ({ page, request }) => {
  const type = uniqueId('novel_type').replace(/-/g, '_');
  const id = uniqueId('forecast-novel');
  await push(request, [
    workflowStarted(id, { workflow_type: type }),
    { type: 'step_started', workflow_id: id, at: at(Date.now()), step_number: 1, name: 'first' },
  ]);
  await page.goto(`/orchestration/workflows/${id}`);
  await expect(page.getByTestId('forecast-line')).toContainText('too little history', {
    timeout: 20_000,
  });
});
