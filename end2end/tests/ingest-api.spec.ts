// The ingest endpoint's answers to malformed and out-of-order batches, seen from an
// engine's side (HTTP only; runs once, in the hydrated project).
import { expect, test } from '../support/test';
import { SOURCE, stepCompleted, uniqueId, workflowStarted } from '../support/ingest';

test.skip(({ javaScriptEnabled }) => !javaScriptEnabled, 'HTTP only: once is enough');

test('an out-of-order event is named and nothing of its batch is applied', async ({ request }) => {
  const id = uniqueId('ooo-wf');
  const response = await request.post('/api/platform/orchestration/events', {
    data: { source: SOURCE, events: [workflowStarted(id), stepCompleted(id, 1)] },
  });
  expect(response.status()).toBe(409);
  const body = await response.json();
  expect(body.event_index).toBe(1);
  expect(body.message).toContain('step 1');

  const detail = await request.get(`/api/platform/orchestration/workflows/${id}`);
  expect(detail.status()).toBe(404);
  expect((await detail.json()).error).toBe('not_found');
});
