// The story's Flow 3 and Flow 4 on runs of the reference in-house engine
// (examples/inhouse-engine/engine.py), run here as its own process that pulls its
// commands from Stepline as source `e2e-reference` (declared by scripts/test.sh): the
// operator's click goes to the engine, and the page shows what the engine's own events
// then say.
import { request as playwrightRequest } from '@playwright/test';
import { expect, test } from '../support/test';
import { ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { freePort } from '../support/ports';
import { WorkflowPage } from '../support/workflow-page';

const SOURCE = 'e2e-reference';

let engine: ChildProcess | undefined;
let engineUrl = '';

test.describe('with the app hydrated', () => {
  test.skip(({ javaScriptEnabled }) => !javaScriptEnabled, 'one run of each flow is enough');

  test.beforeAll(async ({}, testInfo) => {
    if (testInfo.project.use.javaScriptEnabled === false) return;
    const baseURL = testInfo.project.use.baseURL!;
    const port = await freePort();
    const state = join(mkdtempSync(join(tmpdir(), 'stepline-reference-')), 'engine.json');
    engine = spawn(
      'python3',
      [
        '../examples/inhouse-engine/engine.py',
        ...['--stepline', baseURL, '--source', SOURCE, '--delivery', 'pull'],
        ...['--listen', `127.0.0.1:${port}`, '--state', state, '--step-seconds', '1'],
      ],
      { env: { ...process.env, STEPLINE_TOKEN: process.env.STEPLINE_E2E_TOKEN }, stdio: ['ignore', 'pipe', 'inherit'] },
    );
    const lines = createInterface({ input: engine.stdout! });
    engineUrl = await new Promise<string>((resolve, reject) => {
      engine!.once('exit', (code) => reject(new Error(`the reference engine exited with ${code}`)));
      lines.on('line', (line) => {
        if (line.startsWith('ready ')) resolve(line.slice('ready '.length));
      });
    });
  });

  test.afterAll(async () => {
    // Stopped by its PID, as every service the tests start.
    if (engine?.pid) process.kill(engine.pid, 'SIGTERM');
  });

  /** Starts a run of the engine's provision_tenant with `input`; its id. */
  async function startRun(input: Record<string, unknown>): Promise<string> {
    const api = await playwrightRequest.newContext();
    const response = await api.post(`${engineUrl}/runs`, { data: { workflow_type: 'provision_tenant', input } });
    expect(response.status()).toBe(201);
    const id = (await response.json()).workflow_id as string;
    await api.dispose();
    return id;
  }

  test('flow 3: a runaway run is cancelled; the engine rolls back what it completed', async ({ page }) => {
    // create_database runs away; create_bucket, beside it, completes.
    const id = await startRun({ step_seconds: { create_database: 120 } });
    const run = new WorkflowPage(page);
    await run.goto(id);
    await run.waitUntilLive();
    await expect(run.step(3)).toHaveAttribute('data-status', 'COMPLETED');
    await expect(run.step(2)).toHaveAttribute('data-status', 'RUNNING');

    await run.action('cancel').click();
    await page.getByRole('dialog').getByRole('textbox').fill('Runaway provisioning');
    await run.action('confirm-cancel').click();
    await expect(run.notice()).toContainText('not confirmed yet');
    await expect(run.status()).toContainText('CANCELLED');
    await expect(page.getByTestId('status-reason')).toHaveText('Runaway provisioning');
    await expect(run.step(2)).toHaveAttribute('data-status', 'CANCELLED');
    // Newest first: the bucket, then the capacity reserved before it.
    await expect(run.rollback().locator('li.step').first()).toContainText('delete_bucket');
    await expect(run.rollback().locator('li.step').nth(1)).toContainText('release_capacity');
    await expect(run.rollback().locator('li.step[data-status="COMPLETED"]')).toHaveCount(2);
    await expect(page.getByTestId('engine-command')).toContainText('carried out');
  });

  test('flow 4: a failed run is retried from the failed step and completes', async ({ page }) => {
    const id = await startRun({ fail: { charge_card: 3 }, step_seconds: { reserve_capacity: 0.2 } });
    const run = new WorkflowPage(page);
    await run.goto(id);
    await run.waitUntilLive();
    await expect(run.status()).toContainText('FAILED', { timeout: 20_000 });
    await run.expand(4);
    await expect(run.step(4).getByTestId('step-error')).toContainText('charge_card failed');
    await expect(run.step(4).locator('table.attempts tbody tr')).toHaveCount(3);

    await run.action('retry').click();
    await run.action('retry-failed-step').click();
    await expect(run.notice()).toContainText('not confirmed yet');
    await expect(run.status()).toContainText('COMPLETED', { timeout: 20_000 });
    await expect(run.step(4)).toHaveAttribute('data-status', 'COMPLETED');
    await expect(run.step(4).locator('table.attempts tbody tr')).toHaveCount(4);
    await expect(run.step(1).locator('table.attempts tbody tr')).toHaveCount(1);
    await expect(page.getByTestId('engine-command').first()).toContainText('carried out');
  });
});
