// Where `handover run` puts its control socket when none is given, and how
// `handover status|upgrade [name]` finds it again: <dir>/<name>.sock, where
// <dir> is $XDG_RUNTIME_DIR/handover (a login session's private runtime
// directory), else /run/handover for root, else <tmpdir>/handover-<uid>
// (a container's non-root user has no XDG_RUNTIME_DIR).
//
// The directory is this user's alone: created 0700, and an existing one is
// used only if it is a real directory (lstat: a symlink is refused, never
// followed), owned by this user, with no group or other permission bits,
// inside a parent that others cannot rename it out of. Otherwise a local
// user could plant the directory (or a symlink) first and have the server
// bind, or the command connect, where they choose.
import { lstatSync, mkdirSync, readdirSync, statSync, type Stats } from 'node:fs'
import net from 'node:net'
import { tmpdir } from 'node:os'
import { basename, dirname, extname, isAbsolute, join } from 'node:path'
import { HandoverError } from '../core/errors.js'
import { checkName, NAME_MAX, nameProblem } from '../core/options.js'

const SUFFIX = '.sock'

export { checkName, nameProblem, NAME_MAX } from '../core/options.js'

export interface RuntimeDirOptions {
  env?: NodeJS.ProcessEnv
  /** The effective uid the directory must belong to. Default: this process's. */
  uid?: number
}

function euid(o: RuntimeDirOptions): number {
  return o.uid ?? process.geteuid?.() ?? -1
}

/**
 * The name a service gets without --name: the script's base name without
 * its extension (`/srv/api/server.mjs` is `server`), other characters made
 * `-`, cut to NAME_MAX; `app` if nothing is left.
 */
export function defaultName(script: string): string {
  const base = basename(script, extname(script))
  const cleaned = base.replace(/[^A-Za-z0-9._-]/g, '-').replace(/^[.-]+/, '').slice(0, NAME_MAX)
  return nameProblem(cleaned) === undefined ? cleaned : 'app'
}

/** The directory for this user's control sockets (not created or checked here). */
export function runtimeDir(o: RuntimeDirOptions = {}): string {
  const env = o.env ?? process.env
  const xdg = env.XDG_RUNTIME_DIR
  if (xdg !== undefined && xdg !== '' && isAbsolute(xdg)) return join(xdg, 'handover')
  const uid = euid(o)
  if (uid === 0) return '/run/handover'
  return join(env.TMPDIR !== undefined && isAbsolute(env.TMPDIR) ? env.TMPDIR : tmpdir(), `handover-${uid}`)
}

function unsafe(dir: string, why: string): HandoverError {
  return new HandoverError('ERR_UNSAFE_RUNTIME_DIR', `${dir} cannot hold control sockets: ${why}`, { address: dir })
}

/** Throws unless `st` (from lstat) is a directory this user owns with no group or other bits. */
function checkDir(dir: string, st: Stats, uid: number): void {
  if (st.isSymbolicLink()) throw unsafe(dir, 'it is a symbolic link (it is never followed); remove it')
  if (!st.isDirectory()) throw unsafe(dir, 'it is not a directory; remove it')
  if (uid >= 0 && st.uid !== uid) throw unsafe(dir, `it belongs to uid ${st.uid}, not to this user (uid ${uid}); remove it`)
  if ((st.mode & 0o077) !== 0) throw unsafe(dir, `its mode is ${(st.mode & 0o7777).toString(8).padStart(4, '0')}, not 0700: others could reach or plant sockets there (chmod 700 it, or remove it)`)
}

/**
 * A parent that others may write to must be sticky (/tmp), or they could
 * rename our directory away and put their own, or a symlink, in its place.
 */
function checkParent(dir: string): void {
  const parent = dirname(dir)
  let st: Stats
  try {
    // stat, not lstat: the parent is the session's or the system's (/tmp may
    // be a link to /private/tmp); only our own directory must not be a link.
    st = statSync(parent)
  } catch (err) {
    throw unsafe(dir, `its parent ${parent} cannot be read (${(err as NodeJS.ErrnoException).code})`)
  }
  if ((st.mode & 0o022) !== 0 && (st.mode & 0o1000) === 0) throw unsafe(dir, `its parent ${parent} may be written by others and is not sticky`)
}

function lstatOrUndefined(path: string): Stats | undefined {
  try {
    return lstatSync(path)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw err
  }
}

/**
 * Creates the directory (0700) if it is missing, checks it either way, and
 * returns it. The parent must exist: $XDG_RUNTIME_DIR is the session's, /run
 * and the temp directory are the system's.
 */
