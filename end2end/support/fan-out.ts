// A run with a big fan-out pushed as a custom engine would (perf/fan-out-run.js says
// which steps and how they stand).
import { APIRequestContext } from '@playwright/test';
import { push, SourceEvent } from './ingest';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const run: {
  FAILED: number;
  RUNNING: number;
  fanOutEvents: (id: string, ways: number, began: number) => SourceEvent[];
} = require('../perf/fan-out-run');

export const { FAILED, RUNNING } = run;

/** Pushes run `id`, begun ten minutes ago, fanning out `ways` ways. */
export async function pushFanOut(request: APIRequestContext, id: string, ways: number): Promise<void> {
  const events = run.fanOutEvents(id, ways, Date.now() - 10 * 60_000);
  for (let i = 0; i < events.length; i += 1_000) {
    await push(request, events.slice(i, i + 1_000));
  }
}
