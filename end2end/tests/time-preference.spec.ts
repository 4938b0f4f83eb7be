// Times as the viewer chose (issue 20, part 4): relative ("3 min ago") or a date and time,
// in the browser's zone or UTC, chosen once in the header and used by every page — the
// list, a run (its start, attempts, forecast), the Gantt chart's axis, analytics, the
// alert inbox and the audit log — and remembered on the next visit; hovering a time shows
// it the other way. The browser is put in Kathmandu (UTC+05:45, no daylight saving), so a
// local time can never pass for a UTC one.
import { APIRequestContext } from '@playwright/test';
import { expect, test } from '../support/test';
import { choose, expectTimesRead, TimeStyle, Zone } from '../support/display';
import { push, uniqueId, workflowStarted } from '../support/ingest';

const KATHMANDU = 5 * 60 + 45;

test.use({ timezoneId: 'Asia/Kathmandu' });

test.beforeEach(({}, testInfo) => {
  test.skip(testInfo.project.name !== 'hydrated', 'the choice is made in the app');
});

/** A run that began 2 h 5 min ago, with a retried step and a failed one; it failed (an alert). */
async function pushRun(request: APIRequestContext, id: string): Promise<Date> {
  const began = new Date(Date.now() - (2 * 60 + 5) * 60_000);
  const at = (seconds: number) => new Date(began.getTime() + seconds * 1000).toISOString();
  await push(request, [
    workflowStarted(id, { at: at(0), total_steps: 2, workflow_type: 'e2e_times' }),
    { type: 'step_started', workflow_id: id, at: at(1), step_number: 1, name: 'fetch' },
    { type: 'step_attempt_failed', workflow_id: id, at: at(30), step_number: 1, error: 'timeout' },
    { type: 'step_started', workflow_id: id, at: at(40), step_number: 1, name: 'fetch' },
    { type: 'step_completed', workflow_id: id, at: at(90), step_number: 1 },
    { type: 'step_started', workflow_id: id, at: at(95), step_number: 2, name: 'load' },
    { type: 'step_failed', workflow_id: id, at: at(300), step_number: 2, error: 'refused' },
    { type: 'workflow_status_changed', workflow_id: id, at: at(301), status: 'FAILED', reason: 'load refused' },
  ]);
  return began;
}

test('the time preference changes every displayed time on every page', async ({ page, request }) => {
  const id = uniqueId('times');
  await pushRun(request, id);
  // An entry in the audit log: the run's alert acknowledged.
  let alertIds: number[] = [];
  await expect
    .poll(async () => {
      const answer = await request.get(`/api/platform/orchestration/alerts?workflow_id=${id}`);
      alertIds = ((await answer.json()).alerts ?? []).map((alert: { id: number }) => alert.id);
      return alertIds.length;
    })
    .toBeGreaterThan(0);
  const acknowledged = await request.post(`/api/platform/orchestration/alerts/${alertIds[0]}/acknowledge`);
  expect(acknowledged.status(), await acknowledged.text()).toBeLessThan(300);

  const pages: { path: string; least: number; before?: () => Promise<void> }[] = [
    { path: `/orchestration?q=${id}`, least: 1 },
    {
      path: `/orchestration/workflows/${id}`,
      least: 3,
      before: async () => {
        // The attempts' start times show once the step is open.
        await page.locator('li.step[data-step="1"] summary').click();
        await expect(page.locator('li.step[data-step="1"] table.attempts')).toBeVisible();
      },
    },
    { path: '/orchestration/analytics?from=2026-01-01&to=2026-01-02', least: 2 },
    { path: '/orchestration/alerts', least: 1 },
    { path: '/orchestration/audit', least: 1 },
  ];

  await page.goto(`/orchestration?q=${id}`);
  await expect(page.locator('.connection')).toHaveAttribute('data-state', 'connected');
  const cases: [TimeStyle, Zone][] = [
    ['absolute', 'utc'],
    ['absolute', 'local'],
    ['relative', 'local'],
  ];
  for (const [style, zone] of cases) {
    // Chosen once, on one page: every other page (and a reload) reads the same.
    await choose(page, { style, zone });
    for (const { path, least, before } of pages) {
      await page.goto(path);
      await expect(page.locator('.connection')).toHaveAttribute('data-state', 'connected');
      await before?.();
      await expectTimesRead(page, style, zone, KATHMANDU, least);
    }
    // The Gantt chart's axis: times of day in the zone, or the time since the run began.
    await page.goto(`/orchestration/workflows/${id}?view=gantt`);
    const canvas = page.getByTestId('gantt-canvas');
    if (style === 'relative') {
      await expect(canvas).toHaveAttribute('data-axis', /^0:00 \| /);
    } else {
      await expect(canvas).toHaveAttribute('data-axis', /^\d\d:\d\d:\d\d \| \d\d:\d\d:\d\d/);
    }
  }

  // The axis' first tick in both zones: the same instant, 5 h 45 min apart.
  const firstTick = async (zone: Zone) => {
    await choose(page, { style: 'absolute', zone });
    const canvas = page.getByTestId('gantt-canvas');
    await expect(canvas).toHaveAttribute('data-axis', /\d\d:\d\d:\d\d/);
    const axis = (await canvas.getAttribute('data-axis'))!;
    const [h, m, s] = axis.split(' | ')[0].split(':').map(Number);
    return h * 3600 + m * 60 + s;
  };
  const utc = await firstTick('utc');
  await expect.poll(async () => ((await firstTick('local')) - utc + 86_400) % 86_400).toBe(KATHMANDU * 60);
});

test('an absolute time says how long ago as of the moment it is hovered', async ({ page, request }) => {
  const id = uniqueId('times-hover');
  await pushRun(request, id);
  // The page's clock is the test's: five minutes pass in an instant.
  await page.clock.install();
  await page.goto(`/orchestration/workflows/${id}`);
  await expect(page.locator('.connection')).toHaveAttribute('data-state', 'connected');
  await choose(page, { style: 'absolute', zone: 'utc' });
  const started = page.locator('time').first();
  await expect(started).toHaveAttribute('title', /^2 h 5 min ago • /);
  await page.clock.fastForward('05:00');
  await page.mouse.move(0, 0);
  await started.hover();
  await expect(started).toHaveAttribute('title', /^2 h 10 min ago • /);
});
