// Starts runs of the built-in engine's test workflow types (end2end/workflows) through
// the REST API, and waits on their status the way an operator's script would.
import { APIRequestContext, expect } from '@playwright/test';

const API = '/api/platform/orchestration';

export async function startWorkflow(
  request: APIRequestContext,
  workflowType: string,
  input: Record<string, unknown> = { customer_id: 'cust-42' },
): Promise<string> {
  const response = await request.post(`${API}/workflows`, {
    data: { workflow_type: workflowType, input, triggered_by: 'e2e@example.com' },
  });
  expect(response.status(), await response.text()).toBe(201);
  return (await response.json()).workflow_id as string;
}

export async function workflowDetail(
  request: APIRequestContext,
  id: string,
): Promise<Record<string, any>> {
  const response = await request.get(`${API}/workflows/${id}`);
  expect(response.status()).toBe(200);
  return response.json();
}

/** Waits (polling the API, no fixed sleeps) until the run has `status`. */
export async function waitForStatus(
  request: APIRequestContext,
  id: string,
  status: string,
): Promise<void> {
  await expect
    .poll(async () => (await workflowDetail(request, id)).status, { timeout: 20_000 })
    .toBe(status);
}

/** Waits until step `number` of the run has `status`. */
export async function waitForStep(
  request: APIRequestContext,
  id: string,
  number: number,
  status: string,
): Promise<void> {
  await expect
    .poll(
      async () => {
        const detail = await workflowDetail(request, id);
        return detail.execution.steps.find((s: any) => s.step_number === number)?.status;
      },
      { timeout: 20_000 },
    )
    .toBe(status);
}
