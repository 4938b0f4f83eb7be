// What a run waits for (issue 20, part 5): a waiting step says why (a timer, its retry
// backoff, a signal, a free worker, a person) and for how long, counting down to when the
// engine said it ends, in the timeline and the Gantt chart; steps still to come are greyed.
import { expect, test } from '../support/test';
import { push, runClock, uniqueId, workflowStarted } from '../support/ingest';

test('a waiting step says why and for how long; steps to come are greyed', async ({ page, request, javaScriptEnabled }) => {
  const id = uniqueId('waiting');
  const { at, step } = runClock(id, Date.now());
  await push(request, [
    workflowStarted(id, { at: at(-120), total_steps: 4 }),
    step('step_scheduled', 2, -120, { name: 'fetch', retry_policy: { max_attempts: 3, delays_seconds: [600, 900] } }),
    step('step_scheduled', 4, -120, { name: 'publish' }),
    step('step_started', 1, -120, { name: 'nap' }),
    step('step_waiting', 1, -60, { reason: 'timer', until: at(300), detail: 'until the report window opens' }),
    step('step_started', 2, -30),
    step('step_attempt_failed', 2, -10, { error: 'timeout' }),
    step('step_started', 3, -5, { name: 'approve' }),
    step('step_waiting', 3, -5, { reason: 'human_input', detail: '<b>finance</b> approves' }),
  ]);

  await page.goto(`/orchestration/workflows/${id}`);
  const waiting = (n: number) => page.locator(`li.step[data-step="${n}"] [data-testid="step-waiting"]`);
  // A timer until a known time: how long is left, and until when.
  await expect(waiting(1)).toHaveAttribute('data-reason', 'timer');
  await expect(waiting(1)).toContainText(/waiting for a timer · [45]:\d\d left \(until \d\d:\d\d:\d\d/);
  await expect(waiting(1)).toContainText('until the report window opens');
  // A failed attempt: its retry backoff, as long as its retry policy says (10 minutes).
  await expect(waiting(2)).toHaveAttribute('data-reason', 'retry_backoff');
  await expect(waiting(2)).toContainText(/waiting for its retry backoff · 9:\d\d left/);
  // A person, since when; the engine's words are text, never markup.
  await expect(waiting(3)).toContainText(/waiting for a person · for \d+s/);
  await expect(waiting(3)).toContainText('<b>finance</b> approves');
  // The step still to come is greyed; one running is not.
  const border = (n: number) =>
    page.locator(`li.step[data-step="${n}"]`).evaluate((li) => getComputedStyle(li).borderTopStyle);
  expect(await border(4)).toBe('dashed');
  expect(await border(3)).toBe('solid');
  await expect(page.locator('li.step[data-step="4"] [data-testid="step-waiting"]')).toHaveCount(0);

  if (javaScriptEnabled) {
    // The countdown moves with the clock.
    const left = async () => (await waiting(1).locator('.waiting-time').textContent())!;
    const first = await left();
    await expect.poll(left).not.toBe(first);
    // The Gantt chart's bar says it too (its hover text).
    await page.goto(`/orchestration/workflows/${id}?view=gantt`);
    await expect(page.locator('a.gantt-hit[data-step="1"]')).toHaveAttribute('aria-label', /Waiting for a timer/);
  }

  // It started: the wait is over.
  await push(request, [step('step_started', 2, 1)]);
  await page.goto(`/orchestration/workflows/${id}`);
  await expect(waiting(2)).toHaveCount(0);
  await expect(waiting(1)).toHaveCount(1);
});
