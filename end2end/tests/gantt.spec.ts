// The Gantt tab of a run (issue 5): overlapping bars for parallel branches, a retried
// step's attempts, tooltips, opening a step from its bar, the critical path; and the
// server's SVG, which is the chart without JavaScript.
import { expect, test } from '../support/test';
import { startWorkflow, waitForStatus, waitForStep, workflowDetail } from '../support/engine';
import { GanttPage } from '../support/gantt-page';

const API = '/api/platform/orchestration';

test.describe('Gantt chart on the canvas', () => {
  test.skip(({ javaScriptEnabled }) => !javaScriptEnabled, 'the canvas needs the hydrated app');

  test('parallel branches overlap, retries show their attempts, the critical path is marked', async ({
    page,
    request,
  }) => {
    const id = await startWorkflow(request, 'e2e_gantt');
    await waitForStatus(request, id, 'COMPLETED');
    const detail = await workflowDetail(request, id);
    const step = (n: number) => detail.execution.steps.find((s: any) => s.step_number === n);
    // The run really had its branches overlap and its retry (the chart must show it).
    expect(Date.parse(step(2).started_at)).toBeLessThan(Date.parse(step(3).completed_at));
    expect(step(4).attempts).toHaveLength(2);

    const gantt = new GanttPage(page);
    await gantt.goto(id);
    const canvas = gantt.canvas();
    await expect(canvas).toBeVisible();
    await expect(canvas).toHaveAttribute('data-rows', '5');

    // Branches: "email" (2) and "provision" (3) overlap in time, on different rows.
    const email = await gantt.box(2);
    const provision = await gantt.box(3);
    expect(email.x).toBeLessThan(provision.x + provision.width);
    expect(provision.x).toBeLessThan(email.x + email.width);
    expect(email.y).not.toBe(provision.y);
    // Sequential: "notify" starts after "configure" ends.
    const configured = await gantt.box(4, 2);
    expect((await gantt.box(5)).x).toBeGreaterThanOrEqual(configured.x + configured.width - 1);

    // The retried step: two attempts, the first red, the second green, a wait between.
    await expect(gantt.bars(4)).toHaveCount(2);
    await expect(gantt.bars(4).nth(0)).toHaveAttribute('data-tone', 'failed');
    await expect(gantt.bars(4).nth(1)).toHaveAttribute('data-tone', 'succeeded');
    const first = await gantt.box(4, 1);
    expect(configured.x).toBeGreaterThan(first.x + first.width);

    // The canvas really painted the bars in their colours under the links.
    const colour = async (b: { x: number; y: number; width: number; height: number }) => {
      const origin = (await canvas.boundingBox())!;
      return canvas.evaluate(
        (el: HTMLCanvasElement, [x, y]) => {
          const ratio = el.width / el.getBoundingClientRect().width;
          return Array.from(el.getContext('2d')!.getImageData(Math.round(x * ratio), Math.round(y * ratio), 1, 1).data.slice(0, 3));
        },
        [b.x + b.width / 2 - origin.x, b.y + b.height / 2 - origin.y],
      );
    };
    expect(await colour(first)).toEqual([220, 38, 38]);
    expect(await colour(configured)).toEqual([22, 163, 74]);

    // The critical path: prepare → provision → configure → notify; email is off it.
    await expect(gantt.criticalPath()).toHaveText('Critical path: step 1 → 3 → 4 → 5');
    for (const n of [1, 3, 4, 5]) {
      await expect(gantt.bars(n).last()).toHaveAttribute('data-critical', 'true');
    }
    await expect(gantt.bars(2)).toHaveAttribute('data-critical', 'false');

    // Hover: the tooltip tells the attempt and its error.
    await gantt.bars(4).nth(0).hover();
    const tooltip = gantt.tooltip();
    await expect(tooltip).toContainText('Step 4: configure');
    await expect(tooltip).toContainText('Attempt 1 · failed (attempt 1 of 2)');
    await expect(tooltip).toContainText('Error: config service timed out');
    await expect(tooltip).toContainText('On the critical path');

    // Click: the step opens below the chart with its attempts.
    await gantt.bars(3).click();
    const opened = gantt.openedStep();
    await expect(opened.locator('li.step')).toHaveAttribute('data-step', '3');
    await expect(opened).toContainText('Step 3: provision');
    await expect(opened.locator('table.attempts tbody tr')).toHaveCount(1);

    await expect(gantt.summary()).toHaveText(/^SLA target 10:00 • Took \d+(\.\d)?s • within by 9:5\d$/);
  });

  test('a running bar grows live; cancelling greys it and the rollback shows in yellow', async ({
    page,
    request,
  }) => {
    // e2e_deploy's third step waits until it is cancelled.
    const id = await startWorkflow(request, 'e2e_deploy');
    await waitForStep(request, id, 3, 'RUNNING');
    const gantt = new GanttPage(page);
    await gantt.goto(id);
    await expect(gantt.canvas()).toBeVisible();
    await expect(gantt.connection()).toHaveAttribute('data-state', 'connected');
    const running = gantt.bars(3);
    await expect(running).toHaveAttribute('data-tone', 'running');
    // Its bar reaches the present and its time so far counts up with the clock.
    const soFar = async () => (await running.getAttribute('aria-label'))?.match(/took (\S+) so far/)?.[1];
    const first = await soFar();
    expect(first).toBeTruthy();
    await expect.poll(soFar).not.toBe(first);

    const cancel = await request.post(`${API}/workflows/${id}/cancel`, { data: { reason: 'e2e gantt' } });
    expect(cancel.status(), await cancel.text()).toBeLessThan(300);
    await expect(running).toHaveAttribute('data-tone', 'cancelled');
    // The two compensations (C1 undoes step 2, C2 step 1) appear live, in yellow.
    await expect(gantt.compensationBars()).toHaveCount(2, { timeout: 15_000 });
    await waitForStatus(request, id, 'CANCELLED');
  });
});

