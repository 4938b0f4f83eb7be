// Accounts for the browser tests: the first admin (its password given to the server by
// the config), and helpers that sign in, make accounts and read the session cookie.
import {
  APIRequestContext,
  Browser,
  BrowserContext,
  expect,
  Page,
  request as playwrightRequest,
} from '@playwright/test';

export const ADMIN = 'admin';
/** Where globalSetup keeps the admin's session (cookies) for the tests' pages. */
export const ADMIN_STATE = `${__dirname}/../.auth/admin-session.json`;
/** Given to the server as STEPLINE_ADMIN_PASSWORD by playwright.config.ts. */
export const ADMIN_PASSWORD = process.env.STEPLINE_E2E_ADMIN_PASSWORD ?? 'e2e-admin-password-1';

/** An API context with no token and no cookie (the tests' own token is not sent). */
export async function freshApi(baseURL: string): Promise<APIRequestContext> {
  return playwrightRequest.newContext({
    baseURL,
    extraHTTPHeaders: {},
    storageState: { cookies: [], origins: [] },
  });
}

/** Signs `login` in through the API (as the sign-in page's form does); the context keeps the cookie. */
export async function signInApi(
  api: APIRequestContext,
  baseURL: string,
  login: string,
  password: string,
): Promise<void> {
  const response = await api.post('/api/auth/sign-in', {
    headers: { Origin: baseURL },
    data: { login, password },
  });
  if (response.status() !== 200) {
    throw new Error(`signing in ${login}: ${response.status()} ${await response.text()}`);
  }
}

/** A fresh browser context with no token and no cookie: a visitor. */
export async function visitor(browser: Browser, baseURL: string): Promise<BrowserContext> {
  return browser.newContext({
    baseURL,
    extraHTTPHeaders: {},
    storageState: { cookies: [], origins: [] },
  });
}

/** Signs in through the sign-in page, as a person would. */
export async function signInPage(page: Page, login: string, password: string): Promise<void> {
  await page.goto('/orchestration');
  await expect(page).toHaveURL(/\/signin\?next=/);
  await page.getByLabel('Login').fill(login);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page).toHaveURL(/\/orchestration/);
}

/** Makes a local account with `role` on `engines` (every engine unless said), through the admin API. */
export async function makeAccount(
  admin: APIRequestContext,
  baseURL: string,
  login: string,
  password: string,
  role: 'viewer' | 'operator' | 'admin',
  engines = '*',
): Promise<void> {
  const response = await admin.post('/api/auth/users', {
    headers: { Origin: baseURL },
    data: { login, password, bindings: [{ role, engines }] },
  });
  expect([201, 409], await response.text()).toContain(response.status());
}
