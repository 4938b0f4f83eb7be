// Three instances of Stepline on one PostgreSQL behind HAProxy (issue 17): the built-in
// engine runs 200 workflows and a Temporal namespace is followed; the instance driving the
// built-in engine is SIGKILLed, then the one following Temporal. Each time another
// instance holds the lease within 10 s, every workflow completes with each step done once,
// and the browser, whose live connection went through the balancer to the first dead
// instance, keeps receiving every live event, its seqs with no gap and none twice.
import { request as playwrightRequest } from '@playwright/test';
import { expect, test } from '../support/test';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { signInApi } from '../support/identity';
import { OrchestrationPage } from '../support/orchestration-page';
import { ADMIN_PASSWORD, API, Cluster, haproxyInstalled, Instance, leases, postgres } from '../support/cluster';
import { startInTemporal, taskQueue, temporal } from '../support/temporal';

const RUNS = 200;
const TAKEN_OVER_WITHIN_MS = 10_000;
const BUILTIN_LEASE = 'engine:builtin';
const TEMPORAL_LEASE = 'source:temporal:cluster:default';

const RELAY = `
type = "cluster_relay"
name = "Cluster relay"
version = "1"
[[steps]]
name = "one"
action = { kind = "simulate", duration = "1s" }
[[steps]]
name = "two"
after = ["one"]
action = { kind = "simulate", duration = "1s" }
[[steps]]
name = "three"
after = ["two"]
action = { kind = "simulate", duration = "1s" }
`;

