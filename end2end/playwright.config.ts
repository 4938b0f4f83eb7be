// Playwright runs the real Stepline server (started here, stopped by Playwright) and
// drives Debian's Chromium: no browser is downloaded. scripts/test.sh sets the env.
import { defineConfig } from '@playwright/test';
import { ADMIN_STATE } from './support/identity';

const port = Number(process.env.STEPLINE_E2E_PORT ?? 3400);
// The OpenID Connect provider the SSO tests sign in through (oidc/provider.mjs).
const oidcPort = Number(process.env.STEPLINE_E2E_OIDC_PORT ?? 3901);
const oidcSecret = process.env.STEPLINE_OIDC_E2E_SECRET ?? 'e2e-oidc-client-secret';
const serverBinary = process.env.STEPLINE_SERVER_BIN;
const siteRoot = process.env.STEPLINE_SITE_ROOT;
const database = process.env.STEPLINE_E2E_DATABASE_URL;
if (!serverBinary || !siteRoot || !database) {
  throw new Error(
    'Run the browser tests through scripts/test.sh (it builds the site and sets ' +
      'STEPLINE_SERVER_BIN, STEPLINE_SITE_ROOT and STEPLINE_E2E_DATABASE_URL).',
  );
}

const chromium = {
  executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
  args: [
    '--headless',
    '--no-sandbox',
    '--disable-gpu',
    '--disable-quic',
    '--no-first-run',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
  ],
};

// The token globalSetup made (read, operate, push as the tests' source): every request
// of the tests sends it, unless a test makes its own context (the sign-in flows do).
const token = process.env.STEPLINE_E2E_TOKEN;

export default defineConfig({
  testDir: './tests',
  globalSetup: './support/global-setup.ts',
  fullyParallel: false,
  workers: 1,
  retries: 0,
  forbidOnly: !!process.env.CI,
  timeout: 30_000,
  // A condition waited for, not a pause: on a busy machine the debug WASM bundle takes
  // over 5 s to hydrate (the canvas appears after it), and passing waits cost nothing.
  expect: { timeout: 15_000 },
  reporter: [['list']],
  use: {
    baseURL: `http://127.0.0.1:${port}`,
    launchOptions: chromium,
    trace: 'retain-on-failure',
    extraHTTPHeaders: token ? { Authorization: `Bearer ${token}` } : {},
    // The admin's session, which globalSetup saved: the pages are signed in.
    storageState: token ? ADMIN_STATE : undefined,
  },
  projects: [
    { name: 'hydrated', use: { javaScriptEnabled: true } },
    { name: 'no-javascript', use: { javaScriptEnabled: false } },
  ],
  webServer: [
    {
      // Playwright starts these in order, each once the one before answers: the provider
      // is up before Stepline, which may read its discovery document when it starts.
      command: 'node oidc/provider.mjs',
      url: `http://127.0.0.1:${oidcPort}/.well-known/openid-configuration`,
      timeout: 30_000,
      reuseExistingServer: false,
      stdout: 'pipe',
      stderr: 'pipe',
      env: {
        STEPLINE_E2E_OIDC_PORT: String(oidcPort),
        STEPLINE_E2E_PORT: String(port),
        STEPLINE_OIDC_E2E_SECRET: oidcSecret,
        // The in-house engine that takes commands (tests/inhouse-commands.spec.ts).
        ...(process.env.STEPLINE_PUSH_SOURCES
          ? { STEPLINE_PUSH_SOURCES: process.env.STEPLINE_PUSH_SOURCES }
          : {}),
      },
    },
    {
      command: serverBinary,
      url: `http://127.0.0.1:${port}/api/health`,
      timeout: 60_000,
      reuseExistingServer: false,
      stdout: 'pipe',
      stderr: 'pipe',
      env: {
        STEPLINE_LISTEN: `127.0.0.1:${port}`,
        STEPLINE_DATABASE_URL: database,
        LEPTOS_SITE_ROOT: siteRoot,
        LEPTOS_SITE_ADDR: `127.0.0.1:${port}`,
        // The first admin's password, so the tests can sign in (support/identity.ts).
        STEPLINE_ADMIN_PASSWORD: process.env.STEPLINE_E2E_ADMIN_PASSWORD ?? 'e2e-admin-password-1',
        // The browser tests' own workflow types (deterministic durations and failures).
        STEPLINE_WORKFLOWS: `${process.cwd()}/workflows`,
        // Temporal sources to follow too (scripts/test.sh points this at its dev server).
        ...(process.env.STEPLINE_TEMPORAL_SOURCES
          ? { STEPLINE_TEMPORAL_SOURCES: process.env.STEPLINE_TEMPORAL_SOURCES }
          : {}),
        // Sign-in through the test OpenID Connect provider (tests/sso.spec.ts): scripts/test.sh
        // writes the providers file, with the provider's port.
        ...(process.env.STEPLINE_SIGN_IN_PROVIDERS
          ? { STEPLINE_SIGN_IN_PROVIDERS: process.env.STEPLINE_SIGN_IN_PROVIDERS }
          : {}),
        STEPLINE_OIDC_E2E_SECRET: oidcSecret,
      },
    },
  ],
});
