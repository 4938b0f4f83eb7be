// Counts the requests Airflow's own UI sends to its API server with one page open, in
// Chromium, to set beside what Stepline sends while following the same Airflow
// (server/benches/airflow_follow.rs). Signs in through the UI's own form, opens a DAG's
// grid (the page an operator keeps open to watch runs), and counts every request the page
// makes for AIRFLOW_UI_SECONDS (default 60) while it stays open.
// Usage (Airflow started by scripts/airflow.sh, its env sourced, runs in progress):
//   AIRFLOW_UI_DAG=stepline_long_running node end2end/perf/airflow-ui-requests.js
const { chromium } = require('@playwright/test');

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
  const seconds = Number(process.env.AIRFLOW_UI_SECONDS ?? 60);
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
    page.on('request', (request) => {
      const url = new URL(request.url());
      if (url.origin === new URL(base).origin) requests.push(`${request.method()} ${url.pathname}`);
    });
    await page.waitForTimeout(seconds * 1000);
    const byPath = {};
    for (const r of requests) {
      const key = r.replace(/\/dagRuns\/[^/]+/, '/dagRuns/{run}');
      byPath[key] = (byPath[key] ?? 0) + 1;
    }
    console.log(`Airflow UI, DAG ${dag} grid open for ${seconds} s: ${requests.length} requests = ${(requests.length / seconds).toFixed(1)}/s`);
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