test.describe('three instances behind a load balancer', () => {
  test.skip(({ javaScriptEnabled }) => !javaScriptEnabled, 'the live connection needs the hydrated app');
  test.skip(!postgres || !temporal || !haproxyInstalled, 'needs the PostgreSQL, Temporal and HAProxy of scripts/test.sh');
  // Three servers, a balancer, 200 runs and two takeovers: Playwright's slow-test budget.
  test.slow();

  let cluster: Cluster | undefined;
  test.afterAll(() => cluster?.stop());

  test('losing the instances that hold the leases loses no run, no transition and no live event', async ({
    browser,
  }) => {
    const dir = mkdtempSync(join(tmpdir(), 'stepline-cluster-'));
    cluster = await Cluster.create(dir);
    const workflows = join(dir, 'workflows');
    mkdirSync(workflows);
    writeFileSync(join(workflows, 'relay.toml'), RELAY);
    const sources = join(dir, 'temporal-sources.toml');
    writeFileSync(
      sources,
      `[[source]]
name = "cluster"
url = "${temporal}"
task_queue = "${taskQueue}"
poll_interval = "250ms"
import_since = "5s"
`,
    );

    // The first instance takes the built-in engine's lease; the second, started with the
    // Temporal source, takes its lease; the third has both and holds neither.
    const first = await cluster.add('first', { STEPLINE_WORKFLOWS: workflows });
    const api = await playwrightRequest.newContext({
      baseURL: first.url,
      extraHTTPHeaders: {},
      storageState: { cookies: [], origins: [] },
    });
    await signInApi(api, first.url, 'admin', ADMIN_PASSWORD);
    const made = await api.post(`${first.url}/api/auth/tokens`, {
      headers: { Origin: first.url },
      data: { name: 'cluster', scopes: ['read', 'operate'] },
    });
    expect(made.status(), await made.text()).toBe(201);
    const token = (await made.json()).token as string;
    const ops = await playwrightRequest.newContext({
      extraHTTPHeaders: { Authorization: `Bearer ${token}` },
      storageState: { cookies: [], origins: [] },
    });
    // Asked through the balancer, a request on a connection to an instance that just died
    // fails: asked again at the next poll.
    const holderOf = async (base: string, lease: string) => {
      const answer = await leases(ops, base).catch(() => null);
      return answer?.leases.find((held) => held.name === lease)?.holder ?? null;
    };
    const idOf = async (instance: Instance) => (await leases(ops, instance.url)).instance;

    const firstId = await idOf(first);
    await expect.poll(() => holderOf(first.url, BUILTIN_LEASE), { timeout: 20_000 }).toBe(firstId);
    const second = await cluster.add('second', { STEPLINE_WORKFLOWS: workflows, STEPLINE_TEMPORAL_SOURCES: sources });
    const secondId = await idOf(second);
    await expect.poll(() => holderOf(second.url, TEMPORAL_LEASE), { timeout: 20_000 }).toBe(secondId);
    const third = await cluster.add('third', { STEPLINE_WORKFLOWS: workflows, STEPLINE_TEMPORAL_SOURCES: sources });
    const thirdId = await idOf(third);
    const balancer = await cluster.balance();
    const health = async () => (await ops.get(`${balancer}/api/health`).catch(() => null))?.status() ?? null;
    await expect.poll(health, { timeout: 20_000 }).toBe(200);

    // A browser on the console through the balancer (on the first instance, while it
    // lives), recording every live message it receives.
    const context = await browser.newContext({
      baseURL: balancer,
      extraHTTPHeaders: {},
      storageState: { cookies: [], origins: [] },
    });
    await signInApi(context.request, balancer, 'admin', ADMIN_PASSWORD);
    const page = await context.newPage();
    const received: { seq: number; event: string; [key: string]: unknown }[] = [];
    let connections = 0;
    page.on('websocket', (socket) => {
      connections += 1;
      socket.on('framereceived', (frame) => {
        received.push(JSON.parse(frame.payload as string));
      });
    });
    const list = new OrchestrationPage(page);
    await list.goto('?sort=newest');
    await list.waitUntilLive();

    // 200 runs, a third through the balancer (the driving instance) and the rest through
    // the other two, which forward them to it; and Temporal runs on the followed namespace.
    const targets = [balancer, second.url, third.url];
    const ids: string[] = [];
    for (let batch = 0; batch < RUNS / 20; batch += 1) {
      const started = await Promise.all(
        Array.from({ length: 20 }, async (_, n) => {
          const base = targets[(batch * 20 + n) % targets.length];
          const response = await ops.post(`${base}${API}/workflows`, {
            data: { workflow_type: 'cluster_relay', input: { n: batch * 20 + n } },
          });
          expect(response.status(), await response.text()).toBe(201);
          return (await response.json()).workflow_id as string;
        }),
      );
      ids.push(...started);
    }
    expect(new Set(ids).size).toBe(RUNS);
    const temporalRuns = [
      await startInTemporal('SequentialWF', { steps: 4, step_ms: 1500 }, 'cluster'),
      await startInTemporal('SequentialWF', { steps: 4, step_ms: 1500 }, 'cluster'),
    ];

    // The instance driving the built-in engine dies mid-run (and the browser's with it).
    const statusOf = async (base: string, id: string) => {
      const response = await ops.get(`${base}${API}/workflows/${id}`).catch(() => null);
      return response?.status() === 200 ? ((await response.json()).status as string) : null;
    };
    await expect.poll(() => statusOf(balancer, temporalRuns[0]), { timeout: 30_000 }).toBe('RUNNING');
    const seqBeforeFirstKill = received.at(-1)?.seq ?? 0;
    let died = Date.now();
    cluster.kill(first);
    let builtinHolder: string | null = null;
    await expect
      .poll(
        async () => {
          builtinHolder = await holderOf(balancer, BUILTIN_LEASE);
          return builtinHolder !== null && builtinHolder !== firstId;
        },
        { timeout: TAKEN_OVER_WITHIN_MS, intervals: [100] },
      )
      .toBe(true);
    const builtinTakeover = Date.now() - died;
    expect([secondId, thirdId]).toContain(builtinHolder);

    // Then the instance following Temporal dies.
    died = Date.now();
    cluster.kill(second);
    await expect
      .poll(() => holderOf(balancer, TEMPORAL_LEASE), { timeout: TAKEN_OVER_WITHIN_MS, intervals: [100] })
      .toBe(thirdId);
    const temporalTakeover = Date.now() - died;
    await expect
      .poll(() => holderOf(balancer, BUILTIN_LEASE), { timeout: TAKEN_OVER_WITHIN_MS, intervals: [100] })
      .toBe(thirdId);
    temporalRuns.push(await startInTemporal('SequentialWF', { steps: 2, step_ms: 200 }, 'cluster'));

    // Every run completes, each step once.
    for (const id of [...ids, ...temporalRuns]) {
      await expect.poll(() => statusOf(balancer, id), { timeout: 60_000 }).toBe('COMPLETED');
    }
    for (const id of ids) {
      const detail = await (await ops.get(`${balancer}${API}/workflows/${id}`)).json();
      for (const step of detail.execution.steps) {
        expect(step.status, `${id} step ${step.step_number}`).toBe('COMPLETED');
        const attempts: { attempt: number; status: string }[] = step.attempts;
        expect(new Set(attempts.map((a) => a.attempt)).size, `${id}: each attempt once`).toBe(attempts.length);
        expect(attempts.filter((a) => a.status === 'COMPLETED').length, `${id}: completed once`).toBe(1);
      }
    }

    // The browser came back through the balancer and missed nothing: after each
    // reconnection its hub replayed from its last seq (no snapshot), so the seqs of the
    // events it received run on with no gap and none twice, past both deaths.
    const events = received.filter((message) => message.event !== 'hello');
    expect(events.filter((message) => message.event === 'snapshot')).toHaveLength(0);
    const seqs = events.map((message) => message.seq);
    const gaps = seqs.filter((seq, i) => i > 0 && seq !== seqs[i - 1] + 1);
    expect(gaps, 'every seq follows the one before').toEqual([]);
    expect(connections).toBeGreaterThanOrEqual(2);
    expect(seqs.at(-1)!).toBeGreaterThan(seqBeforeFirstKill);
    const completions = events.filter((message) => message.event === 'step_completed');
    const distinct = new Set(completions.map((m) => `${m.workflow_id}/${m.step_number}`));
    expect(distinct.size, 'each step completion told once').toBe(completions.length);
    // The list shows the end of the last run started, live.
    const last = ids.at(-1)!;
    await expect(list.row(last)).toHaveAttribute('data-status', 'COMPLETED');
    await list.waitUntilLive();

    console.log(
      `cluster: ${RUNS} built-in and ${temporalRuns.length} Temporal runs completed; built-in lease taken over ` +
        `${builtinTakeover} ms and Temporal lease ${temporalTakeover} ms after their holder was SIGKILLed; ` +
        `the browser reconnected ${connections - 1} times and received ${seqs.length} events, seqs ${seqs[0]}..${seqs.at(-1)}`,
    );
    await context.close();
    await api.dispose();
    await ops.dispose();
  });
});
