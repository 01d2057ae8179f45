import { getSystemErrorName } from 'node:util'

/** The codes handover itself gives its errors. System errors keep their errno name. */
export type HandoverErrorCode =
  | 'ERR_NOT_READY'
  | 'ERR_PARENT_NOT_EXITED'
  | 'ERR_UPGRADE_IN_PROGRESS'
  | 'ERR_STOPPED'
  | 'ERR_ALREADY_UPGRADED'
  | 'ERR_CHILD_EXITED'
  | 'ERR_UPGRADE_TIMEOUT'
  | 'ERR_SPAWN_FAILED'
  | 'ERR_PROTOCOL'
  | 'ERR_INVALID_NETWORK'
  | 'ERR_INVALID_ADDRESS'
  | 'ERR_INVALID_OPTION'
  | 'ERR_INVALID_ARGUMENT'
  | 'ERR_ALREADY_CREATED'
  | 'ERR_BAD_INHERITANCE'
  | 'ERR_ABORTED'
  | 'ERR_TIMEOUT'
  | 'ERR_UNSUPPORTED'
  | 'ERR_NATIVE_ADDON'
  | 'ERR_BAD_COMMAND'
  | 'ERR_SUPERVISOR'
  | 'ERR_INCOMPATIBLE'
  | 'ERR_NOT_HEALTHY'
  | 'ERR_NO_ROLLBACK'
  | 'ERR_UNSAFE_RUNTIME_DIR'
  | 'ERR_NO_SERVER'
  | 'ERR_AMBIGUOUS_SERVER'

export interface HandoverErrorDetails {
  cause?: unknown
  /** ERR_CHILD_EXITED: the child's exit code, or null if a signal ended it. */
  exitCode?: number | null
  /** ERR_CHILD_EXITED: the signal that ended the child, or null. */
  signal?: NodeJS.Signals | null
  /** The child's pid, for errors about a child. */
  pid?: number
  /** System errors: the address the failing call was about. */
  address?: string
  errno?: number
  syscall?: string
}

/**
 * Every error handover throws or rejects with. `code` is stable: one of
 * HandoverErrorCode, or an errno name (EADDRINUSE, EACCES, ...) for a failed
 * system call, in which case `errno`, `syscall` and `address` are set too.
 */
export class HandoverError extends Error {
  readonly code: HandoverErrorCode | (string & {})
  // Declared only: each is defined on an error when it applies, not as undefined everywhere.
  declare readonly exitCode?: number | null
  declare readonly signal?: NodeJS.Signals | null
  declare readonly pid?: number
  declare readonly address?: string
  declare readonly errno?: number
  declare readonly syscall?: string

  constructor(code: HandoverErrorCode | (string & {}), message: string, details: HandoverErrorDetails = {}) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause })
    this.name = 'HandoverError'
    this.code = code
    for (const key of ['exitCode', 'signal', 'pid', 'address', 'errno', 'syscall'] as const) {
      if (details[key] !== undefined) Object.defineProperty(this, key, { value: details[key], enumerable: true })
    }
  }
}

/**
 * Turns an error thrown by the addon (which carries a positive, OS-native
 * `errno` and a `syscall`) into a HandoverError named after the errno, with
 * the address in the message.
 */
export function systemError(err: unknown, address: string): HandoverError {
  // Already typed (e.g. ERR_UNSUPPORTED from a backend): keep it.
  if (err instanceof HandoverError) return err
  const raw = err as { errno?: unknown; syscall?: unknown; code?: unknown; message?: string }
  if (typeof raw?.errno !== 'number') {
    return new HandoverError('ERR_NATIVE_ADDON', `${raw?.message ?? String(err)} (${address})`, { cause: err })
  }
  const errno = raw.errno
  const syscall = typeof raw.syscall === 'string' ? raw.syscall : 'socket'
  let code: string
  try {
    // Windows: the backend names Winsock numbers itself (10048 is EADDRINUSE).
    code = typeof raw.code === 'string' && /^E[A-Z0-9]+$/.test(raw.code) ? raw.code : getSystemErrorName(-errno)
  } catch {
    code = `E${errno}`
  }
  const reason = DESCRIPTIONS[code] ?? `error ${errno}`
  return new HandoverError(code, `${syscall} ${code}: ${reason} ${address}`, { errno, syscall, address })
}

