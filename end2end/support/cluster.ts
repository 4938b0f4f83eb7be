// Three Stepline instances on one PostgreSQL behind Debian's HAProxy, all on loopback, as
// a team deploys them (issue 17): real processes of the server binary that the test
// starts and SIGKILLs, a database of their own on the PostgreSQL cluster scripts/test.sh
// runs, and the balancer, stopped by its PID.
import { APIRequestContext } from '@playwright/test';
import { ChildProcess, execFileSync, spawn } from 'node:child_process';
import { createWriteStream, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { freePort } from './ports';

/** The PostgreSQL server scripts/test.sh runs (a URL of its `postgres` database). */
export const postgres = process.env.STEPLINE_E2E_POSTGRES_URL;
export const HAPROXY = '/usr/sbin/haproxy';
export const haproxyInstalled = existsSync(HAPROXY);

const serverBinary = process.env.STEPLINE_SERVER_BIN as string;
const siteRoot = process.env.STEPLINE_SITE_ROOT as string;
export const ADMIN_PASSWORD = 'cluster-admin-password-1';
export const API = '/api/platform/orchestration';

export interface Instance {
  name: string;
  url: string;
  process: ChildProcess;
}

/** One instance of the server binary; resolves once it says where it serves. */
async function startInstance(
  name: string,
  dir: string,
  env: Record<string, string>,
): Promise<Instance> {
  const port = await freePort();
  const child = spawn(serverBinary, [], {
    env: {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      HOME: process.env.HOME ?? '/root',
      STEPLINE_LISTEN: `127.0.0.1:${port}`,
      LEPTOS_SITE_ROOT: siteRoot,
      LEPTOS_SITE_ADDR: `127.0.0.1:${port}`,
      STEPLINE_ADMIN_PASSWORD: ADMIN_PASSWORD,
      STEPLINE_LOG: 'warn,server=info',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stderr?.pipe(createWriteStream(join(dir, `${name}.log`)));
  const lines = createInterface({ input: child.stdout! });
  // Until it says where it serves, or ends (the test's own budget bounds the wait).
  const url = await new Promise<string>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`${name} exited (${code}); see ${dir}/${name}.log`)));
    lines.on('line', (line) => {
      const prefix = 'Stepline is running: ';
      if (line.startsWith(prefix)) {
        resolve(line.slice(prefix.length).replace(/\/orchestration$/, ''));
      }
    });
  });
  return { name, url, process: child };
}

export interface Lease {
  name: string;
  holder: string;
}

/** The instance that answered a request for the leases, and every lease. */
export async function leases(
  api: APIRequestContext,
  base: string,
): Promise<{ instance: string; leases: Lease[] }> {
  const response = await api.get(`${base}${API}/leases`);
  if (response.status() !== 200) {
    throw new Error(`the leases: ${response.status()} ${await response.text()}`);
  }
  return response.json();
}

export class Cluster {
  instances: Instance[] = [];
  balancer?: ChildProcess;
  url = '';

  private constructor(
    readonly dir: string,
    readonly database: string,
  ) {}

  /** A database of its own on the PostgreSQL server, and a folder for the processes. */
  static async create(dir: string): Promise<Cluster> {
    if (!postgres) throw new Error('STEPLINE_E2E_POSTGRES_URL is not set');
    mkdirSync(dir, { recursive: true });
    const name = `stepline_cluster_${Date.now().toString(36)}`;
    execFileSync('psql', [postgres, '-v', 'ON_ERROR_STOP=1', '-q', '-c', `CREATE DATABASE ${name}`]);
    const database = new URL(postgres);
    database.pathname = `/${name}`;
    return new Cluster(dir, database.toString());
  }

  /** Starts one more instance on the cluster's database. */
  async add(name: string, env: Record<string, string>): Promise<Instance> {
    const instance = await startInstance(name, this.dir, {
      STEPLINE_DATABASE_URL: this.database,
      ...env,
    });
    this.instances.push(instance);
    return instance;
  }

  /**
   * HAProxy in front of the instances, in their order: each request goes to the first
   * that is up (`balance first`), so a browser's connection is on the first instance until
   * it dies; a connection refused by a dead one is sent on to the next.
   */
  async balance(): Promise<string> {
    const port = await freePort();
    const servers = this.instances
      .map((instance) => `  server ${instance.name} ${new URL(instance.url).host}`)
      .join('\n');
    const config = join(this.dir, 'haproxy.cfg');
    writeFileSync(
      config,
      `global
  maxconn 4096
defaults
  mode http
  timeout connect 2s
  timeout client 60s
  timeout server 60s
  timeout tunnel 1h
  retries 3
  option redispatch
frontend stepline
  bind 127.0.0.1:${port}
  default_backend instances
backend instances
  balance first
  option httpchk GET /api/health
  default-server check inter 250ms fall 2 rise 2 maxconn 2000
${servers}
`,
    );
    execFileSync(HAPROXY, ['-c', '-q', '-f', config]);
    this.balancer = spawn(HAPROXY, ['-db', '-f', config], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    this.balancer.stderr?.pipe(createWriteStream(join(this.dir, 'haproxy.log')));
    this.url = `http://127.0.0.1:${port}`;
    return this.url;
  }

  /** SIGKILLs `instance`, as a machine that dies: it gives nothing up. */
  kill(instance: Instance): void {
    instance.process.kill('SIGKILL');
  }

  /** Stops every process the cluster started, by its PID. */
  stop(): void {
    for (const instance of this.instances) {
      if (instance.process.exitCode === null && instance.process.signalCode === null) {
        instance.process.kill('SIGKILL');
      }
    }
    this.balancer?.kill('SIGTERM');
  }
}