test('without JavaScript the Gantt tab shows the server SVG, whose bars link to their steps', async ({
  page,
  request,
  javaScriptEnabled,
}) => {
  const id = await startWorkflow(request, 'e2e_gantt');
  await waitForStatus(request, id, 'COMPLETED');

  const svg = await request.get(`${API}/workflows/${id}/gantt.svg`);
  expect(svg.status()).toBe(200);
  expect(svg.headers()['content-type']).toContain('image/svg+xml');
  const text = await svg.text();
  // One link per attempt: 5 steps, "configure" twice.
  expect(text.match(/<a href=/g)).toHaveLength(6);
  expect(text).toContain(`href="/orchestration/workflows/${id}?step=3#step-3"`);
  expect(text).toMatch(/data-step="4" data-attempt="1" data-tone="failed" data-critical="true"/);
  expect(text).toMatch(/data-step="2" data-attempt="1" data-tone="succeeded" data-critical="false"/);

  const download = await request.get(`${API}/workflows/${id}/gantt.svg?download=1`);
  expect(download.headers()['content-disposition']).toBe(`attachment; filename="${id}-gantt.svg"`);
  expect((await request.get(`${API}/workflows/${id}/gantt.svg?width=5`)).status()).toBe(400);
  expect((await request.get(`${API}/workflows/nope-nope/gantt.svg`)).status()).toBe(404);

  const gantt = new GanttPage(page);
  await gantt.goto(id);
  if (javaScriptEnabled) {
    // The canvas takes over from the server's SVG.
    await expect(gantt.canvas()).toBeVisible();
    await expect(gantt.serverSvg()).toHaveCount(0);
  } else {
    await expect(gantt.serverSvg()).toHaveAttribute('data', `${API}/workflows/${id}/gantt.svg?width=1100&rows=200`);
    // The page may embed it (its policy allows our own objects, the SVG's allows our
    // pages to frame it), and it is really shown: its bars are there to hover and click.
    await expect.poll(() => page.frames().some((frame) => frame.url().includes('/gantt.svg'))).toBe(true);
    const shown = page.frames().find((frame) => frame.url().includes('/gantt.svg'))!;
    await expect(shown.locator('a.bar')).toHaveCount(6);
  }
  // The link a bar leads to opens that step on the timeline, also without JavaScript.
  await page.goto(`/orchestration/workflows/${id}?step=3#step-3`);
  await expect(page.locator('li.step[data-step="3"] details')).toHaveAttribute('open', '');
});