export function ensureRuntimeDir(o: RuntimeDirOptions = {}): string {
  const dir = runtimeDir(o)
  checkParent(dir)
  try {
    // Not recursive: a missing parent is an error, not something to make.
    mkdirSync(dir, { mode: 0o700 })
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    if (code !== 'EEXIST') throw unsafe(dir, `it cannot be created (${code}: ${(err as Error).message})`)
  }
  // Created just now or found: the same checks (lstat: a symlink put there first is not followed).
  checkDir(dir, lstatSync(dir), euid(o))
  return dir
}

/** The control socket path for service `name`, its directory created and checked. For `handover run`. */
export function socketPathFor(name: string, o: RuntimeDirOptions = {}): string {
  return join(ensureRuntimeDir(o), `${checkName(name)}${SUFFIX}`)
}

/** The names of the sockets in the directory, sorted; [] if there is no directory. Never creates it. */
export function listNames(o: RuntimeDirOptions = {}): string[] {
  const dir = runtimeDir(o)
  const st = lstatOrUndefined(dir)
  if (st === undefined) return []
  checkDir(dir, st, euid(o))
  return readdirSync(dir, { withFileTypes: true })
    .filter((e) => e.isSocket() && e.name.endsWith(SUFFIX) && nameProblem(e.name.slice(0, -SUFFIX.length)) === undefined)
    .map((e) => e.name.slice(0, -SUFFIX.length))
    .sort()
}

/**
 * For `handover status|upgrade [name]`: the socket of service `name`, or,
 * without a name, of the one service there is. Throws ERR_NO_SERVER when
 * there is none (or none of that name), ERR_AMBIGUOUS_SERVER with the names
 * when there are several and no name was given.
 */
export function findSocket(name: string | undefined, o: RuntimeDirOptions = {}): string {
  const dir = runtimeDir(o)
  const names = listNames(o)
  const running = names.length === 0 ? 'none is there' : `there: ${names.join(', ')}`
  if (name !== undefined) {
    checkName(name)
    if (!names.includes(name)) throw new HandoverError('ERR_NO_SERVER', `no control socket named ${JSON.stringify(name)} in ${dir} (${running}); is it running as this user, or with --control-socket elsewhere (then pass --socket)?`, { address: dir })
    return join(dir, `${name}${SUFFIX}`)
  }
  if (names.length === 1) return join(dir, `${names[0]}${SUFFIX}`)
  if (names.length === 0) throw new HandoverError('ERR_NO_SERVER', `no control socket in ${dir}: no handover run of this user is running there; pass --socket PATH for one elsewhere`, { address: dir })
  throw new HandoverError('ERR_AMBIGUOUS_SERVER', `${names.length} servers have control sockets in ${dir} (${names.join(', ')}): name one, e.g. handover status ${names[0]}`, { address: dir })
}

/**
 * Whether something accepts connections at the unix socket `path`. A socket
 * file left by a server that was killed (SIGKILL, a crash) refuses them.
 * A connect that neither succeeds nor fails within `timeoutMs` is a server
 * with a full queue: alive.
 */
export function socketAnswers(path: string, timeoutMs = 1_000): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(path)
    const done = (alive: boolean): void => {
      clearTimeout(timer)
      socket.destroy()
      resolve(alive)
    }
    const timer = setTimeout(() => done(true), timeoutMs)
    socket.on('connect', () => done(true))
    socket.on('error', (err: NodeJS.ErrnoException) => done(err.code !== 'ECONNREFUSED' && err.code !== 'ENOENT'))
  })
}

/**
 * findSocket(), but without a name, sockets left by servers that are no
 * longer running do not count: after a SIGKILL the dead service's file
 * stays until it starts again, and must not make `handover status`
 * ambiguous. A name is taken as given (the connection then says whether it runs).
 */
export async function findLiveSocket(name: string | undefined, o: RuntimeDirOptions = {}): Promise<string> {
  if (name !== undefined) return findSocket(name, o)
  try {
    return findSocket(undefined, o)
  } catch (err) {
    if ((err as HandoverError).code !== 'ERR_AMBIGUOUS_SERVER') throw err
  }
  const dir = runtimeDir(o)
  const names = listNames(o)
  const answers = await Promise.all(names.map((n) => socketAnswers(join(dir, `${n}${SUFFIX}`))))
  const live = names.filter((_, i) => answers[i])
  const dead = names.filter((_, i) => !answers[i])
  const left = dead.length === 0 ? '' : `; ${dead.join(', ')} ${dead.length === 1 ? 'is a socket' : 'are sockets'} left by servers that are not running`
  if (live.length === 1) return join(dir, `${live[0]}${SUFFIX}`)
  if (live.length === 0) throw new HandoverError('ERR_NO_SERVER', `no control socket in ${dir} answers${left}`, { address: dir })
  throw new HandoverError('ERR_AMBIGUOUS_SERVER', `${live.length} servers have control sockets in ${dir} (${live.join(', ')}): name one, e.g. handover status ${live[0]}${left}`, { address: dir })
}
