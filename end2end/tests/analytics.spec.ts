// The analytics page against figures this test computes itself, from the same runs, read
// through the list API.
import { APIRequestContext } from '@playwright/test';
import { expect, test } from '../support/test';
import { AnalyticsPage } from '../support/analytics-page';
import { startWorkflow, waitForStatus } from '../support/engine';

const API = '/api/platform/orchestration';
const FAILED = ['FAILED', 'COMPENSATION_FAILED', 'TIMED_OUT', 'TERMINATED'];

async function openBuiltinRuns(request: APIRequestContext): Promise<number> {
  let open = 0;
  for (const tab of ['active', 'pending']) {
    const response = await request.get(`${API}/workflows?engine=builtin&tab=${tab}&limit=1`);
    open += (await response.json()).total;
  }
  return open;
}

/** Every run that ended in the last 24 hours, page by page. */
async function endedToday(request: APIRequestContext): Promise<any[]> {
  const since = Date.now() - 24 * 3600 * 1000;
  const rows: any[] = [];
  let cursor = '';
  do {
    const response = await request.get(`${API}/workflows?limit=500${cursor ? `&cursor=${cursor}` : ''}`);
    const page = await response.json();
    rows.push(...page.workflows);
    cursor = page.next_cursor ?? '';
  } while (cursor);
  return rows.filter((w) => w.completed_at && Date.parse(w.completed_at) >= since);
}

test('the analytics page shows what the runs add up to', async ({ page, request }) => {
  const failing = await startWorkflow(request, 'e2e_failing');
  const passing = await startWorkflow(request, 'e2e_monitor');
  await waitForStatus(request, failing, 'FAILED');
  await waitForStatus(request, passing, 'COMPLETED');
  // Built-in runs end by themselves; the figures are compared once none is open.
  await expect.poll(() => openBuiltinRuns(request), { timeout: 30_000 }).toBe(0);

  const ended = await endedToday(request);
  const failed = ended.filter((w) => FAILED.includes(w.status)).length;
  const withTarget = ended.filter((w) => w.sla_target_seconds != null);
  const breached = withTarget.filter((w) => w.sla_status === 'breached').length;
  const monitors = ended.filter((w) => w.type === 'e2e_monitor');
  const meanMonitor = monitors.reduce((sum, w) => sum + w.duration_seconds, 0) / monitors.length;

  const analytics = new AnalyticsPage(page);
  await analytics.goto('?period=24h');
  await expect(analytics.runsEnded()).toHaveText(`${ended.length} runs ended`);
  await expect(analytics.failureOverall()).toHaveText(
    `${Math.round((failed * 100) / ended.length)}%`,
  );
  await expect(analytics.slaPercent()).toHaveText(
    `${Math.round(((withTarget.length - breached) * 100) / withTarget.length)}%`,
  );
  await expect(analytics.averageDuration('e2e_monitor')).toHaveAttribute(
    'data-seconds',
    String(Math.round(meanMonitor)),
  );
  // The table holds the ten slowest steps of every run that ended: the suite's slowest
  // are e2e_monitor's (3 s each), whatever other specs' engines (the reference engine's
  // 1 s steps) added.
  await expect(analytics.slowestSteps()).toContainText('extract');
  await expect(analytics.retryOverall()).toContainText('% of step runs needed a retry');

  await analytics.period('7d').click();
  await expect(page).toHaveURL(/period=7d/);
  await expect(analytics.runsEnded()).toHaveText(`${ended.length} runs ended`);
});

test('an unknown period is refused', async ({ page, request }) => {
  const response = await request.get(`${API}/analytics?period=1y`);
  expect(response.status()).toBe(400);
  const analytics = new AnalyticsPage(page);
  await analytics.goto('?period=1y');
  await expect(analytics.alert()).toContainText('period "1y" must be 1h, 24h or 7d');
});

test('a list filtered by dates links to the analytics of the same dates', async ({ page }) => {
  const today = new Date().toISOString().slice(0, 10);
  const analytics = new AnalyticsPage(page);
  await page.goto(`/orchestration?from=${today}&to=${today}`);
  await page.getByTestId('range-analytics').click();
  await expect(page).toHaveURL(/\/orchestration\/analytics\?from=/);
  await expect(analytics.range()).toContainText(`From ${today} 00:00`);
});
