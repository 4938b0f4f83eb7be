// A run with a big fan-out, as a custom engine pushes it: "prepare", then `ways` "resize"
// steps each on its own parallel branch (the first 48 failed, the last 2 still running,
// the rest completed), then "notify" running. Shared by the browser test
// (tests/fan-out.spec.ts) and the measurement (perf/fan-out-perf.js).
const FAILED = 48;
const RUNNING = 2;

/** The run's events, its start `began` ms since the epoch. */
function fanOutEvents(id, ways, began) {
  const at = (ms) => new Date(began + ms).toISOString();
  const step = (type, n, ms, fields = {}) => ({ type, workflow_id: id, at: at(ms), step_number: n, ...fields });
  const events = [
    { type: 'workflow_started', workflow_id: id, at: at(0), workflow_type: 'e2e_fan_out', total_steps: ways + 2,
      sla_target_seconds: 3600, triggered_by: 'e2e@example.com', trigger_type: 'manual', priority: 'NORMAL' },
    step('step_started', 1, 0, { name: 'prepare' }),
    step('step_completed', 1, 1_000),
  ];
  for (let i = 0; i < ways; i++) {
    const n = i + 2;
    const start = 1_000 + i * 100;
    events.push(step('step_started', n, start, { name: 'resize', branch: `b${i}` }));
    if (i < FAILED) {
      events.push(step('step_failed', n, start + 2_000, { error: `image ${i} is corrupt` }));
    } else if (i < ways - RUNNING) {
      events.push(step('step_completed', n, start + 1_500));
    }
  }
  events.push(step('step_started', ways + 2, ways * 100 + 5_000, { name: 'notify' }));
  return events;
}

module.exports = { FAILED, RUNNING, fanOutEvents };
