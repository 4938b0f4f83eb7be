// Measures how fast a run with a 2,000-way fan-out opens in Chromium against a real
// Stepline (its release build): its timeline (the fan-out summarised in one row) and its
// Gantt chart (one row for the fan-out), from navigation start — the browser's own clock —
// to the page being usable: hydrated, the fan-out's summary shown (timeline), the canvas
// painted (Gantt). Then opening the fan-out in each.
// Usage (after `cargo leptos build --release`):
//   STEPLINE_SERVER_BIN=$CARGO_TARGET_DIR/release/server STEPLINE_SITE_ROOT=$PWD/target/site \
//     node end2end/perf/fan-out-perf.js
const { quantile, startServer, post, launchChromium, API, newPage } = require('./stepline-server');
const { fanOutEvents } = require('./fan-out-run');

const WAYS = Number(process.env.FAN_OUT_WAYS ?? 2000);
const LOADS = 5;

/** Milliseconds from navigation start to now, by the page's clock. */
const sinceNavigation = (page) => page.evaluate(() => performance.now());

async function main() {
  const { server, base } = await startServer();
  const browser = await launchChromium();
  const id = `fan-out-perf-${WAYS}`;
  const timelineShown = [], timeline = [], timelineOpen = [], gantt = [], ganttOpen = [];
  try {
    const events = fanOutEvents(id, WAYS, Date.now() - 10 * 60_000);
    for (let i = 0; i < events.length; i += 1000) {
      await post(base, `${API}/events`, { source: 'perf', events: events.slice(i, i + 1000) });
    }
    for (let i = 0; i < LOADS; i++) {
      const page = await newPage(browser, { viewport: { width: 1400, height: 900 } });
      page.on('console', (m) => { if (m.type() === 'error') console.error('browser:', m.text()); });
      await page.goto(`${base}/orchestration/workflows/${id}`, { waitUntil: 'commit' });
      // Shown: the server's page with the summary; usable: the app has taken the page
      // over (its live connection is up, which it opens once hydrated).
      await page.locator('[data-testid="fan-out-summary"]').waitFor();
      timelineShown.push(await sinceNavigation(page));
      await page.locator('.connection[data-state="connected"]').waitFor();
      timeline.push(await sinceNavigation(page));
      const opened = await sinceNavigation(page);
      await page.locator('[data-testid="fan-out"] > details > summary').click();
      await page.locator('ol.fan-out-members > li.step >> nth=99').waitFor();
      timelineOpen.push((await sinceNavigation(page)) - opened);

      await page.goto(`${base}/orchestration/workflows/${id}?view=gantt`, { waitUntil: 'commit' });
      const canvas = page.locator('canvas.gantt-canvas[data-first-paint-at]');
      await canvas.waitFor();
      gantt.push(Number(await canvas.getAttribute('data-first-paint-at')));
      await page.locator('.connection[data-state="connected"]').waitFor();
      const rows = await canvas.getAttribute('data-rows');
      if (rows !== '3') throw new Error(`the chart shows ${rows} rows, expected 3`);
      const clicked = await sinceNavigation(page);
      await page.locator('a.gantt-hit[data-step="2"]').click();
      await page.locator(`canvas.gantt-canvas[data-rows="${WAYS + 2}"]`).waitFor();
      ganttOpen.push((await sinceNavigation(page)) - clicked);
      await page.close();
    }
  } finally {
    await browser.close();
    server.kill('SIGTERM');
  }
  const fmt = (values) =>
    `${quantile(values, 0.5).toFixed(0)} / ${Math.max(...values).toFixed(0)} ms (${values.map((v) => v.toFixed(0)).join(', ')})`;
  console.log(`${WAYS}-way fan-out (p50 / max of ${LOADS} page loads, each in a fresh browser context: nothing cached):`);
  console.log(`  timeline, navigation start to the summary shown: ${fmt(timelineShown)}`);
  console.log(`  timeline, navigation start to hydrated (live connection up): ${fmt(timeline)}`);
  console.log(`  timeline, opening the fan-out (its first 100 siblings): ${fmt(timelineOpen)}`);
  console.log(`  Gantt, navigation start to the first canvas paint: ${fmt(gantt)}`);
  console.log(`  Gantt, opening the fan-out (${WAYS + 2} rows): ${fmt(ganttOpen)}`);
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
