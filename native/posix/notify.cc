// sd_notify without libsystemd: one datagram to the service manager's
// socket. Node's dgram cannot send to a unix datagram socket, so this is
// the addon's job. The socket is fresh for every message and close-on-exec,
// and the send never blocks the event loop: a manager that is not reading
// is reported (EAGAIN), not waited for. No MSG_NOSIGNAL: Node ignores
// SIGPIPE, so a failed send is an error, never a signal.

#include "../addon.h"  // and the socket headers

namespace handover {

// sdNotify(path, abstract, message): sends message as one datagram.
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

}  // namespace handover
