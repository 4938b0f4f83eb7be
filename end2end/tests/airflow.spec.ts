// Airflow beside Temporal and the built-in engine (issue 15): the Stepline under test also
// follows the real Airflow that scripts/test.sh starts, with its fixture DAGs.
import { createHash } from 'node:crypto';
import { expect, test } from '../support/test';
import { startWorkflow, waitForStatus } from '../support/engine';
import { GanttPage } from '../support/gantt-page';
import { OrchestrationPage } from '../support/orchestration-page';
import { startInTemporal, statusIn, temporal } from '../support/temporal';
import { WorkflowPage } from '../support/workflow-page';

const airflow = process.env.STEPLINE_AIRFLOW_URL;

/** Triggers a fixture DAG through Airflow's own API; answers Stepline's id of the run. */
async function triggerInAirflow(dag: string): Promise<string> {
  const signIn = await fetch(`${airflow}/auth/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      username: process.env.STEPLINE_AIRFLOW_USERNAME,
      password: process.env.STEPLINE_AIRFLOW_PASSWORD,
    }),
  });
  expect(signIn.ok, await signIn.clone().text()).toBe(true);
  const { access_token: token } = await signIn.json();
  const response = await fetch(`${airflow}/api/v2/dags/${dag}/dagRuns`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify({ logical_date: null, conf: {} }),
  });
  expect(response.ok, await response.clone().text()).toBe(true);
  const { dag_run_id: runId } = await response.json();
  // Stepline's id ends with a hash of the run id (see airflow::SourceConfig::workflow_id).
  const run = createHash('sha256').update(runId as string).digest('hex').slice(0, 12);
  return `e2e:${dag}:${run}`;
}

test.describe('an Airflow source beside Temporal and the built-in engine', () => {
  test.skip(!airflow || !temporal, 'needs the Airflow and Temporal that scripts/test.sh starts');

  test('all three share the list; the Airflow run opens on its timeline and Gantt chart with its tries', async ({
    page,
    request,
    javaScriptEnabled,
  }) => {
    const fromAirflow = await triggerInAirflow('stepline_retry_recovers');
    const builtin = await startWorkflow(request, 'e2e_failing');
    const fromTemporal = await startInTemporal('SequentialWF', { steps: 2, step_ms: 100 });
    await expect.poll(() => statusIn(request, fromTemporal), { timeout: 20_000 }).toBe('COMPLETED');
    await waitForStatus(request, builtin, 'FAILED');
    // Two failed tries 2 s apart, a scheduler that takes its time on a busy machine.
    await expect.poll(() => statusIn(request, fromAirflow), { timeout: 90_000 }).toBe('COMPLETED');

    const list = new OrchestrationPage(page);
    await list.goto('?sort=newest');
    await expect(list.row(fromAirflow)).toBeVisible();
    await expect(list.row(fromTemporal)).toBeVisible();
    await expect(list.row(builtin)).toBeVisible();
    await expect(list.row(fromAirflow)).toContainText('airflow:e2e');
    await expect(list.row(fromAirflow)).toContainText('stepline_retry_recovers');
    await expect(list.row(fromTemporal)).toContainText('temporal:e2e:default');
    await expect(list.row(builtin)).toContainText('builtin');

    await list.row(fromAirflow).locator('a').first().click();
    const run = new WorkflowPage(page);
    await expect(run.status()).toContainText('COMPLETED');
    await expect(page.locator('li.step')).toHaveCount(2);
    await expect(run.step(1)).toContainText('flaky_fetch');
    await expect(run.step(2)).toContainText('publish');
    await run.expand(1);
    const attempts = run.step(1).locator('table.attempts tbody tr');
    await expect(attempts).toHaveCount(3);
    await expect(run.step(1)).toContainText('RuntimeError: upstream not ready (try 2)');
    // Airflow has no per-run pause, and says so by not offering one.
    await expect(run.action('pause')).toHaveCount(0);

    const gantt = new GanttPage(page);
    await gantt.goto(fromAirflow);
    if (javaScriptEnabled) {
      await expect(gantt.canvas()).toBeVisible();
      await expect(gantt.bars(1)).toHaveCount(3);
      await expect(gantt.bars(1).nth(0)).toHaveAttribute('data-tone', 'failed');
      await expect(gantt.bars(1).nth(2)).toHaveAttribute('data-tone', 'succeeded');
    } else {
      await expect(gantt.serverSvg()).toBeVisible();
    }
  });
});
