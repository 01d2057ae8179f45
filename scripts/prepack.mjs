// `npm pack` and `npm publish` run this as prepack: the prebuilt addons the
// tarball carries. dist/ comes from the prepare script (`npm run build:ts`),
// which npm runs right after prepack for both commands (and after
// `npm install` in a checkout).
//
// - linux-x64 is built here every time (prebuildify, this machine's compiler).
// - linux-arm64 and win32-x64 are cross-built when their cross-compiler is on
//   PATH. Without it, `npm pack` keeps a prebuild already in prebuilds/ (say,
//   one copied from CI, or from an earlier pack: its date is printed), and
//   otherwise packs without that platform: its users then build from source
//   at install (node-gyp-build's install script).
// - `npm publish` (npm_command=publish) insists on all three, built from this
//   checkout: it fails before building anything if a cross-compiler is missing.
//
// Either way, the last line on stderr says which platforms the tarball carries.
import { execFileSync } from 'node:child_process'
import { existsSync, readdirSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const PREBUILDS = join(ROOT, 'prebuilds')

/** The platforms a release carries: how each is built, and what that needs on PATH. */
const PLATFORMS = [
  { platform: 'linux-x64', script: 'prebuild:linux-x64', tools: [] },
  {
    platform: 'linux-arm64',
    script: 'prebuild:linux-arm64',
    tools: ['aarch64-linux-gnu-g++'],
    install: 'bash scripts/install-arm64-toolchain.sh',
  },
  {
    platform: 'win32-x64',
    script: 'prebuild:win32',
    tools: ['x86_64-w64-mingw32-g++-posix', 'x86_64-w64-mingw32-dlltool'],
    install: 'bash scripts/install-windows-toolchain.sh',
  },
]

const say = (line) => process.stderr.write(`prepack: ${line}\n`)

function onPath(tool) {
  for (const dir of (process.env.PATH ?? '').split(':')) {
    if (!dir) continue
    try {
      if (statSync(join(dir, tool)).isFile()) return true
    } catch {
      // not in this directory
    }
  }
  return false
}

/** The .node files in prebuilds/<platform>/, if any. */
function binaries(platform) {
  const dir = join(PREBUILDS, platform)
  return existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith('.node')).map((f) => join(dir, f)) : []
}

const publishing = process.env.npm_command === 'publish'
const missing = (p) => p.tools.filter((tool) => !onPath(tool))

if (publishing) {
  const cannot = PLATFORMS.filter((p) => missing(p).length > 0)
  if (cannot.length > 0) {
    for (const p of cannot) say(`${p.platform} needs ${missing(p).join(' and ')} (${p.install})`)
    say('npm publish needs every prebuild (linux-x64, linux-arm64, win32-x64) built from this checkout; nothing was published')
    process.exit(1)
  }
}

const notes = new Map()
for (const p of PLATFORMS) {
  const absent = missing(p)
  if (absent.length === 0) {
    execFileSync('npm', ['run', p.script], { cwd: ROOT, stdio: ['ignore', 'inherit', 'inherit'] })
    continue
  }
  const present = binaries(p.platform)
  if (present.length === 0) {
    notes.set(p.platform, `no ${absent.join(' or ')} here: ${p.install}`)
    continue
  }
  const built = new Date(Math.max(...present.map((file) => statSync(file).mtimeMs))).toISOString()
  say(`${p.platform}: kept the prebuild already in prebuilds/, dated ${built} (no ${absent.join(' or ')} here to rebuild it)`)
}

const carried = PLATFORMS.map((p) => p.platform).filter((platform) => binaries(platform).length > 0)
const without = [...notes].map(([platform, why]) => `${platform} (${why})`)
say(`this package carries prebuilds for ${carried.join(', ') || 'no platform'}` +
  (without.length > 0 ? `; not for ${without.join(', ')}: there the install builds the addon from source, and npm publish refuses` : ''))
