// Builds and pushes normalised source events to Stepline's ingest endpoint, as a custom
// (in-house) engine would.
import { APIRequestContext, expect } from '@playwright/test';

export type SourceEvent = Record<string, unknown> & { type: string; workflow_id: string };

export const SOURCE = 'e2e-engine';

/** A workflow id no other test (or earlier run against the same database) uses. */
export function uniqueId(prefix: string): string {
  return `${prefix}-${Date.now().toString(36)}-${Math.floor(Math.random() * 1e6).toString(36)}`;
}

export function now(): string {
  return new Date().toISOString();
}

/** Pushes one batch and expects it to be accepted. */
export async function push(request: APIRequestContext, events: SourceEvent[]): Promise<void> {
  const response = await request.post('/api/platform/orchestration/events', {
    data: { source: SOURCE, events },
  });
  expect(response.status(), await response.text()).toBe(200);
}

export function workflowStarted(
  workflowId: string,
  fields: Record<string, unknown> = {},
): SourceEvent {
  return {
    type: 'workflow_started',
    workflow_id: workflowId,
    at: now(),
    workflow_type: 'data_sync',
    total_steps: 3,
    sla_target_seconds: 600,
    triggered_by: 'e2e@example.com',
    trigger_type: 'manual',
    priority: 'HIGH',
    ...fields,
  };
}

export function stepStarted(workflowId: string, stepNumber: number, name: string): SourceEvent {
  return { type: 'step_started', workflow_id: workflowId, at: now(), step_number: stepNumber, name };
}

export function stepCompleted(workflowId: string, stepNumber: number): SourceEvent {
  return {
    type: 'step_completed',
    workflow_id: workflowId,
    at: now(),
    step_number: stepNumber,
    output: { ok: true },
  };
}

/**
 * Events of one run on its own clock: `at(s)` is `s` seconds after `origin` (ms), and
 * `step(type, n, s, fields)` an event of type `type` about step `n` then.
 */
export function runClock(workflowId: string, origin: number) {
  const at = (seconds: number) => new Date(origin + seconds * 1000).toISOString();
  const step = (type: string, n: number, seconds: number, fields: Record<string, unknown> = {}): SourceEvent => ({
    type,
    workflow_id: workflowId,
    at: at(seconds),
    step_number: n,
    ...fields,
  });
  return { at, step };
}
