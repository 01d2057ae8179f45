// sd_notify without libsystemd: one datagram to the service manager's
// socket. Node's dgram cannot send to a unix datagram socket, so this is
// the addon's job. The socket is fresh for every message and close-on-exec,
// and the send never blocks the event loop: a manager that is not reading
// is reported (EAGAIN), not waited for.

#include <stddef.h>
#include <sys/un.h>

#include "../addon.h"  // and the socket headers

#ifndef MSG_NOSIGNAL
#define MSG_NOSIGNAL 0  // macOS: no SIGPIPE on datagram sockets anyway
#endif

namespace handover {
namespace {

// Returns 0, or -1 with errno set; *syscall names the call that failed.
int SendNotify(const std::string& path, bool abstract, const std::string& message,
               const char** syscall) {
  sockaddr_un addr;
  memset(&addr, 0, sizeof(addr));
  addr.sun_family = AF_UNIX;
  *syscall = "sendto";
  // A path needs room for its terminating NUL, an abstract name for its
  // leading one.
  if (path.empty() || path.find('\0') != std::string::npos) {
    errno = EINVAL;
    return -1;
  }
  if (path.size() > sizeof(addr.sun_path) - 1) {
    errno = ENAMETOOLONG;
    return -1;
  }
  memcpy(addr.sun_path + (abstract ? 1 : 0), path.data(), path.size());
  // Abstract names count every byte, so the length must be exact.
  socklen_t len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path.size() + 1);

  *syscall = "socket";
  int fd = NewSocket(AF_UNIX, SOCK_DGRAM);
  if (fd < 0) return -1;
  *syscall = "sendto";
  ssize_t sent = sendto(fd, message.data(), message.size(), MSG_NOSIGNAL | MSG_DONTWAIT,
                        reinterpret_cast<sockaddr*>(&addr), len);
  int err = errno;
  close(fd);
  if (sent < 0) {
    errno = err;
    return -1;
  }
  if (static_cast<size_t>(sent) != message.size()) {
    errno = EMSGSIZE;
    return -1;
  }
  return 0;
}

}  // namespace

// sdNotify(path, abstract, message): sends message as one datagram.
Napi::Value SdNotifyJs(const Napi::CallbackInfo& info) {
  std::string path, message;
  bool abstract;
  if (!Get(info, 0, &path) || !Get(info, 1, &abstract) || !Get(info, 2, &message)) {
    return ThrowTypeError(info.Env(), "sdNotify(path, abstract, message)");
  }
  const char* syscall = "sendto";
  if (SendNotify(path, abstract, message, &syscall) == -1) {
    return ThrowSystemError(info.Env(), syscall, errno);
  }
  return Napi::Value();
}

}  // namespace handover
