// POSIX half of the addon: what JavaScript cannot do with a socket fd.
// Every fd created or duplicated here is close-on-exec. The fds reach the
// next generation only through spawn's stdio array, where libuv dup2()s them
// in the forked child; clearing FD_CLOEXEC here would leak every listener
// into every other process the application spawns.

#include <stddef.h>
#include <sys/stat.h>
#include <sys/un.h>

#include "../addon.h"  // and the socket headers

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
  socklen_t len = InetAddress(family, ip, port, &storage);
  if (len == 0) {
    errno = EINVAL;
    return -1;
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

// 1: path is a socket file (not followed if a symlink); 0: something else;
// -1: error. On glibc through statx (2.28): stat, lstat and fstat need
// GLIBC_2.33 when built against glibc >= 2.33, and Node runs on 2.28.
int IsSocketFile(const std::string& path) {
#ifdef __GLIBC__
  struct statx st;
  if (statx(AT_FDCWD, path.c_str(), AT_SYMLINK_NOFOLLOW, STATX_TYPE, &st) == -1) return -1;
  return S_ISSOCK(st.stx_mode) ? 1 : 0;
#else
  struct stat st;
  if (lstat(path.c_str(), &st) == -1) return -1;
  return S_ISSOCK(st.st_mode) ? 1 : 0;
#endif
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
    int socket_file = IsSocketFile(path);
    if (socket_file != 1) {
      if (socket_file == 0) errno = EEXIST;
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
Napi::Value BindInetJs(const Napi::CallbackInfo& info) {
  int kind, family, port, backlog;
  bool v6only;
  std::string ip;
  if (!Get(info, 0, &kind) || !Get(info, 1, &family) || !Get(info, 2, &ip) || !Get(info, 3, &port) ||
      !Get(info, 4, &v6only) || !Get(info, 5, &backlog) || (kind != kStream && kind != kDgram) ||
      (family != 4 && family != 6) || port < 0 || port > 65535) {
    return ThrowTypeError(info.Env(), "bindInet(kind, family, ip, port, v6only, backlog)");
  }
  int fd = BindInet(kind, family, ip, port, v6only, backlog);
  if (fd < 0) return ThrowSystemError(info.Env(), kind == kStream ? "listen" : "bind", errno);
  return Napi::Number::New(info.Env(), fd);
}

// bindUnix(path, abstract, backlog) -> fd
Napi::Value BindUnixJs(const Napi::CallbackInfo& info) {
  std::string path;
  bool abstract;
  int backlog;
  if (!Get(info, 0, &path) || !Get(info, 1, &abstract) || !Get(info, 2, &backlog)) {
    return ThrowTypeError(info.Env(), "bindUnix(path, abstract, backlog)");
  }
  int fd = BindUnix(path, abstract, backlog);
  if (fd < 0) return ThrowSystemError(info.Env(), "listen", errno);
  return Napi::Number::New(info.Env(), fd);
}

// duplicate(fd) -> a new close-on-exec fd for the same socket
Napi::Value DuplicateJs(const Napi::CallbackInfo& info) {
  int fd;
  if (!Get(info, 0, &fd)) return ThrowTypeError(info.Env(), "duplicate(fd)");
  int copy = fcntl(fd, F_DUPFD_CLOEXEC, 3);
  if (copy < 0) return ThrowSystemError(info.Env(), "dup", errno);
  return Napi::Number::New(info.Env(), copy);
}

// libuv's posix_spawn path on macOS clears O_NONBLOCK on every fd it passes,
// in the parent; the open file description is shared, so the old process's
// own listener turns blocking. This puts the flag back.
Napi::Value SetNonBlockingJs(const Napi::CallbackInfo& info) {
  int fd;
  if (!Get(info, 0, &fd)) return ThrowTypeError(info.Env(), "setNonBlocking(fd)");
  int flags = fcntl(fd, F_GETFL);
  if (flags == -1 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) == -1) {
    return ThrowSystemError(info.Env(), "fcntl", errno);
  }
  return Napi::Value();
}

// inspect(fd) -> { family, type, listening, address?, port?, path?, abstract?, v6only? }
Napi::Value InspectJs(const Napi::CallbackInfo& info) {
  int fd;
  if (!Get(info, 0, &fd)) return ThrowTypeError(info.Env(), "inspect(fd)");
  int type = 0;
  socklen_t optlen = sizeof(type);
  if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &optlen) == -1) {
    return ThrowSystemError(info.Env(), "getsockopt", errno);
  }
  sockaddr_storage storage;
  socklen_t len = sizeof(storage);
  memset(&storage, 0, sizeof(storage));
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&storage), &len) == -1) {
    return ThrowSystemError(info.Env(), "getsockname", errno);
  }
  int accepting = 0;
  optlen = sizeof(accepting);
#ifdef SO_ACCEPTCONN
  if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &accepting, &optlen) == -1) accepting = 0;
#endif

  Napi::Object out = Napi::Object::New(info.Env());
  out.Set("type", type == SOCK_STREAM ? "stream" : type == SOCK_DGRAM ? "dgram"
                                     : type == SOCK_SEQPACKET ? "seqpacket" : "other");
  out.Set("listening", accepting != 0);
  int v6only = 0;
  if (storage.ss_family == AF_INET6) {
    optlen = sizeof(v6only);
    getsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, &optlen);
  }
  if (SetInetAddress(out, storage, v6only != 0)) return out;
  if (storage.ss_family == AF_UNIX) {
    auto* sun = reinterpret_cast<sockaddr_un*>(&storage);
    size_t n = len > offsetof(sockaddr_un, sun_path) ? len - offsetof(sockaddr_un, sun_path) : 0;
    bool abstract = n > 0 && sun->sun_path[0] == '\0';
    std::string name = abstract ? std::string(sun->sun_path + 1, n - 1)
                                : std::string(sun->sun_path, strnlen(sun->sun_path, n));
    out.Set("family", "unix");
    out.Set("path", name);
    out.Set("abstract", abstract);
  } else {
    out.Set("family", "other");
  }
  return out;
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("bindInet", Napi::Function::New(env, BindInetJs, "bindInet"));
  exports.Set("bindUnix", Napi::Function::New(env, BindUnixJs, "bindUnix"));
  exports.Set("duplicate", Napi::Function::New(env, DuplicateJs, "duplicate"));
  exports.Set("inspect", Napi::Function::New(env, InspectJs, "inspect"));
  exports.Set("setNonBlocking", Napi::Function::New(env, SetNonBlockingJs, "setNonBlocking"));
  exports.Set("sdNotify", Napi::Function::New(env, SdNotifyJs, "sdNotify"));
  exports.Set("passFd", Napi::Function::New(env, PassFdJs, "passFd"));
  exports.Set("askForFd", Napi::Function::New(env, AskForFdJs, "askForFd"));
  exports.Set("reapPid", Napi::Function::New(env, ReapPidJs, "reapPid"));
  return exports;
}

}  // namespace
}  // namespace handover

using handover::Init;
NODE_API_MODULE(NODE_GYP_MODULE_NAME, Init)
