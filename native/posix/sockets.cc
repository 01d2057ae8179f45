// POSIX half of the addon: what JavaScript cannot do with a socket fd.
// Every fd created or duplicated here is close-on-exec. The fds reach the
// next generation only through spawn's stdio array, where libuv dup2()s them
// in the forked child; clearing FD_CLOEXEC here would leak every listener
// into every other process the application spawns.

#include <sys/stat.h>

#include "../addon.h"  // and the socket headers

namespace handover {
namespace {

// The kind argument of bindInet, as src/backend/posix-addon.ts names it.
constexpr int kStream = 1;
constexpr int kDgram = 2;

// Fills `addr` with a path or an abstract name (Linux); its length, or 0
// with errno set.
socklen_t UnixAddress(const std::string& path, bool abstract, sockaddr_un* addr) {
  memset(addr, 0, sizeof(*addr));
  addr->sun_family = AF_UNIX;
  if (path.empty() || path.find('\0') != std::string::npos) {
    errno = EINVAL;
    return 0;
  }
  // A path needs room for its terminating NUL, an abstract name for its
  // leading one.
  if (path.size() > sizeof(addr->sun_path) - 1) {
    errno = ENAMETOOLONG;
    return 0;
  }
  memcpy(addr->sun_path + (abstract ? 1 : 0), path.data(), path.size());
  // Abstract names count every byte, so the length must be exact.
  return static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path.size() + 1);
}

// True if path is a socket file (a symlink is not followed); false with
// errno set, EEXIST for a file of another type. On glibc through statx
// (2.28): stat, lstat and fstat need GLIBC_2.33 when built against glibc
// >= 2.33, and Node runs on 2.28.
bool IsSocketFile(const std::string& path) {
#ifdef __GLIBC__
  struct statx st;
  if (statx(AT_FDCWD, path.c_str(), AT_SYMLINK_NOFOLLOW, STATX_TYPE, &st) == -1) return false;
  mode_t mode = st.stx_mode;
#else
  struct stat st;
  if (lstat(path.c_str(), &st) == -1) return false;
  mode_t mode = st.st_mode;
#endif
  if (S_ISSOCK(mode)) return true;
  errno = EEXIST;
  return false;
}

// True if nothing accepts connections at addr; false with errno set,
// EADDRINUSE if something does.
bool NobodyListens(const sockaddr_un& addr, socklen_t len) {
  int probe = NewSocket(AF_UNIX, SOCK_STREAM);
  if (probe < 0) return false;
  // Non-blocking, so a listener with a full backlog answers EAGAIN instead
  // of stalling the event loop; that still means "in use".
  fcntl(probe, F_SETFL, fcntl(probe, F_GETFL) | O_NONBLOCK);
  int rc = connect(probe, reinterpret_cast<const sockaddr*>(&addr), len);
  int err = errno;
  close(probe);
  if (rc != 0 && (err == ECONNREFUSED || err == ENOENT)) return true;
  errno = EADDRINUSE;
  return false;
}

int BindUnix(const std::string& path, bool abstract, int backlog) {
  sockaddr_un addr;
  socklen_t len = UnixAddress(path, abstract, &addr);
  if (len == 0) return -1;
  int fd = NewSocket(AF_UNIX, SOCK_STREAM);
  if (fd < 0) return -1;
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), len) == -1) {
    if (errno != EADDRINUSE || abstract) return Fail(fd);
    // A file is in the way. Replace it only if it is a socket nobody
    // listens on: the leftover of a process that died without stop().
    if (!IsSocketFile(path) || !NobodyListens(addr, len)) return Fail(fd);
    if (unlink(path.c_str()) == -1 && errno != ENOENT) return Fail(fd);
    if (bind(fd, reinterpret_cast<sockaddr*>(&addr), len) == -1) return Fail(fd);
  }
  if (listen(fd, backlog) == -1) {
    // The file this call created is removed with the socket.
    int err = errno;
    if (!abstract) unlink(path.c_str());
    errno = err;
    return Fail(fd);
  }
  return fd;
}

Napi::Value BindInetJs(const Napi::CallbackInfo& info) {
  int kind, family, port, backlog;
  bool v6only;
  std::string ip;
  if (!GetArgs(info, &kind, &family, &ip, &port, &v6only, &backlog) || (kind != kStream && kind != kDgram) ||
      (family != 4 && family != 6) || port < 0 || port > 65535) {
    return ThrowTypeError(info.Env(), "bindInet(kind, family, ip, port, v6only, backlog)");
  }
  int fd = BindInet(kind == kStream ? SOCK_STREAM : SOCK_DGRAM, family, ip, port, v6only, backlog);
  if (fd < 0) return ThrowLastError(info.Env(), kind == kStream ? "listen" : "bind");
  return Napi::Number::New(info.Env(), fd);
}

