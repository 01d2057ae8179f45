// POSIX half of the addon: what JavaScript cannot do with a socket fd.
// Every fd created or duplicated here is close-on-exec. The fds reach the
// next generation only through spawn's stdio array, where libuv dup2()s them
// in the forked child; clearing FD_CLOEXEC here would leak every listener
// into every other process the application spawns.

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stddef.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <string>

#include "../inet_util.h"
#include "../napi_util.h"
#include "notify.h"
#include "supervise.h"
#include "socket_util.h"

namespace handover {
namespace {

constexpr int kStream = 1;
constexpr int kDgram = 2;

// Closes fd and restores errno, so the caller can still report it.
int Fail(int fd) {
  int err = errno;
  if (fd >= 0) close(fd);
  errno = err;
  return -1;
}

int BindInet(int kind, int family, const std::string& ip, int port, bool v6only, int backlog) {
  sockaddr_storage storage;
  memset(&storage, 0, sizeof(storage));
  socklen_t len;
  if (family == 4) {
    auto* sin = reinterpret_cast<sockaddr_in*>(&storage);
    sin->sin_family = AF_INET;
    sin->sin_port = htons(static_cast<uint16_t>(port));
    if (inet_pton(AF_INET, ip.c_str(), &sin->sin_addr) != 1) {
      errno = EINVAL;
      return -1;
    }
    len = sizeof(sockaddr_in);
  } else {
    auto* sin6 = reinterpret_cast<sockaddr_in6*>(&storage);
    sin6->sin6_family = AF_INET6;
    sin6->sin6_port = htons(static_cast<uint16_t>(port));
    if (inet_pton(AF_INET6, ip.c_str(), &sin6->sin6_addr) != 1) {
      errno = EINVAL;
      return -1;
    }
    len = sizeof(sockaddr_in6);
  }

  int fd = NewSocket(storage.ss_family, kind == kStream ? SOCK_STREAM : SOCK_DGRAM);
  if (fd < 0) return -1;
  int one = 1;
  // Lets a restarted server bind while old connections sit in TIME_WAIT.
  if (kind == kStream && setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) == -1) {
    return Fail(fd);
  }
  if (family == 6) {
    int flag = v6only ? 1 : 0;
    if (setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &flag, sizeof(flag)) == -1) return Fail(fd);
  }
  if (bind(fd, reinterpret_cast<sockaddr*>(&storage), len) == -1) return Fail(fd);
  if (kind == kStream && listen(fd, backlog) == -1) return Fail(fd);
  return fd;
}

// 0: nothing accepts connections at addr; 1: something does; -1: error.
int SomethingListens(const sockaddr_un& addr, socklen_t len) {
  int probe = NewSocket(AF_UNIX, SOCK_STREAM);
  if (probe < 0) return -1;
  // Non-blocking, so a listener with a full backlog answers EAGAIN instead
  // of stalling the event loop; that still means "in use".
  fcntl(probe, F_SETFL, fcntl(probe, F_GETFL) | O_NONBLOCK);
  int rc = connect(probe, reinterpret_cast<const sockaddr*>(&addr), len);
  int err = errno;
  close(probe);
  if (rc == 0) return 1;
  if (err == ECONNREFUSED || err == ENOENT) return 0;
  return 1;
}

int BindUnix(const std::string& path, bool abstract, int backlog) {
  sockaddr_un addr;
  memset(&addr, 0, sizeof(addr));
  addr.sun_family = AF_UNIX;
  // A path needs room for its terminating NUL, an abstract name for its
  // leading one.
  size_t room = sizeof(addr.sun_path) - 1;
  if (path.empty() || path.size() > room || path.find('\0') != std::string::npos) {
    errno = path.empty() ? EINVAL : (path.size() > room ? ENAMETOOLONG : EINVAL);
    return -1;
  }
  memcpy(addr.sun_path + (abstract ? 1 : 0), path.data(), path.size());
  socklen_t len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path.size() + 1);
  if (!abstract) len = sizeof(addr);

  int fd = NewSocket(AF_UNIX, SOCK_STREAM);
  if (fd < 0) return -1;
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), len) == -1) {
    if (errno != EADDRINUSE || abstract) return Fail(fd);
    // A file is in the way. Replace it only if it is a socket nobody
    // listens on: the leftover of a process that died without stop().
    struct stat st;
    if (lstat(path.c_str(), &st) == -1) return Fail(fd);
    if (!S_ISSOCK(st.st_mode)) {
      errno = EEXIST;
      return Fail(fd);
    }
    int listens = SomethingListens(addr, len);
    if (listens != 0) {
      if (listens == 1) errno = EADDRINUSE;
      return Fail(fd);
    }
    if (unlink(path.c_str()) == -1 && errno != ENOENT) return Fail(fd);
    if (bind(fd, reinterpret_cast<sockaddr*>(&addr), len) == -1) return Fail(fd);
  }
  if (listen(fd, backlog) == -1) {
    int err = errno;
    if (!abstract) unlink(path.c_str());
    close(fd);
    errno = err;
    return -1;
  }
  return fd;
}

