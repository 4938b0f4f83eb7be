// What the console's performance scripts share: a real Stepline (the binary named by
// STEPLINE_SERVER_BIN, on a fresh SQLite file and a free port), posting to its API,
// quantiles, and the Chromium to measure in.
const { chromium } = require('playwright-core');
const { spawn } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');

const bin = process.env.STEPLINE_SERVER_BIN;
const siteRoot = process.env.STEPLINE_SITE_ROOT;
if (!bin || !siteRoot) throw new Error('set STEPLINE_SERVER_BIN and STEPLINE_SITE_ROOT');

function quantile(values, q) {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

/** Starts Stepline; `env` adds to its environment. Resolves to { server, base }. */
async function startServer(env = {}) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'stepline-perf-'));
  const server = spawn(bin, [], {
    env: {
      ...process.env,
      STEPLINE_LISTEN: '127.0.0.1:0',
      STEPLINE_DATABASE_URL: `sqlite://${dir}/perf.db`,
      STEPLINE_LOG: 'warn',
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
  return { server, base };
}

async function post(base, url, body) {
  const response = await fetch(base + url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  if (!response.ok) throw new Error(`${url}: ${response.status} ${await response.text()}`);
  return response.json();
}

function launchChromium() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu'],
  });
}

module.exports = { quantile, startServer, post, launchChromium, API: '/api/platform/orchestration' };
