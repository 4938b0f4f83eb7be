// The console without a mouse (issue 20, part 3): open the list, search, open a run, expand
// a step and cancel the run with a reason, with the keyboard alone; `?` lists the
// shortcuts, `g` then `a` / `l` goes to analytics and back.
import { Page } from '@playwright/test';
import { expect, test } from '../support/test';
import { startWorkflow, waitForStep } from '../support/engine';

test.skip(({ javaScriptEnabled }) => !javaScriptEnabled, 'the shortcuts need the hydrated app');

/** What has the focus: its tag, and the data-action or text that tells which it is. */
async function focused(page: Page): Promise<string> {
  return page.evaluate(() => {
    const element = document.activeElement as HTMLElement | null;
    if (!element) return '';
    return `${element.tagName.toLowerCase()} ${element.getAttribute('data-action') ?? element.textContent?.trim() ?? ''}`;
  });
}

test('open, search, open a run, expand a step and cancel it, keyboard only', async ({
  page,
  request,
}) => {
  const id = await startWorkflow(request, 'e2e_deploy');
  await waitForStep(request, id, 3, 'RUNNING');

  await page.goto('/orchestration');
  // Wait until the app listens (the live connection says it is live).
  await expect(page.locator('.connection')).toHaveAttribute('data-state', 'connected');

  await page.keyboard.press('?');
  const help = page.getByRole('dialog', { name: 'Keyboard shortcuts' });
  await expect(help).toContainText('Next / previous run or step');
  await page.keyboard.press('Escape');
  await expect(help).toBeHidden();

  await page.keyboard.press('/');
  await expect(page.locator('input[type=search]')).toBeFocused();
  await page.keyboard.type(id);
  await page.keyboard.press('Enter');
  await expect(page.locator('tr[data-workflow-id]')).toHaveCount(1);
  await expect(page.locator('.connection')).toHaveAttribute('data-state', 'connected');

  await page.keyboard.press('j');
  await expect(page.locator(`tr[data-workflow-id="${id}"] td.id a`)).toBeFocused();
  await page.keyboard.press('Enter');
  await expect(page).toHaveURL(new RegExp(`/orchestration/workflows/${id}$`));
  await expect(page.locator('li[data-step="3"]')).toHaveAttribute('data-status', 'RUNNING');

  // Through the steps: the third is the one still running; Enter opens it.
  for (let i = 0; i < 3; i++) await page.keyboard.press('j');
  const third = page.locator('li[data-step="3"] > details');
  await expect(third.locator('> summary')).toBeFocused();
  await page.keyboard.press('Enter');
  await expect(third).toHaveAttribute('open', '');
  await expect(third).toContainText('Calling partner API');

  // Tab to the cancel button (the actions come first on the page), then the dialog.
  await page.keyboard.press('Shift+Tab');
  for (let i = 0; i < 40 && (await focused(page)) !== 'button cancel'; i++) {
    await page.keyboard.press('Shift+Tab');
  }
  expect(await focused(page)).toBe('button cancel');
  await page.keyboard.press('Enter');
  const reason = page.getByRole('dialog').getByRole('textbox');
  await expect(reason).toBeFocused();
  await page.keyboard.press('ControlOrMeta+a');
  await page.keyboard.type('Cancelled from the keyboard');
  await page.keyboard.press('Enter');
  await expect(page.locator('[data-testid="status-reason"]')).toHaveText('Cancelled from the keyboard', {
    timeout: 15_000,
  });
  await expect(page.locator('.actions').first()).toBeVisible();

  // Away and back by the keyboard.
  await page.keyboard.press('g');
  await page.keyboard.press('a');
  await expect(page).toHaveURL(/\/orchestration\/analytics$/);
  await page.keyboard.press('g');
  await page.keyboard.press('l');
  await expect(page).toHaveURL(/\/orchestration$/);
});
