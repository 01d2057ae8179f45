// Bytes with fds (SCM_RIGHTS) on a non-blocking unix stream socket, one
// call at a time: what the Channel (channel.cc) sends and reads.
#pragma once

#include <string>
#include <vector>

#include "../addon.h"

// macOS has no MSG_CMSG_CLOEXEC; there the flag is set right after recvmsg
// (handover never forks from another thread, see supervise.cc).
#ifndef MSG_CMSG_CLOEXEC
#define MSG_CMSG_CLOEXEC 0
#endif

namespace handover {

// SCM_MAX_FD: the most fds one message can carry on Linux.
constexpr size_t kMaxFdsPerRead = 253;
constexpr size_t kReadSize = 64 * 1024;

inline void CloseAll(const std::vector<int>& fds) {
  for (int fd : fds) close(fd);
}

// Sends data[*sent..len), with `attach` (unless -1) on the first byte; stops
// at EAGAIN. 0 once everything went, else -1 with errno (EAGAIN included).
inline int SendSome(int channel, const char* data, size_t len, int attach, size_t* sent) {
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  while (*sent < len) {
    iovec iov = {const_cast<char*>(data) + *sent, len - *sent};
    msghdr msg = {};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    if (attach >= 0 && *sent == 0) {
      msg.msg_control = control;
      msg.msg_controllen = sizeof(control);
      cmsghdr* c = CMSG_FIRSTHDR(&msg);
      c->cmsg_level = SOL_SOCKET;
      c->cmsg_type = SCM_RIGHTS;
      c->cmsg_len = CMSG_LEN(sizeof(int));
      memcpy(CMSG_DATA(c), &attach, sizeof(int));
    }
    // MSG_NOSIGNAL: a peer that has gone is EPIPE, never a SIGPIPE.
    ssize_t n = sendmsg(channel, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return -1;
    *sent += static_cast<size_t>(n);
  }
  return 0;
}

// One recvmsg: appends the bytes to *data and the fds (close-on-exec) to
// *fds, in order. The byte count (0 at EOF), or -1 with errno. EMFILE after
// appending: the kernel could not install an fd (this process is out of
// fds, and the kernel closed it instead), so lines and fds no longer pair up.
inline ssize_t ReceiveSome(int channel, std::string* data, std::vector<int>* fds) {
  static thread_local char buffer[kReadSize];
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * kMaxFdsPerRead)];
  iovec iov = {buffer, sizeof(buffer)};
  msghdr msg = {};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof(control);
  ssize_t n = recvmsg(channel, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
  if (n < 0) return -1;
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (size_t k = 0; k < count; k++) {
      int got;
      memcpy(&got, CMSG_DATA(c) + k * sizeof(int), sizeof(int));
      if (MSG_CMSG_CLOEXEC == 0) fcntl(got, F_SETFD, FD_CLOEXEC);
      fds->push_back(got);
    }
  }
  data->append(buffer, static_cast<size_t>(n));
  if (msg.msg_flags & MSG_CTRUNC) {
    errno = EMFILE;
    return -1;
  }
  return n;
}

}  // namespace handover