// bindInet(kind, family, ip, port, v6only, backlog) -> fd
napi_value BindInetJs(napi_env env, napi_callback_info info) {
  Args a;
  int kind, family, port, backlog;
  bool v6only;
  std::string ip;
  if (!a.Read(env, info) || a.count < 6 || !GetInt(env, a.values[0], &kind) ||
      !GetInt(env, a.values[1], &family) || !GetString(env, a.values[2], &ip) ||
      !GetInt(env, a.values[3], &port) || !GetBool(env, a.values[4], &v6only) ||
      !GetInt(env, a.values[5], &backlog) || (kind != kStream && kind != kDgram) ||
      (family != 4 && family != 6) || port < 0 || port > 65535) {
    return ThrowTypeError(env, "bindInet(kind, family, ip, port, v6only, backlog)");
  }
  int fd = BindInet(kind, family, ip, port, v6only, backlog);
  if (fd < 0) return ThrowSystemError(env, kind == kStream ? "listen" : "bind", errno);
  return MakeInt(env, fd);
}

// bindUnix(path, abstract, backlog) -> fd
napi_value BindUnixJs(napi_env env, napi_callback_info info) {
  Args a;
  std::string path;
  bool abstract;
  int backlog;
  if (!a.Read(env, info) || a.count < 3 || !GetString(env, a.values[0], &path) ||
      !GetBool(env, a.values[1], &abstract) || !GetInt(env, a.values[2], &backlog)) {
    return ThrowTypeError(env, "bindUnix(path, abstract, backlog)");
  }
  int fd = BindUnix(path, abstract, backlog);
  if (fd < 0) return ThrowSystemError(env, "listen", errno);
  return MakeInt(env, fd);
}

// duplicate(fd) -> a new close-on-exec fd for the same socket
napi_value DuplicateJs(napi_env env, napi_callback_info info) {
  Args a;
  int fd;
  if (!a.Read(env, info) || a.count < 1 || !GetInt(env, a.values[0], &fd)) {
    return ThrowTypeError(env, "duplicate(fd)");
  }
  int copy = fcntl(fd, F_DUPFD_CLOEXEC, 3);
  if (copy < 0) return ThrowSystemError(env, "dup", errno);
  return MakeInt(env, copy);
}

// libuv's posix_spawn path on macOS clears O_NONBLOCK on every fd it passes,
// in the parent; the open file description is shared, so the old process's
// own listener turns blocking. This puts the flag back.
napi_value SetNonBlockingJs(napi_env env, napi_callback_info info) {
  Args a;
  int fd;
  if (!a.Read(env, info) || a.count < 1 || !GetInt(env, a.values[0], &fd)) {
    return ThrowTypeError(env, "setNonBlocking(fd)");
  }
  int flags = fcntl(fd, F_GETFL);
  if (flags == -1 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) == -1) {
    return ThrowSystemError(env, "fcntl", errno);
  }
  return nullptr;
}

// inspect(fd) -> { family, type, listening, address?, port?, path?, abstract?, v6only? }
napi_value InspectJs(napi_env env, napi_callback_info info) {
  Args a;
  int fd;
  if (!a.Read(env, info) || a.count < 1 || !GetInt(env, a.values[0], &fd)) {
    return ThrowTypeError(env, "inspect(fd)");
  }
  int type = 0;
  socklen_t optlen = sizeof(type);
  if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &optlen) == -1) {
    return ThrowSystemError(env, "getsockopt", errno);
  }
  sockaddr_storage storage;
  socklen_t len = sizeof(storage);
  memset(&storage, 0, sizeof(storage));
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&storage), &len) == -1) {
    return ThrowSystemError(env, "getsockname", errno);
  }
  int accepting = 0;
  optlen = sizeof(accepting);
#ifdef SO_ACCEPTCONN
  if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &accepting, &optlen) == -1) accepting = 0;
#endif

  napi_value out;
  napi_create_object(env, &out);
  SetString(env, out, "type",
            type == SOCK_STREAM ? "stream" : type == SOCK_DGRAM ? "dgram"
                                           : type == SOCK_SEQPACKET ? "seqpacket" : "other");
  SetBool(env, out, "listening", accepting != 0);
  int v6only = 0;
  if (storage.ss_family == AF_INET6) {
    optlen = sizeof(v6only);
    getsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, &optlen);
  }
  if (SetInetAddress(env, out, storage, v6only != 0)) return out;
  if (storage.ss_family == AF_UNIX) {
    auto* sun = reinterpret_cast<sockaddr_un*>(&storage);
    size_t n = len > offsetof(sockaddr_un, sun_path) ? len - offsetof(sockaddr_un, sun_path) : 0;
    bool abstract = n > 0 && sun->sun_path[0] == '\0';
    std::string name = abstract ? std::string(sun->sun_path + 1, n - 1)
                                : std::string(sun->sun_path, strnlen(sun->sun_path, n));
    SetString(env, out, "family", "unix");
    SetString(env, out, "path", name);
    SetBool(env, out, "abstract", abstract);
  } else {
    SetString(env, out, "family", "other");
  }
  return out;
}

napi_value Init(napi_env env, napi_value exports) {
  Export(env, exports, "bindInet", BindInetJs);
  Export(env, exports, "bindUnix", BindUnixJs);
  Export(env, exports, "duplicate", DuplicateJs);
  Export(env, exports, "inspect", InspectJs);
  Export(env, exports, "setNonBlocking", SetNonBlockingJs);
  ExportNotify(env, exports);
  ExportSupervise(env, exports);
  return exports;
}

}  // namespace
}  // namespace handover

NAPI_MODULE(NODE_GYP_MODULE_NAME, handover::Init)
