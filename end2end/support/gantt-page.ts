// Page object for /orchestration/workflows/:id?view=gantt: the Gantt tab of a run (the
// canvas chart, or without JavaScript the server's SVG), its tooltip and the opened step.
import { Locator, Page, expect } from '@playwright/test';

export class GanttPage {
  constructor(private readonly page: Page) {}

  async goto(id: string): Promise<void> {
    await this.page.goto(`/orchestration/workflows/${id}?view=gantt`);
  }

  canvas(): Locator {
    return this.page.getByTestId('gantt-canvas');
  }

  /** The server's SVG chart, embedded when there is no JavaScript. */
  serverSvg(): Locator {
    return this.page.locator('object.gantt-svg');
  }

  /** The bar links of step `n` (one per attempt), over the canvas or inside the SVG. */
  bars(n: number): Locator {
    return this.page.locator(`a.gantt-hit[data-step="${n}"]`);
  }

  /** The bar link of one attempt of step `n`. */
  bar(n: number, attempt = 1): Locator {
    return this.page.locator(`a.gantt-hit[data-step="${n}"][data-attempt="${attempt}"]`);
  }

  /** The bar links of the compensations (shown in yellow). */
  compensationBars(): Locator {
    return this.page.locator('a.gantt-hit[data-tone="compensation"]');
  }

  /** Where attempt `attempt` of step `n` is drawn, once its bar is shown. */
  async box(n: number, attempt = 1): Promise<{ x: number; y: number; width: number; height: number }> {
    const bar = this.bar(n, attempt);
    // boundingBox() does not wait: the links are laid out again on every repaint (a live
    // re-read, hydration), so wait until this one is shown.
    // A repaint between the two (a forecast renewed live, say) takes the link away for a
    // moment: ask for its box until it has one.
    await expect(bar, `bar of step ${n} attempt ${attempt}`).toBeVisible();
    let found: { x: number; y: number; width: number; height: number } | null = null;
    await expect
      .poll(async () => (found = await bar.boundingBox()), {
        message: `bar of step ${n} attempt ${attempt}`,
      })
      .not.toBeNull();
    return found!;
  }

  /** The critical path, in words. */
  criticalPath(): Locator {
    return this.page.getByTestId('gantt-critical');
  }

  tooltip(): Locator {
    return this.page.getByTestId('gantt-tooltip');
  }

  /** The step opened below the chart by clicking its bar. */
  openedStep(): Locator {
    return this.page.getByTestId('gantt-step');
  }

  /** The SLA line under the chart (target, time taken, margin). */
  summary(): Locator {
    return this.page.getByTestId('gantt-summary');
  }

  connection(): Locator {
    return this.page.locator('.connection');
  }
}
