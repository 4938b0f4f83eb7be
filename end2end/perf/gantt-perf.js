// Measures the Gantt chart in Chromium against a real Stepline (its release build): for
// runs of 50, 1,000 and 10,000 steps (pushed as a custom engine would: sequential steps,
// every fifth one on a parallel branch, every ninth retried once), the time to lay the
// chart out and paint it on the canvas (the page records both on the canvas element), a
// repaint after scrolling to the middle, and the server's SVG rendering.
// Usage (after `cargo leptos build --release`):
//   STEPLINE_SERVER_BIN=$CARGO_TARGET_DIR/release/server STEPLINE_SITE_ROOT=$PWD/target/site \
//     node end2end/perf/gantt-perf.js
const { quantile, startServer, post, launchChromium, API, request, newPage } = require('./stepline-server');

const SIZES = (process.env.GANTT_SIZES ?? '50,1000,10000').split(',').map(Number);
const LOADS = 5;

/** Pushes a finished run of `steps` steps and returns its id. */
async function pushRun(base, steps) {
  const id = `gantt-perf-${steps}`;
  const t0 = Date.now() - steps * 300 - 60_000;
  const at = (ms) => new Date(t0 + ms).toISOString();
  const events = [{ type: 'workflow_started', workflow_id: id, at: at(0), workflow_type: 'bulk_load',
    total_steps: steps, sla_target_seconds: Math.round(steps * 0.28), triggered_by: 'perf' }];
  let clock = 0;
  for (let n = 1; n <= steps; n++) {
    // Every fifth step runs beside the one before it, on a branch.
    const parallel = n % 5 === 0;
    const start = parallel ? clock - 200 : clock;
    const branch = parallel ? `b${n}` : undefined;
    events.push({ type: 'step_started', workflow_id: id, at: at(start), step_number: n, name: `step_${n % 50}`, branch });
    let end = start + 150 + (n % 7) * 10;
    if (n % 9 === 0) {
      events.push({ type: 'step_attempt_failed', workflow_id: id, at: at(end), step_number: n, error: 'timeout' });
      events.push({ type: 'step_started', workflow_id: id, at: at(end + 50), step_number: n });
      end += 250;
    }
    events.push({ type: 'step_completed', workflow_id: id, at: at(end), step_number: n });
    if (!parallel) clock = end + 20;
  }
  events.push({ type: 'workflow_status_changed', workflow_id: id, at: at(clock), status: 'COMPLETED' });
  for (let i = 0; i < events.length; i += 1000) {
    await post(base, `${API}/events`, { source: 'perf', events: events.slice(i, i + 1000) });
  }
  return id;
}

async function main() {
  const { server, base } = await startServer();
  const browser = await launchChromium();
  const results = [];
  try {
    for (const steps of SIZES) {
      const id = await pushRun(base, steps);
      const svgTimes = [];
      let svgBytes = 0;
      for (let i = 0; i < LOADS; i++) {
        const started = performance.now();
        const response = await request(base, `${API}/workflows/${id}/gantt.svg`);
        svgBytes = (await response.text()).length;
        svgTimes.push(performance.now() - started);
      }
      const layout = [], paint = [], total = [], scrolled = [], painted = [];
      for (let i = 0; i < LOADS; i++) {
        const page = await newPage(browser, { viewport: { width: 1400, height: 900 } });
        page.on('console', (m) => { if (m.type() === 'error' || m.type() === 'warning') console.error('browser:', m.text()); });
        await page.goto(`${base}/orchestration/workflows/${id}?view=gantt`);
        const canvas = page.locator('canvas.gantt-canvas[data-paint-ms]');
        await canvas.waitFor({ timeout: 60_000 });
        // The page re-reads the run once its live connection is up (and redraws the chart
        // with it): measure once that has settled.
        await page.locator('.connection[data-state="connected"]').waitFor();
        await page.waitForLoadState('networkidle');
        const read = () => canvas.evaluate((el) => [Number(el.dataset.layoutMs), Number(el.dataset.paintMs), Number(el.dataset.rows)]);
        const [l, p, rows] = await read();
        if (rows !== steps) throw new Error(`canvas shows ${rows} rows, expected ${steps}`);
        layout.push(l);
        paint.push(p);
        total.push(l + p);
        painted.push(Number(await canvas.evaluate((el) => el.dataset.firstPaintAt)));
        // Scroll to the middle: only the rows now in view are painted.
        const paints = await canvas.evaluate((el) => Number(el.dataset.paints));
        await page.locator('.gantt-frame').evaluate((el) => { el.scrollTop = el.scrollHeight / 2; });
        await page.waitForFunction((before) => Number(document.querySelector('canvas.gantt-canvas').dataset.paints) > before, paints);
        scrolled.push(Number(await canvas.evaluate((el) => el.dataset.paintMs)));
        await page.close();
      }
      results.push({ steps, svgBytes, svgTimes, layout, paint, total, scrolled, painted });
    }
  } finally {
    await browser.close();
    server.kill('SIGTERM');
  }
  const fmt = (v) => v.toFixed(1);
  for (const r of results) {
    console.log(`${r.steps} steps (p50 / max of ${LOADS} page loads):`);
    console.log(`  layout ${fmt(quantile(r.layout, 0.5))} / ${fmt(Math.max(...r.layout))} ms, ` +
      `paint ${fmt(quantile(r.paint, 0.5))} / ${fmt(Math.max(...r.paint))} ms, ` +
      `layout + paint ${fmt(quantile(r.total, 0.5))} / ${fmt(Math.max(...r.total))} ms`);
    console.log(`  repaint after scrolling to the middle ${fmt(quantile(r.scrolled, 0.5))} / ${fmt(Math.max(...r.scrolled))} ms`);
    console.log(`  navigation start to first canvas paint ${fmt(quantile(r.painted, 0.5))} / ${fmt(Math.max(...r.painted))} ms`);
    console.log(`  server SVG ${fmt(quantile(r.svgTimes, 0.5))} / ${fmt(Math.max(...r.svgTimes))} ms, ${(r.svgBytes / 1024).toFixed(0)} KiB`);
  }
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
