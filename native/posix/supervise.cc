// The supervisor's kernel calls (handover run). sendSocket/requestSocket: a worker
// that asks for an address the supervisor does not hold yet gets the socket
// over a unix socketpair with SCM_RIGHTS, as HAProxy's -x does; the worker's
// side blocks, bounded by poll, since its listen() is synchronous. reapPid:
// as PID 1 the supervisor inherits orphans, and Node cannot waitpid(-1)
// without stealing libuv's children, so JavaScript names each pid to reap.

#include <poll.h>
#include <sys/wait.h>
#include <time.h>

#include "../addon.h"

// macOS has no MSG_CMSG_CLOEXEC: there the flag is set right after recvmsg,
// and handover never forks from another thread, so nothing can inherit it.
#ifndef MSG_CMSG_CLOEXEC
#define MSG_CMSG_CLOEXEC 0
#endif

namespace handover {
namespace {

// One line, with `fd` attached to its first byte unless it is -1.
int SendLine(int channel, const std::string& line, int fd) {
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  for (size_t sent = 0; sent < line.size();) {
    iovec iov = {const_cast<char*>(line.data()) + sent, line.size() - sent};
    msghdr msg = {};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    if (fd >= 0 && sent == 0) {
      msg.msg_control = control;
      msg.msg_controllen = sizeof(control);
      cmsghdr* c = CMSG_FIRSTHDR(&msg);
      c->cmsg_level = SOL_SOCKET;
      c->cmsg_type = SCM_RIGHTS;
      c->cmsg_len = CMSG_LEN(sizeof(int));
      memcpy(CMSG_DATA(c), &fd, sizeof(int));
    }
    ssize_t n = sendmsg(channel, &msg, MSG_NOSIGNAL);
    if (n < 0 && errno != EINTR) return -1;
    if (n > 0) sent += static_cast<size_t>(n);
  }
  return 0;
}

long long NowMs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

// Reads one line ending in '\n' within timeout_ms; keeps the first fd that
// came with it (close-on-exec), closes any other.
int ReceiveLine(int channel, int timeout_ms, std::string* line, int* fd) {
  long long deadline = NowMs() + timeout_ms;
  while (line->empty() || line->back() != '\n') {
    pollfd p = {channel, POLLIN, 0};
    long long left = deadline - NowMs();
    int ready = left > 0 ? poll(&p, 1, static_cast<int>(left)) : 0;
    if (ready == 0) errno = ETIMEDOUT;
    if (ready <= 0 && errno != EINTR) return -1;
    if (ready <= 0) continue;
    char buffer[4096];
    iovec iov = {buffer, sizeof(buffer)};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))];
    msghdr msg = {};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof(control);
    ssize_t n = recvmsg(channel, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (n < 0) return -1;
    for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
      int got;
      if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
      memcpy(&got, CMSG_DATA(c), sizeof(int));
      if (MSG_CMSG_CLOEXEC == 0) fcntl(got, F_SETFD, FD_CLOEXEC);
      if (*fd < 0) *fd = got;
      else close(got);
    }
    if (n == 0 || line->size() > 65536) {
      errno = n == 0 ? ECONNRESET : EMSGSIZE;
      return -1;
    }
    line->append(buffer, static_cast<size_t>(n));
  }
  return 0;
}

}  // namespace

// sendSocket(channel, line, fd): fd -1 sends the line alone.
Napi::Value SendSocketJs(const Napi::CallbackInfo& info) {
  int channel, fd;
  std::string line;
  if (!GetArgs(info, &channel, &line, &fd)) return ThrowTypeError(info.Env(), "sendSocket(channel, line, fd)");
  if (SendLine(channel, line, fd) == -1) return ThrowLastError(info.Env(), "sendmsg");
  return Napi::Value();
}

// requestSocket(channel, line, timeoutMs): sends line, blocks for the answer;
// { line, fd } (fd -1 if none).
Napi::Value RequestSocketJs(const Napi::CallbackInfo& info) {
  int channel, timeout, fd = -1;
  std::string request, answer;
  if (!GetArgs(info, &channel, &request, &timeout)) return ThrowTypeError(info.Env(), "requestSocket(channel, line, timeoutMs)");
  if (SendLine(channel, request, -1) == -1) return ThrowLastError(info.Env(), "sendmsg");
  if (ReceiveLine(channel, timeout, &answer, &fd) == -1) {
    if (fd >= 0) Fail(fd);
    return ThrowLastError(info.Env(), errno == ETIMEDOUT ? "poll" : "recvmsg");
  }
  Napi::Object result = Napi::Object::New(info.Env());
  result.Set("line", answer);
  result.Set("fd", fd);
  return result;
}

// reapPid(pid): waitpid(pid, WNOHANG); true if that pid was reaped. With
// WNOHANG it never sleeps, so no signal can interrupt it.
Napi::Value ReapPidJs(const Napi::CallbackInfo& info) {
  int pid, status;
  if (!GetArgs(info, &pid) || pid <= 0) return ThrowTypeError(info.Env(), "reapPid(pid)");
  return Napi::Boolean::New(info.Env(), waitpid(pid, &status, WNOHANG) == pid);
}

}  // namespace handover