const DESCRIPTIONS: Record<string, string> = {
  EADDRINUSE: 'address already in use',
  EADDRNOTAVAIL: 'address not available',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  ENAMETOOLONG: 'unix socket path too long',
  EEXIST: 'a file that is not a socket is in the way at',
  ENOENT: 'no such file or directory',
  EAFNOSUPPORT: 'address family not supported',
  EBADF: 'bad file descriptor',
  ENOTSOCK: 'not a socket',
  EMFILE: 'too many open files',
  ECONNREFUSED: 'nothing is listening at',
  EAGAIN: 'the receiver is not keeping up at',
}

/**
 * The errno names Node gives system errors (util.getSystemErrorName, libuv's
 * list, Node 20 to 26: ENOEXEC is new in 22), which a failed system call's
 * HandoverError keeps as its code.
 */
export const SYSTEM_ERROR_CODES = [
  'E2BIG', 'EACCES', 'EADDRINUSE', 'EADDRNOTAVAIL', 'EAFNOSUPPORT', 'EAGAIN', 'EAI_ADDRFAMILY', 'EAI_AGAIN',
  'EAI_BADFLAGS', 'EAI_BADHINTS', 'EAI_CANCELED', 'EAI_FAIL', 'EAI_FAMILY', 'EAI_MEMORY', 'EAI_NODATA',
  'EAI_NONAME', 'EAI_OVERFLOW', 'EAI_PROTOCOL', 'EAI_SERVICE', 'EAI_SOCKTYPE', 'EALREADY', 'EBADF', 'EBUSY',
  'ECANCELED', 'ECHARSET', 'ECONNABORTED', 'ECONNREFUSED', 'ECONNRESET', 'EDESTADDRREQ', 'EEXIST', 'EFAULT',
  'EFBIG', 'EFTYPE', 'EHOSTDOWN', 'EHOSTUNREACH', 'EILSEQ', 'EINTR', 'EINVAL', 'EIO', 'EISCONN', 'EISDIR',
  'ELOOP', 'EMFILE', 'EMLINK', 'EMSGSIZE', 'ENAMETOOLONG', 'ENETDOWN', 'ENETUNREACH', 'ENFILE', 'ENOBUFS',
  'ENODATA', 'ENODEV', 'ENOENT', 'ENOEXEC', 'ENOMEM', 'ENONET', 'ENOPROTOOPT', 'ENOSPC', 'ENOSYS', 'ENOTCONN', 'ENOTDIR',
  'ENOTEMPTY', 'ENOTSOCK', 'ENOTSUP', 'ENOTTY', 'ENXIO', 'EOF', 'EOVERFLOW', 'EPERM', 'EPIPE', 'EPROTO',
  'EPROTONOSUPPORT', 'EPROTOTYPE', 'ERANGE', 'EREMOTEIO', 'EROFS', 'ESHUTDOWN', 'ESOCKTNOSUPPORT', 'ESPIPE',
  'ESRCH', 'ETIMEDOUT', 'ETXTBSY', 'EUNATCH', 'EXDEV', 'UNKNOWN',
] as const

export type SystemErrorCode = (typeof SYSTEM_ERROR_CODES)[number]

/** Every code a HandoverError can have that handover knows of: its own, and Node's errno names. */
export type KnownErrorCode = HandoverErrorCode | SystemErrorCode

/**
 * What `isHandoverError(err, code)` lets `code` be: a known code; another
 * `E…` name (Winsock's extra names, an unnamed `E<errno>`); or a plain
 * `string`, checked at run time. Anything else becomes a sentence that tsc
 * prints in its error ("ERR_NOPE is not a handover error code: see
 * HandoverErrorCode"), where a bare `never` would say nothing.
 */
export type CheckedCode<C extends string> = string extends C
  ? C
  : C extends KnownErrorCode
    ? C
    : C extends `ERR_${string}`
      ? `${C} is not a handover error code: see HandoverErrorCode`
      : C extends `E${string}`
        ? C
        : `${C} is neither a handover error code nor an errno name`

/**
 * True if `err` is a HandoverError (with this `code`, if one is given). In
 * TypeScript `code` completes every known code, and a misspelled one does
 * not compile. `(string & {})` in the constraint keeps that completion while
 * still taking a code only known at run time.
 */
export function isHandoverError<C extends KnownErrorCode | (string & {})>(err: unknown, code?: CheckedCode<C>): err is HandoverError {
  return err instanceof HandoverError && (code === undefined || err.code === code)
}