Napi::Value BindUnixJs(const Napi::CallbackInfo& info) {
  std::string path;
  bool abstract;
  int backlog;
  if (!GetArgs(info, &path, &abstract, &backlog)) return ThrowTypeError(info.Env(), "bindUnix(path, abstract, backlog)");
  int fd = BindUnix(path, abstract, backlog);
  if (fd < 0) return ThrowLastError(info.Env(), "listen");
  return Napi::Number::New(info.Env(), fd);
}

// duplicate(fd) -> a new close-on-exec fd for the same socket
Napi::Value DuplicateJs(const Napi::CallbackInfo& info) {
  int fd;
  if (!GetArgs(info, &fd)) return ThrowTypeError(info.Env(), "duplicate(fd)");
  int copy = fcntl(fd, F_DUPFD_CLOEXEC, 3);
  if (copy < 0) return ThrowLastError(info.Env(), "dup");
  return Napi::Number::New(info.Env(), copy);
}

// libuv's posix_spawn path on macOS clears O_NONBLOCK on every fd it passes,
// in the parent; the open file description is shared, so the old process's
// own listener turns blocking. This puts the flag back.
Napi::Value SetNonBlockingJs(const Napi::CallbackInfo& info) {
  int fd;
  if (!GetArgs(info, &fd)) return ThrowTypeError(info.Env(), "setNonBlocking(fd)");
  int flags = fcntl(fd, F_GETFL);
  if (flags == -1 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) == -1) return ThrowLastError(info.Env(), "fcntl");
  return Napi::Value();
}

Napi::Value InspectJs(const Napi::CallbackInfo& info) {
  int fd;
  if (!GetArgs(info, &fd)) return ThrowTypeError(info.Env(), "inspect(fd)");
  return Inspect(info.Env(), fd);
}

// sd_notify without libsystemd: one datagram to the service manager's
// socket, which Node's dgram cannot send to. The socket is fresh for every
// message, and the send never blocks the event loop: a manager that is not
// reading is reported (EAGAIN), not waited for. No MSG_NOSIGNAL: Node
// ignores SIGPIPE, so a failed send is an error, never a signal.
Napi::Value SdNotifyJs(const Napi::CallbackInfo& info) {
  std::string path, message;
  bool abstract;
  if (!GetArgs(info, &path, &abstract, &message)) return ThrowTypeError(info.Env(), "sdNotify(path, abstract, message)");
  sockaddr_un addr;
  socklen_t len = UnixAddress(path, abstract, &addr);
  if (len == 0) return ThrowLastError(info.Env(), "sendto");
  int fd = NewSocket(AF_UNIX, SOCK_DGRAM);
  if (fd < 0) return ThrowLastError(info.Env(), "socket");
  ssize_t sent = sendto(fd, message.data(), message.size(), MSG_DONTWAIT, reinterpret_cast<sockaddr*>(&addr), len);
  int err = errno;
  close(fd);
  if (sent < 0) return ThrowSystemError(info.Env(), "sendto", err);
  // Half a message would be a different message.
  if (static_cast<size_t>(sent) != message.size()) return ThrowSystemError(info.Env(), "sendto", EMSGSIZE);
  return Napi::Value();
}

// socketPair() -> [a, b]: a connected unix stream pair, both ends close-on-exec
// and non-blocking. An end reaches a child only through spawn's stdio array.
Napi::Value SocketPairJs(const Napi::CallbackInfo& info) {
  int fds[2];
#ifdef SOCK_CLOEXEC
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, fds) != 0) {
    return ThrowLastError(info.Env(), "socketpair");
  }
#else
  if (socketpair(AF_UNIX, SOCK_STREAM, 0, fds) != 0) return ThrowLastError(info.Env(), "socketpair");
  for (int fd : fds) {
    fcntl(fd, F_SETFD, FD_CLOEXEC);
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
  }
#endif
  Napi::Array pair = Napi::Array::New(info.Env(), 2);
  pair.Set(0u, fds[0]);
  pair.Set(1u, fds[1]);
  return pair;
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("bindInet", Napi::Function::New(env, BindInetJs, "bindInet"));
  exports.Set("bindUnix", Napi::Function::New(env, BindUnixJs, "bindUnix"));
  exports.Set("duplicate", Napi::Function::New(env, DuplicateJs, "duplicate"));
  exports.Set("inspect", Napi::Function::New(env, InspectJs, "inspect"));
  exports.Set("setNonBlocking", Napi::Function::New(env, SetNonBlockingJs, "setNonBlocking"));
  exports.Set("sdNotify", Napi::Function::New(env, SdNotifyJs, "sdNotify"));
  exports.Set("sendSocket", Napi::Function::New(env, SendSocketJs, "sendSocket"));
  exports.Set("requestSocket", Napi::Function::New(env, RequestSocketJs, "requestSocket"));
  exports.Set("reapPid", Napi::Function::New(env, ReapPidJs, "reapPid"));
  exports.Set("socketPair", Napi::Function::New(env, SocketPairJs, "socketPair"));
  exports.Set("Channel", DefineChannel(env));
  return exports;
}

}  // namespace
}  // namespace handover

using handover::Init;
NODE_API_MODULE(NODE_GYP_MODULE_NAME, Init)
