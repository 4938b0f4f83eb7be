// Page object for /orchestration/workflows/:id: one run's header, actions and timeline.
import { Locator, Page, expect } from '@playwright/test';

export class WorkflowPage {
  constructor(private readonly page: Page) {}

  async goto(id: string): Promise<void> {
    await this.page.goto(`/orchestration/workflows/${id}`);
  }

  status(): Locator {
    return this.page.getByTestId('workflow-status');
  }

  step(number: number): Locator {
    return this.page.locator(`li.step[data-step="${number}"]`);
  }

  /** Opens a step's details (input, output, logs, attempts). */
  async expand(number: number): Promise<void> {
    const body = this.step(number).locator('.step-body');
    // A click before hydration opens the browser's own <details>, which hydration then
    // sets back to the page's state (closed): click again until it stays open.
    await expect(async () => {
      if (!(await body.isVisible())) {
        await this.step(number).locator('summary').click();
      }
      await expect(body).toBeVisible({ timeout: 2_000 });
    }).toPass({ timeout: 15_000 });
  }

  rollback(): Locator {
    return this.page.getByTestId('rollback');
  }

  action(name: string): Locator {
    return this.page.locator(`button[data-action="${name}"]`);
  }

  notice(): Locator {
    return this.page.getByTestId('notice');
  }

  async waitUntilLive(): Promise<void> {
    await expect(this.page.locator('.connection')).toHaveAttribute('data-state', 'connected');
  }
}
