// The Temporal dev server that scripts/test.sh starts, as the browser tests start runs
// on it, and how they ask Stepline whether it has seen a run.
import { createHash } from 'node:crypto';
import { APIRequestContext, expect } from '@playwright/test';

export const temporal = process.env.STEPLINE_TEMPORAL_HTTP;
export const taskQueue = process.env.STEPLINE_TEMPORAL_TASK_QUEUE ?? 'stepline-fixtures';

/**
 * Starts a fixture workflow in Temporal; answers Stepline's id of the run, as the Temporal
 * source named `source` (the browser tests' Stepline follows it as `e2e`).
 */
export async function startInTemporal(
  type: string,
  input: Record<string, unknown>,
  source = 'e2e',
): Promise<string> {
  const workflowId = `e2e-${type}-${Date.now().toString(36)}${Math.floor(Math.random() * 1e6).toString(36)}`;
  const response = await fetch(`${temporal}/api/v1/namespaces/default/workflows/${workflowId}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ workflowType: { name: type }, taskQueue: { name: taskQueue }, input: [input] }),
  });
  expect(response.ok, await response.clone().text()).toBe(true);
  const { runId } = await response.json();
  // Stepline's id ends with a hash of the whole run id (see SourceConfig::workflow_id).
  const run = createHash('sha256').update(runId as string).digest('hex').slice(0, 12);
  return `${source}:default:${workflowId}:${run}`;
}

/** The run's status in Stepline, or null while Stepline has not seen it yet. */
export async function statusIn(request: APIRequestContext, id: string): Promise<string | null> {
  const response = await request.get(`/api/platform/orchestration/workflows/${id}`);
  return response.status() === 200 ? (await response.json()).status : null;
}
