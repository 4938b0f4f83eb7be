// What the console's performance scripts share: a real Stepline (the binary named by
// STEPLINE_SERVER_BIN, on a fresh SQLite file and a free port) with its first admin
// signed in, requests to its API with an API token, pages with the admin's session,
// quantiles, and the Chromium to measure in.
const { chromium } = require('playwright-core');
const { spawn } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');

const crypto = require('crypto');

const bin = process.env.STEPLINE_SERVER_BIN;
const siteRoot = process.env.STEPLINE_SITE_ROOT;
if (!bin || !siteRoot) throw new Error('set STEPLINE_SERVER_BIN and STEPLINE_SITE_ROOT');

function quantile(values, q) {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

/** The signed-in admin: its session cookies (for pages) and an API token (for requests). */
let session = null;

/** Signs the first admin in and makes a token that may read, act and push as `perf`. */
async function signIn(base, password) {
  const signedIn = await fetch(`${base}/api/auth/sign-in`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', origin: base },
    body: JSON.stringify({ login: 'admin', password }),
  });
  if (signedIn.status !== 200) throw new Error(`signing in: ${signedIn.status} ${await signedIn.text()}`);
  const cookies = signedIn.headers.getSetCookie().map((cookie) => cookie.split(';')[0]);
  const made = await fetch(`${base}/api/auth/tokens`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', origin: base, cookie: cookies.join('; ') },
    body: JSON.stringify({ name: 'perf', scopes: ['read', 'operate', 'ingest:perf'] }),
  });
  if (made.status !== 201) throw new Error(`making a token: ${made.status} ${await made.text()}`);
  return { base, cookies, token: (await made.json()).token };
}

/** Starts Stepline, its first admin signed in; `env` adds to its environment. Resolves to { server, base }. */
async function startServer(env = {}) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'stepline-perf-'));
  const password = crypto.randomBytes(18).toString('base64url');
  const server = spawn(bin, [], {
    env: {
      ...process.env,
      STEPLINE_LISTEN: '127.0.0.1:0',
      STEPLINE_DATABASE_URL: `sqlite://${dir}/perf.db`,
      STEPLINE_LOG: 'warn',
      STEPLINE_ADMIN_PASSWORD: password,
      LEPTOS_SITE_ROOT: siteRoot,
      ...env,
    },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const base = await new Promise((resolve, reject) => {
    server.on('exit', (code) => reject(new Error(`server exited ${code}`)));
    server.stdout.on('data', (chunk) => {
      const match = /Stepline is running: (http:\/\/[^/]+)/.exec(chunk.toString());
      if (match) resolve(match[1]);
    });
  });
  try {
    session = await signIn(base, password);
  } catch (error) {
    server.kill('SIGTERM');
    throw error;
  }
  return { server, base };
}

/** `fetch` with the token. */
function request(base, url, init = {}) {
  return fetch(base + url, { ...init, headers: { ...init.headers, authorization: `Bearer ${session.token}` } });
}

async function post(base, url, body) {
  const response = await request(base, url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  if (!response.ok) throw new Error(`${url}: ${response.status} ${await response.text()}`);
  return response.json();
}

/** A page of its own context, signed in as the admin (closing it closes the context). */
async function newPage(browser, options = {}) {
  const context = await browser.newContext(options);
  await context.addCookies(
    session.cookies.map((cookie) => {
      const at = cookie.indexOf('=');
      return { name: cookie.slice(0, at), value: cookie.slice(at + 1), url: session.base };
    }),
  );
  const page = await context.newPage();
  page.on('close', () => context.close());
  return page;
}

function launchChromium() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu'],
  });
}

module.exports = { quantile, startServer, request, post, newPage, launchChromium, API: '/api/platform/orchestration' };
