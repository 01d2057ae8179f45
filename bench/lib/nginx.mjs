// l's reverse proxy: a real nginx (apt-get install nginx), started by the
// bench as a non-daemon on 127.0.0.1 with everything it writes (pid, logs,
// temp folders) in a private folder from mkdtemp, and stopped by its pid.
// The upstream is the bench server with `keepalive 32`, HTTP/1.1 and no
// Connection header passed on: the usual keep-alive pool to a backend.
import { spawn, spawnSync } from 'node:child_process'
import { accessSync, constants, createReadStream, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import net from 'node:net'
import os from 'node:os'
import { delimiter, join } from 'node:path'
import { ACCESS_FORMAT, accessLogCounter, countErrorLog } from './nginx-log.mjs'
import { childrenOf, freePort, waitFor } from './proc.mjs'

export const UPSTREAM_KEEPALIVE = 32

/** nginx's path: on PATH, or where Debian puts it (/usr/sbin is not on every user's PATH). */
export function nginxBinary() {
  const dirs = [...(process.env.PATH ?? '').split(delimiter), '/usr/sbin', '/usr/local/sbin', '/usr/local/nginx/sbin']
  for (const dir of dirs) {
    if (!dir) continue
    try {
      accessSync(join(dir, 'nginx'), constants.X_OK)
      return join(dir, 'nginx')
    } catch {}
  }
  return undefined
}

/** "1.22.1", from `nginx -v` (which prints on stderr). */
export function nginxVersion(binary) {
  const out = spawnSync(binary, ['-v'], { encoding: 'utf8' })
  return /nginx\/(\S+)/.exec(`${out.stdout}${out.stderr}`)?.[1] ?? '?'
}

/**
 * The whole configuration, every path inside `dir`. One worker process (the
 * machine has 2 cores, shared with the load and the servers); only errors in
 * the error log; the access log buffered so that it costs little.
 */
export function nginxConf({ dir, port, upstreamPort, keepalive = UPSTREAM_KEEPALIVE }) {
  const p = (name) => JSON.stringify(join(dir, name))
  return `worker_processes 1;
pid ${p('nginx.pid')};
error_log ${p('error.log')} error;
events { worker_connections 4096; }
http {
  client_body_temp_path ${p('client_body')};
  proxy_temp_path ${p('proxy')};
  fastcgi_temp_path ${p('fastcgi')};
  uwsgi_temp_path ${p('uwsgi')};
  scgi_temp_path ${p('scgi')};
  log_format bench '${ACCESS_FORMAT}';
  access_log ${p('access.log')} bench buffer=64k;
  upstream backend {
    server 127.0.0.1:${upstreamPort};
    keepalive ${keepalive};
  }
  server {
    listen 127.0.0.1:${port};
    location / {
      proxy_pass http://backend;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
}
`
}

export class Nginx {
  /** Starts nginx in front of 127.0.0.1:upstreamPort; resolves once its port accepts. */
  static async start(binary, upstreamPort) {
    const dir = mkdtempSync(join(os.tmpdir(), 'handover-bench-nginx-'))
    const port = await freePort()
    const conf = join(dir, 'nginx.conf')
    writeFileSync(conf, nginxConf({ dir, port, upstreamPort }), { mode: 0o600 })
    // -e: the error log before the configuration is read; -g: stay in the foreground, our child.
    const child = spawn(binary, ['-p', dir, '-e', join(dir, 'error.log'), '-c', conf, '-g', 'daemon off;'], { stdio: ['ignore', 'ignore', 'pipe'] })
    let stderr = ''
    child.stderr.setEncoding('utf8').on('data', (d) => (stderr += d))
    const nginx = new Nginx(dir, port, child)
    try {
      await waitFor('nginx to accept', async () => child.exitCode !== null || (await accepts(port)), 10_000, 20)
      if (child.exitCode !== null) throw new Error(`nginx exited with ${child.exitCode}: ${stderr}${nginx.errorLogText()}`)
    } catch (err) {
      await nginx.stop()
      throw err
    }
    return nginx
  }

  constructor(dir, port, child) {
    this.dir = dir
    this.port = port
    this.child = child
    this.pid = child.pid
    this.url = `http://127.0.0.1:${port}/`
  }

  errorLogText() {
    try {
      return readFileSync(join(this.dir, 'error.log'), 'utf8')
    } catch {
      return ''
    }
  }

  /**
   * SIGQUIT (graceful: the worker flushes the buffered access log), SIGKILL
   * to it and its worker after 10 s; then reads both logs and removes the
   * folder. Resolves { access, errors } (lib/nginx-log.mjs).
   */
  async stop() {
    const kill = (pid, sig) => {
      try {
        process.kill(pid, sig)
      } catch {}
    }
    if (this.child.exitCode === null && this.child.signalCode === null) {
      const exited = new Promise((resolve) => this.child.once('exit', resolve))
      kill(this.pid, 'SIGQUIT')
      const killer = setTimeout(() => {
        for (const pid of childrenOf(this.pid)) kill(pid, 'SIGKILL')
        kill(this.pid, 'SIGKILL')
      }, 10_000)
      await exited
      clearTimeout(killer)
    }
    // The master exits after its worker, which has flushed the access log by then.
    try {
      const access = await countFile(join(this.dir, 'access.log'))
      const errors = countErrorLog(this.errorLogText())
      return { access, errors }
    } finally {
      rmSync(this.dir, { recursive: true, force: true })
    }
  }
}

function accepts(port) {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1')
    socket.once('connect', () => {
      socket.destroy()
      resolve(true)
    })
    socket.once('error', () => resolve(false))
  })
}

/** The access log can be tens of MB: counted as a stream. */
async function countFile(path) {
  const counter = accessLogCounter()
  try {
    for await (const chunk of createReadStream(path, { encoding: 'utf8' })) counter.push(chunk)
  } catch (err) {
    if (err.code !== 'ENOENT') throw err
  }
  return counter.end()
}

