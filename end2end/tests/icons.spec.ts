// Icons that never depend on a font (issue 20, part 1): the list, a run's page with steps in
// every status and its actions, and the analytics page draw their icons as inline SVG, each
// with a box the browser really painted, and no text of the console is an emoji (this
// machine's Chromium has no emoji font, where an emoji is an empty box). A status is never
// told by its icon alone: its name is written beside it.
import { Page } from '@playwright/test';
import { expect, test } from '../support/test';
import { startWorkflow, waitForStatus } from '../support/engine';
import { now, push, uniqueId, workflowStarted } from '../support/ingest';

/** Emoji and pictographs, which need an emoji font (not arrows or punctuation). */
const EMOJI = /[\u{1F000}-\u{1FAFF}\u{2600}-\u{27BF}\u{2B00}-\u{2BFF}\u{FE0F}\u{23E9}-\u{23FA}]/u;

async function expectFontFreeIcons(page: Page, least: number): Promise<void> {
  const icons = page.locator('svg.icon');
  await expect.poll(() => icons.count()).toBeGreaterThanOrEqual(least);
  // Read in one go in the page: a live re-read may draw the page again between two reads
  // of the same icon.
  const drawn = await icons.evaluateAll((all) =>
    all
      .filter((svg) => svg.getClientRects().length > 0 && getComputedStyle(svg).visibility !== 'hidden')
      .map((svg) => {
        const box = svg.getBoundingClientRect();
        return {
          width: box.width,
          height: box.height,
          // Painted strokes, not an empty box: the icon's first stroke has a length.
          length: (svg.querySelector('path') as SVGPathElement).getTotalLength(),
          // Named, or beside the word that says the same (and hidden from screen readers).
          named: svg.getAttribute('aria-label') !== null || svg.getAttribute('aria-hidden') === 'true',
        };
      }),
  );
  expect(drawn.length).toBeGreaterThanOrEqual(least);
  drawn.forEach(({ width, height, length, named }, i) => {
    expect(width, `icon ${i} is drawn`).toBeGreaterThan(4);
    expect(height, `icon ${i} is drawn`).toBeGreaterThan(4);
    expect(length, `icon ${i} has strokes`).toBeGreaterThan(1);
    expect(named, `icon ${i} is named or decorative`).toBe(true);
  });
  const text = await page.locator('body').innerText();
  expect(text.match(EMOJI), 'no text of the console is an emoji').toBeNull();
}

test('every icon is drawn without an emoji font, on the list, a run and analytics', async ({
  page,
  request,
}) => {
  const id = uniqueId('icons');
  const step = (type: string, n: number, extra: Record<string, unknown> = {}) => ({
    type,
    workflow_id: id,
    at: now(),
    step_number: n,
    ...extra,
  });
  await push(request, [
    workflowStarted(id, { total_steps: 6 }),
    step('step_started', 1, { name: 'fetch' }),
    step('step_completed', 1),
    step('step_started', 2, { name: 'transform' }),
    step('step_attempt_failed', 2, { error: 'timeout' }),
    step('step_started', 3, { name: 'load' }),
    step('step_failed', 3, { error: 'refused' }),
    step('step_scheduled', 4, { name: 'notify' }),
    step('step_scheduled', 5, { name: 'archive' }),
    step('step_skipped', 5),
    step('step_started', 6, { name: 'audit' }),
    step('step_cancelled', 6, { reason: 'stopped' }),
  ]);

  await page.goto(`/orchestration?q=${id}`);
  await expect(page.getByText(id).first()).toBeVisible();
  const badge = page.locator('.badge.status-running').first();
  await expect(badge).toContainText('RUNNING');
  await expect(badge.locator('svg.icon')).toBeVisible();
  await expectFontFreeIcons(page, 1);

  await page.goto(`/orchestration/workflows/${id}`);
  await expect(page.locator('li[data-step]')).toHaveCount(6);
  // Each step's status has its icon and its name.
  for (const status of ['COMPLETED', 'RETRYING', 'FAILED', 'PENDING', 'SKIPPED', 'CANCELLED']) {
    const item = page.locator(`li[data-status="${status}"]`).first();
    await expect(item.locator('svg.icon').first()).toBeVisible();
    await expect(item.locator('.step-status')).toHaveText(status);
  }
  await expectFontFreeIcons(page, 8);

  // A built-in run's actions: each button an icon and its word.
  const builtin = await startWorkflow(request, 'e2e_gantt');
  await waitForStatus(request, builtin, 'COMPLETED');
  await page.goto(`/orchestration/workflows/${builtin}`);
  const clone = page.locator('.actions button[data-action="clone"]');
  await expect(clone).toHaveText(/Clone/);
  await expect(clone.locator('svg.icon')).toBeVisible();
  await expectFontFreeIcons(page, 3);

  await page.goto('/orchestration/analytics');
  await expect(page.getByRole('heading', { name: 'Workflow analytics' })).toBeVisible();
  await expectFontFreeIcons(page, 2);
});
