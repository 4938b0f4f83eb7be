// Page object for /orchestration: the workflow list.
import { Locator, Page, expect } from '@playwright/test';

export class OrchestrationPage {
  constructor(private readonly page: Page) {}

  async goto(query = ''): Promise<void> {
    await this.page.goto(`/orchestration${query}`);
  }

  row(workflowId: string): Locator {
    return this.page.locator(`tr[data-workflow-id="${workflowId}"]`);
  }

  progressText(workflowId: string): Locator {
    return this.row(workflowId).locator('.progress-text');
  }

  status(workflowId: string): Locator {
    return this.row(workflowId).locator('td.status');
  }

  connection(): Locator {
    return this.page.locator('.connection');
  }

  /** Waits until the app is hydrated and its live connection is subscribed. */
  async waitUntilLive(): Promise<void> {
    await expect(this.connection()).toHaveAttribute('data-state', 'connected');
  }
}
