// Page object for /orchestration/analytics: what the runs of a period (or a date range)
// add up to.
import { Locator, Page } from '@playwright/test';

export class AnalyticsPage {
  constructor(private readonly page: Page) {}

  async goto(query = ''): Promise<void> {
    await this.page.goto(`/orchestration/analytics${query}`);
  }

  runsEnded(): Locator {
    return this.page.getByTestId('runs-ended');
  }

  failureOverall(): Locator {
    return this.page.getByTestId('failure-overall');
  }

  slaPercent(): Locator {
    return this.page.getByTestId('sla-percent');
  }

  /** The average duration of one workflow type's runs. */
  averageDuration(type: string): Locator {
    return this.page.locator(`li[data-type="${type}"] [data-testid="avg-duration"]`);
  }

  slowestSteps(): Locator {
    return this.page.getByTestId('slowest-steps');
  }

  retryOverall(): Locator {
    return this.page.getByTestId('retry-overall');
  }

  /** The link to another period: "1h", "24h" or "7d". */
  period(name: string): Locator {
    return this.page.locator(`a[data-period="${name}"]`);
  }

  /** The date range shown when the page is opened with from/to. */
  range(): Locator {
    return this.page.getByTestId('range');
  }

  /** The error shown for a query the server refuses. */
  alert(): Locator {
    return this.page.getByRole('alert');
  }
}
