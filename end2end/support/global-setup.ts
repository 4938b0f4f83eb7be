// Before the browser tests: signs in as the first admin (whose password the config gives
// the server), keeps that session for the pages, and makes a real API token that may
// read, act and push as the tests' source, which the tests' API requests send. The
// sign-in flows themselves are tested in fresh contexts without either
// (identity.spec.ts).
import { request, FullConfig } from '@playwright/test';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { ADMIN, ADMIN_PASSWORD, ADMIN_STATE, signInApi } from './identity';
import { SOURCE } from './ingest';

export default async function globalSetup(config: FullConfig): Promise<void> {
  const baseURL = config.projects[0].use.baseURL as string;
  const api = await request.newContext({ baseURL });
  await signInApi(api, baseURL, ADMIN, ADMIN_PASSWORD);
  const response = await api.post('/api/auth/tokens', {
    headers: { Origin: baseURL },
    // And as the in-house engines that take commands (inhouse-commands.spec.ts, and the
    // reference engine of reference-engine.spec.ts), and as the engine whose alerts
    // alerts.spec.ts counts (nothing else pushes there).
    data: {
      name: 'e2e',
      scopes: ['read', 'operate', `ingest:${SOURCE}`, 'ingest:e2e-inhouse', 'ingest:e2e-reference', 'ingest:e2e-alerts'],
    },
  });
  if (response.status() !== 201) {
    throw new Error(`could not make the tests' token: ${response.status()} ${await response.text()}`);
  }
  process.env.STEPLINE_E2E_TOKEN = (await response.json()).token;
  // The admin's session cookie, for the pages (and their live connection) to use.
  mkdirSync(dirname(ADMIN_STATE), { recursive: true });
  await api.storageState({ path: ADMIN_STATE });
  await api.dispose();
}
