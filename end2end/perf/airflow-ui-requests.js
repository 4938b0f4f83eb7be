// Counts the requests Airflow's own UI sends to its API server with one page open, in
// Chromium, to set beside what Stepline sends while following the same Airflow
// (server/benches/airflow_follow.rs). Signs in through the UI's own form, opens a DAG's
// grid (the page an operator keeps open to watch runs), and counts every request the page
// makes until it has refreshed its grid AIRFLOW_UI_REFRESHES times (default 20, a minute at
// Airflow's 3 s refresh), per second of that time.
// Usage (Airflow started by scripts/airflow.sh, its env sourced, a run in progress):
//   AIRFLOW_UI_DAG=stepline_long_running node end2end/perf/airflow-ui-requests.js
const { chromium, expect } = require('@playwright/test');

function launchChromium() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu'],
  });
}

async function main() {
  const base = process.env.STEPLINE_AIRFLOW_URL;
  if (!base) throw new Error('STEPLINE_AIRFLOW_URL: start Airflow with scripts/airflow.sh and source its env');
  const dag = process.env.AIRFLOW_UI_DAG ?? 'stepline_long_running';
  const refreshes = Number(process.env.AIRFLOW_UI_REFRESHES ?? 20);
  const browser = await launchChromium();
  try {
    const page = await browser.newPage();
    await page.goto(`${base}/`);
    await page.getByLabel(/username/i).fill(process.env.STEPLINE_AIRFLOW_USERNAME ?? 'admin');
    await page.getByLabel(/password/i).fill(process.env.STEPLINE_AIRFLOW_PASSWORD ?? 'admin');
    await Promise.all([page.waitForURL((url) => !url.pathname.includes('login'), { timeout: 30_000 }), page.keyboard.press('Enter')]);
    await page.goto(`${base}/dags/${dag}`);
    await page.waitForLoadState('networkidle');
    const requests = [];
    const began = Date.now();
    page.on('request', (request) => {
      const url = new URL(request.url());
      if (url.origin === new URL(base).origin) requests.push(`${request.method()} ${url.pathname}`);
    });
    const gridRefreshes = () => requests.filter((r) => r.startsWith(`GET /ui/grid/ti_summaries/`)).length;
    // The page refreshes only while a run is in progress: start one before measuring.
    await expect.poll(gridRefreshes, { timeout: refreshes * 30_000 }).toBeGreaterThanOrEqual(refreshes);
    const seconds = (Date.now() - began) / 1000;
    const byPath = {};
    for (const r of requests) {
      const key = r.replace(/\/dagRuns\/[^/]+/, '/dagRuns/{run}');
      byPath[key] = (byPath[key] ?? 0) + 1;
    }
    console.log(`Airflow UI, DAG ${dag} grid open for ${seconds.toFixed(1)} s (${refreshes} grid refreshes): ${requests.length} requests = ${(requests.length / seconds).toFixed(1)}/s`);
    for (const [path, count] of Object.entries(byPath).sort((a, b) => b[1] - a[1]).slice(0, 15)) {
      console.log(`  ${count}\t${path}`);
    }
  } finally {
    await browser.close();
  }
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
