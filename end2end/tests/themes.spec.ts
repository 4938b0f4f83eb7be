// Themes and accessibility (issue 20, part 2 and the audit): light and dark follow the
// system until the viewer chooses, the choice is remembered (the server renders the next
// page in it), the Gantt chart — canvas and the server's SVG — and the badges follow it,
// there is a high-contrast theme; and axe-core finds no serious or critical violation on
// the list, a run, its Gantt chart and analytics in the light, dark and high-contrast themes.
import AxeBuilder from '@axe-core/playwright';
import { APIRequestContext, Page } from '@playwright/test';
import { expect, test } from '../support/test';
import { choose, Theme } from '../support/display';
import { push, runClock, uniqueId, workflowStarted } from '../support/ingest';

test.beforeEach(({}, testInfo) => {
  test.skip(testInfo.project.name !== 'hydrated', 'the choice is made, and axe runs, in the app');
});

/** The page's and the chart's background in each theme (style/main.css). */
const BACKGROUND: Record<Exclude<Theme, 'system'>, { page: string; chart: number[] }> = {
  light: { page: 'rgb(248, 250, 252)', chart: [255, 255, 255] },
  dark: { page: 'rgb(15, 23, 42)', chart: [17, 24, 39] },
  contrast: { page: 'rgb(0, 0, 0)', chart: [0, 0, 0] },
};

/** A run with a step in each state, a retry, a wait, a step to come and an SLA it is about to miss. */
async function pushRun(request: APIRequestContext, id: string): Promise<void> {
  const { at, step } = runClock(id, Date.now() - 9 * 60_000);
  await push(request, [
    workflowStarted(id, { at: at(0), total_steps: 5, sla_target_seconds: 590 }),
    step('step_started', 1, 1, { name: 'provision' }),
    step('step_completed', 1, 60),
    step('step_started', 2, 61, { name: 'configure' }),
    step('step_attempt_failed', 2, 90, { error: 'timeout' }),
    step('step_started', 2, 100, { name: 'configure' }),
    step('step_completed', 2, 200),
    step('step_started', 3, 201, { name: 'notify' }),
    step('step_failed', 3, 300, { error: 'mail server refused' }),
    step('step_started', 4, 301, { name: 'load' }),
    step('step_waiting', 4, 302, { reason: 'signal', detail: 'the warehouse says it is ready' }),
    step('step_scheduled', 5, 302, { name: 'archive' }),
  ]);
}

async function backgroundOf(page: Page): Promise<string> {
  return page.evaluate(() => getComputedStyle(document.body).backgroundColor);
}

/** The colour of the chart's top-left corner (the axis' background), as painted. */
async function chartCorner(page: Page): Promise<number[]> {
  return page.getByTestId('gantt-canvas').evaluate((canvas) => {
    const pixel = (canvas as HTMLCanvasElement).getContext('2d')!.getImageData(2, 2, 1, 1).data;
    return [pixel[0], pixel[1], pixel[2]];
  });
}

test('the theme follows the system until chosen, is remembered, and the Gantt chart follows it', async ({
  page,
  request,
}) => {
  const id = uniqueId('themes');
  await pushRun(request, id);

  await page.emulateMedia({ colorScheme: 'dark' });
  await page.goto('/orchestration');
  await expect.poll(() => backgroundOf(page)).toBe(BACKGROUND.dark.page);
  await page.emulateMedia({ colorScheme: 'light' });
  await expect.poll(() => backgroundOf(page)).toBe(BACKGROUND.light.page);

  // Chosen: dark while the system is light, and still dark when the server renders the
  // next page (before any script runs).
  await expect(page.locator('.connection')).toHaveAttribute('data-state', 'connected');
  await choose(page, { theme: 'dark' });
  await expect.poll(() => backgroundOf(page)).toBe(BACKGROUND.dark.page);
  const served = await (await request.get('/orchestration', { headers: { Cookie: 'stepline_theme=dark' } })).text();
  expect(served).toMatch(/<html[^>]* data-theme="dark"/);
  await page.reload();
  await expect(page.locator('html')).toHaveAttribute('data-theme', 'dark');
  await expect.poll(() => backgroundOf(page)).toBe(BACKGROUND.dark.page);

  // The Gantt chart is painted in the theme's colours, and again when it changes.
  await page.goto(`/orchestration/workflows/${id}?view=gantt`);
  await expect(page.getByTestId('gantt-canvas')).toBeVisible();
  await expect.poll(() => chartCorner(page)).toEqual(BACKGROUND.dark.chart);
  await expect(page.locator('.connection')).toHaveAttribute('data-state', 'connected');
  for (const theme of ['light', 'contrast', 'dark'] as const) {
    await choose(page, { theme });
    await expect.poll(() => backgroundOf(page)).toBe(BACKGROUND[theme].page);
    await expect.poll(() => chartCorner(page)).toEqual(BACKGROUND[theme].chart);
  }
  // As the system: the chart is painted again when the system switches, nothing else
  // happening on the page.
  await choose(page, { theme: 'system' });
  await expect.poll(() => chartCorner(page)).toEqual(BACKGROUND.light.chart);
  await page.emulateMedia({ colorScheme: 'dark' });
  await expect.poll(() => chartCorner(page)).toEqual(BACKGROUND.dark.chart);
  await page.emulateMedia({ colorScheme: 'light' });
  await expect.poll(() => chartCorner(page)).toEqual(BACKGROUND.light.chart);
  await choose(page, { theme: 'dark' });

  // The server's SVG (the first paint, and all there is without JavaScript) takes the
  // same colours from the same stylesheet; a download stays light and self-contained.
  const svgUrl = `/api/platform/orchestration/workflows/${id}/gantt.svg`;
  await page.goto(svgUrl);
  const svgBackground = () =>
    page.evaluate(() => getComputedStyle(document.querySelector('svg > rect')!).fill);
  await expect.poll(svgBackground).toBe('rgb(17, 24, 39)');
  const download = await (await request.get(`${svgUrl}?download=1`)).text();
  expect(download).not.toContain('xml-stylesheet');
  expect(download).toContain('fill:var(--gantt-background,#FFFFFF)');
});

// One test per theme: each audits four pages, well within a test's usual time.
for (const theme of ['light', 'dark', 'contrast'] as const) {
  test(`axe-core finds no serious or critical violation in the ${theme} theme`, async ({ page, request }) => {
    const id = uniqueId(`axe-${theme}`);
    await pushRun(request, id);
    const pages = [
      '/orchestration',
      `/orchestration/workflows/${id}`,
      `/orchestration/workflows/${id}?view=gantt`,
      '/orchestration/analytics',
    ];
    await page.context().addCookies([
      { name: 'stepline_theme', value: theme, domain: '127.0.0.1', path: '/' },
    ]);
    const found: string[] = [];
    for (const path of pages) {
      await page.goto(path);
      await expect(page.locator('html')).toHaveAttribute('data-theme', theme);
      await expect(page.locator('.connection')).toHaveAttribute('data-state', 'connected');
      if (path.includes('gantt')) await expect(page.getByTestId('gantt-canvas')).toBeVisible();
      const results = await new AxeBuilder({ page })
        .withTags(['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa'])
        .analyze();
      for (const violation of results.violations) {
        if (violation.impact === 'serious' || violation.impact === 'critical') {
          const where = violation.nodes.slice(0, 3).map((node) => node.target.join(' ')).join('; ');
          found.push(`${theme} ${path}: ${violation.id} (${violation.impact}) at ${where}`);
        }
      }
    }
    expect(found, found.join('\n')).toEqual([]);
  });
}
