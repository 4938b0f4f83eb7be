// Measures the console in Chromium against a real Stepline (its release build):
//   1. time to a populated list with 500 active workflows,
//   2. detail page load of a 100-step workflow,
//   3. delay from a step completing in the built-in engine to its row changing on screen.
// Usage (after `cargo leptos build --release`):
//   STEPLINE_SERVER_BIN=$CARGO_TARGET_DIR/release/server STEPLINE_SITE_ROOT=$PWD/target/site \
//     node end2end/perf/console-perf.js
const { quantile, startServer, post, launchChromium, API, request, newPage } = require('./stepline-server');

async function main() {
  const { server, base } = await startServer({ STEPLINE_WORKFLOWS: require('path').join(__dirname, 'workflows') });
  const browser = await launchChromium();
  try {
    const at = () => new Date().toISOString();
    // 1. 500 active workflows, pushed as a custom engine would.
    const events = [];
    for (let i = 0; i < 500; i++) {
      const id = `perf-wf-${i}`;
      events.push({ type: 'workflow_started', workflow_id: id, at: at(), workflow_type: 'data_sync',
        total_steps: 5, sla_target_seconds: 600, triggered_by: 'perf' });
      events.push({ type: 'step_started', workflow_id: id, at: at(), step_number: 1, name: 'extract' });
    }
    await post(base, `${API}/events`, { source: 'perf', events });
    const page = await newPage(browser);
    // Measured by the browser itself (navigation and paint timing): the rows are in the
    // server's HTML, so the list is populated at its first contentful paint.
    const browserTiming = () =>
      page.evaluate(() => {
        const nav = performance.getEntriesByType('navigation')[0];
        const paint = performance.getEntriesByName('first-contentful-paint')[0];
        return {
          html: Math.round(nav.responseEnd),
          dom: Math.round(nav.domContentLoadedEventEnd),
          paint: Math.round(paint ? paint.startTime : NaN),
        };
      });
    const runs = [];
    for (let run = 0; run < 5; run++) {
      const started = Date.now();
      await page.goto(`${base}/orchestration?tab=active&limit=500`);
      if ((await page.locator('tr[data-workflow-id]').count()) !== 500) throw new Error('500 rows expected');
      const timing = await browserTiming();
      await page.locator('.connection[data-state="connected"]').waitFor();
      runs.push({ ...timing, live: Date.now() - started });
    }
    const p50 = (key) => quantile(runs.map((r) => r[key]), 0.5);
    console.log(`list, 500 active (p50 of 5): HTML received ${p50('html')} ms, first paint with all rows ${p50('paint')} ms, ` +
      `DOM ready ${p50('dom')} ms, hydrated and live ${p50('live')} ms`);
    console.log(`  runs: ${JSON.stringify(runs)}`);

    // 2. A 100-step workflow with logs.
    const big = 'perf-big-wf';
    const steps = [{ type: 'workflow_started', workflow_id: big, at: at(), workflow_type: 'data_sync', total_steps: 100 }];
    for (let n = 1; n <= 100; n++) {
      steps.push({ type: 'step_started', workflow_id: big, at: at(), step_number: n, name: `step_${n}`, input: { n } });
      steps.push({ type: 'log_lines', workflow_id: big, at: at(), step_number: n, lines: ['working', 'done'] });
      steps.push({ type: 'step_completed', workflow_id: big, at: at(), step_number: n, output: { n } });
    }
    await post(base, `${API}/events`, { source: 'perf', events: steps });
    const detailRuns = [];
    for (let run = 0; run < 5; run++) {
      const started = Date.now();
      await page.goto(`${base}/orchestration/workflows/${big}`);
      if ((await page.locator('li.step').count()) !== 100) throw new Error('100 steps expected');
      const timing = await browserTiming();
      await page.locator('.connection[data-state="connected"]').waitFor();
      detailRuns.push({ ...timing, live: Date.now() - started });
    }
    const d50 = (key) => quantile(detailRuns.map((r) => r[key]), 0.5);
    console.log(`detail, 100 steps (p50 of 5): HTML received ${d50('html')} ms, first paint ${d50('paint')} ms, ` +
      `DOM ready ${d50('dom')} ms, hydrated and live ${d50('live')} ms`);

    // 3. Step completion in the engine -> the row's progress text changes on screen.
    await page.goto(`${base}/orchestration`);
    await page.locator('.connection[data-state="connected"]').waitFor();
    const { workflow_id: id } = await post(base, `${API}/workflows`, { workflow_type: 'perf_steps' });
    await page.evaluate((id) => {
      window.changes = [];
      const observer = new MutationObserver(() => {
        const row = document.querySelector(`tr[data-workflow-id="${id}"]`);
        const progress = row?.querySelector('.progress-text')?.textContent;
        if (!progress) return;
        const text = `${progress} ${row.dataset.status}`;
        const last = window.changes[window.changes.length - 1];
        if (!last || last.text !== text) window.changes.push({ text, at: performance.timeOrigin + performance.now() });
      });
      observer.observe(document.body, { subtree: true, childList: true, characterData: true, attributes: true });
    }, id);
    await page.locator(`tr[data-workflow-id="${id}"][data-status="COMPLETED"]`).waitFor({ timeout: 60_000 });
    const detail = await (await request(base, `${API}/workflows/${id}`)).json();
    const changes = await page.evaluate(() => window.changes);
    const delays = [];
    for (const step of detail.execution.steps) {
      // The row reads "(k+1)/20" once step k completed, and COMPLETED after the last.
      const k = step.step_number;
      const expected = k < 20 ? `${k + 1}/20` : '20/20 (100%) COMPLETED';
      const change = changes.find((c) => c.text.startsWith(expected));
      if (change) delays.push(change.at - Date.parse(step.completed_at));
      else console.log(`  step ${k}: the row skipped "${expected}" (two changes in one frame)`);
    }
    if (process.env.STEPLINE_PERF_VERBOSE) console.log(JSON.stringify({ changes, delays }));
    console.log(`step completed -> row changed (${delays.length} steps): p50 ${quantile(delays, 0.5).toFixed(0)} ms, ` +
      `p95 ${quantile(delays, 0.95).toFixed(0)} ms, max ${Math.max(...delays).toFixed(0)} ms`);
  } finally {
    await browser.close();
    server.kill('SIGTERM');
  }
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
