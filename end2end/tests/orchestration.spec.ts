// The orchestration list: server-rendered from the store, hydrated, and updated live
// from events a custom engine pushes through the ingest endpoint.
import { WebSocketRoute } from '@playwright/test';
import { expect, test } from '../support/test';
import { OrchestrationPage } from '../support/orchestration-page';
import { push, stepCompleted, stepStarted, uniqueId, workflowStarted } from '../support/ingest';

test('the list shows a pushed workflow with its progress, rendered by the server', async ({
  page,
  request,
}) => {
  const id = uniqueId('sync-wf');
  await push(request, [
    workflowStarted(id),
    stepStarted(id, 1, 'extract'),
    stepCompleted(id, 1),
    stepStarted(id, 2, 'transform'),
  ]);

  const list = new OrchestrationPage(page);
  await list.goto();
  await expect(list.row(id)).toBeVisible();
  await expect(list.progressText(id)).toHaveText('2/3 (67%)');
  await expect(list.status(id)).toContainText('RUNNING');
  await expect(list.row(id)).toContainText('custom:e2e-engine');
  await expect(list.row(id)).toContainText('e2e@example.com');
});

test('tabs are links that reproduce the view', async ({ page, request }) => {
  const running = uniqueId('filter-running');
  const done = uniqueId('filter-done');
  await push(request, [
    workflowStarted(running),
    workflowStarted(done, { total_steps: 1 }),
    stepStarted(done, 1, 'only'),
    stepCompleted(done, 1),
    {
      type: 'workflow_status_changed',
      workflow_id: done,
      at: new Date().toISOString(),
      status: 'COMPLETED',
    },
  ]);

  const list = new OrchestrationPage(page);
  await list.goto();
  await page.locator('a[data-tab="completed"]').click();
  await expect(page).toHaveURL(/tab=completed/);
  await expect(list.row(done)).toBeVisible();
  await expect(list.progressText(done)).toHaveText('1/1 (100%)');
  await expect(list.row(running)).toHaveCount(0);
});

test('what a workflow produced is shown as text, never as HTML', async ({ page, request }) => {
  const id = uniqueId('xss-wf');
  const hostile = '<img src=x onerror="document.body.dataset.pwned=1">';
  await push(request, [workflowStarted(id, { triggered_by: hostile })]);

  const list = new OrchestrationPage(page);
  await list.goto();
  await expect(list.row(id)).toContainText(hostile);
  await expect(list.row(id).locator('img')).toHaveCount(0);
  await expect(page.locator('body')).not.toHaveAttribute('data-pwned', '1');
});

test('an unknown page answers 404 with a way back', async ({ page }) => {
  const response = await page.goto('/no-such-page');
  expect(response?.status()).toBe(404);
  await expect(page.getByRole('link', { name: 'Back to the workflows' })).toBeVisible();
});

test.describe('live updates', () => {
  test.skip(({ javaScriptEnabled }) => !javaScriptEnabled, 'needs the hydrated app');

  test('a pushed workflow appears and its progress moves without a reload', async ({
    page,
    request,
  }) => {
    const list = new OrchestrationPage(page);
    await list.goto();
    await list.waitUntilLive();
    // Marks this document: a reload would lose the mark.
    await page.evaluate(() => ((window as unknown as { stillHere: boolean }).stillHere = true));

    const id = uniqueId('live-wf');
    await push(request, [workflowStarted(id), stepStarted(id, 1, 'extract')]);
    await expect(list.row(id)).toBeVisible();
    await expect(list.progressText(id)).toHaveText('1/3 (33%)');

    await push(request, [stepCompleted(id, 1), stepStarted(id, 2, 'transform')]);
    await expect(list.progressText(id)).toHaveText('2/3 (67%)');

    await push(request, [stepCompleted(id, 2), stepStarted(id, 3, 'load'), stepCompleted(id, 3)]);
    await push(request, [
      {
        type: 'workflow_status_changed',
        workflow_id: id,
        at: new Date().toISOString(),
        status: 'COMPLETED',
      },
    ]);
    await expect(list.progressText(id)).toHaveText('3/3 (100%)');
    await expect(list.status(id)).toContainText('COMPLETED');

    expect(await page.evaluate(() => (window as unknown as { stillHere?: boolean }).stillHere)).toBe(true);
  });

  test('a row leaves a filtered view when its status no longer matches', async ({
    page,
    request,
  }) => {
    const id = uniqueId('leaving-wf');
    await push(request, [workflowStarted(id, { total_steps: 1 }), stepStarted(id, 1, 'only')]);

    const list = new OrchestrationPage(page);
    await list.goto('?status=RUNNING');
    await list.waitUntilLive();
    await expect(list.row(id)).toBeVisible();

    await push(request, [
      {
        type: 'step_failed',
        workflow_id: id,
        at: new Date().toISOString(),
        step_number: 1,
        error: 'connection refused',
      },
      {
        type: 'workflow_status_changed',
        workflow_id: id,
        at: new Date().toISOString(),
        status: 'FAILED',
        reason: 'step 1 failed',
      },
    ]);
    await expect(list.row(id)).toHaveCount(0);
  });

  test('after the server drops the socket, the page resumes and misses nothing', async ({
    page,
    request,
  }) => {
    // The first socket goes through; the server then drops it, and the page's next
    // socket is held back until the test has made changes it must not miss.
    let release = () => {};
    const gate = new Promise<void>((resolve) => (release = resolve));
    let first: WebSocketRoute | undefined;
    await page.routeWebSocket(/\/ws\/orchestration$/, async (ws) => {
      if (!first) {
        first = ws.connectToServer();
        return;
      }
      const held: (string | Buffer)[] = [];
      ws.onMessage((message) => held.push(message));
      await gate;
      const server = ws.connectToServer();
      server.onMessage((message) => ws.send(message));
      ws.onMessage((message) => server.send(message));
      for (const message of held) server.send(message);
    });

    const id = uniqueId('gap-wf');
    await push(request, [workflowStarted(id), stepStarted(id, 1, 'extract')]);
    const list = new OrchestrationPage(page);
    await list.goto();
    await list.waitUntilLive();
    await expect(list.progressText(id)).toHaveText('1/3 (33%)');
    await page.evaluate(() => ((window as unknown as { stillHere: boolean }).stillHere = true));

    await first!.close();
    await push(request, [stepCompleted(id, 1), stepStarted(id, 2, 'transform')]);
    await push(request, [stepCompleted(id, 2), stepStarted(id, 3, 'load')]);
    release();

    await expect(list.progressText(id)).toHaveText('3/3 (100%)');
    await expect(list.connection()).toHaveAttribute('data-state', 'connected');
    expect(await page.evaluate(() => (window as unknown as { stillHere?: boolean }).stillHere)).toBe(true);
  });
});
