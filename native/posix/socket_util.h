// What every POSIX source needs to open a socket: it must be close-on-exec
// from the start, or it leaks into every process the application spawns.
#pragma once

#include <errno.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

namespace handover {

inline int NewSocket(int domain, int type) {
#ifdef SOCK_CLOEXEC
  int fd = socket(domain, type | SOCK_CLOEXEC, 0);
  if (fd >= 0 || errno != EINVAL) return fd;
#endif
  // macOS has no SOCK_CLOEXEC. Handover never forks from another thread,
  // so setting the flag right away leaves no window for a leak.
  int plain = socket(domain, type, 0);
  if (plain < 0) return plain;
  if (fcntl(plain, F_SETFD, FD_CLOEXEC) == -1) {
    int err = errno;
    close(plain);
    errno = err;
    return -1;
  }
  return plain;
}

}  // namespace handover
