// A message channel between generations that can carry fds: a unix stream
// socket driven by a uv_poll_t on Node's own loop. A net.Socket cannot do
// this: Node never reads or sends SCM_RIGHTS on a stream socket. An idle
// keep-alive connection moves from one process to the next as an fd sent
// with the first byte of the line that announces it; the receiver gets the
// fds of each read together with its bytes, in order, so an fd always
// arrives no later than its line's last byte.
//
// libuv must not watch one fd twice: the fd of a Channel is never also a
// net.Socket in the same process (uv_poll_init refuses a watched fd there).

#include <uv.h>

#include <deque>
#include <vector>

#include "../addon.h"
#include "scm.h"

namespace handover {
namespace {

// Reads per readable event, so that a peer sending without pause cannot
// starve the rest of the loop; the poll is level-triggered and fires again.
constexpr int kReadsPerEvent = 256;

class Channel : public Napi::ObjectWrap<Channel> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "Channel",
                       {InstanceMethod<&Channel::Write>("write"), InstanceMethod<&Channel::RefJs>("ref"),
                        InstanceMethod<&Channel::UnrefJs>("unref"), InstanceMethod<&Channel::Close>("close"),
                        InstanceAccessor<&Channel::Closed>("closed"), InstanceAccessor<&Channel::Errno>("errno")});
  }

  // new Channel(fd, onRead(chunk, fds), onWritten(count), onClose(errno)).
  // Takes the fd only if it returns; a throw leaves it to the caller.
  explicit Channel(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Channel>(info), env_(info.Env()) {
    Napi::Env env = info.Env();
    int fd;
    if (!Get(info, 0, &fd) || fd < 0 || !info[1].IsFunction() || !info[2].IsFunction() || !info[3].IsFunction()) {
      ThrowTypeError(env, "new Channel(fd, onRead, onWritten, onClose)");
      return;
    }
    int type = 0;
    socklen_t len = sizeof(type);
    if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) != 0) {
      ThrowLastError(env, "getsockopt");
      return;
    }
    sockaddr_storage addr = {};
    len = sizeof(addr);
    if (getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
      ThrowLastError(env, "getsockname");
      return;
    }
    if (type != SOCK_STREAM || addr.ss_family != AF_UNIX) {
      ThrowSystemError(env, "getsockopt", EPROTOTYPE);
      return;
    }
    // An inherited fd (a child's end, dup2()ed by spawn) comes without
    // close-on-exec and maybe blocking: this process's own children must not
    // inherit it, and the loop must never block on it.
    int fl = fcntl(fd, F_GETFL);
    if (fl == -1 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) == -1 || fcntl(fd, F_SETFD, FD_CLOEXEC) == -1) {
      ThrowLastError(env, "fcntl");
      return;
    }
    uv_loop_t* loop = nullptr;
    if (napi_get_uv_event_loop(env, &loop) != napi_ok || loop == nullptr) {
      ThrowSystemError(env, "uv_poll_init", EINVAL);
      return;
    }
    poll_ = new uv_poll_t;
    int err = uv_poll_init(loop, poll_, fd);
    if (err == 0) {
      poll_->data = this;
      err = uv_poll_start(poll_, UV_READABLE, OnPoll);
      if (err != 0) {
        uv_close(reinterpret_cast<uv_handle_t*>(poll_), FreePoll);
        poll_ = nullptr;
      }
    } else {
      delete poll_;
      poll_ = nullptr;
    }
    if (err != 0) {
      // libuv errors are negated errnos on POSIX (EEXIST: fd already watched).
      ThrowSystemError(env, "uv_poll_init", -err);
      return;
    }
    fd_ = fd;
    open_ = true;
    on_read_ = Napi::Persistent(info[1].As<Napi::Function>());
    on_written_ = Napi::Persistent(info[2].As<Napi::Function>());
    on_close_ = Napi::Persistent(info[3].As<Napi::Function>());
    context_ = new Napi::AsyncContext(env, "HandoverChannel", Value());
    // Kept alive while open: libuv holds a pointer to this object.
    Ref();
    napi_add_env_cleanup_hook(env, CleanupHook, this);
  }

  // Only reached open at the environment's teardown, and the cleanup hook
  // has shut it by then; no N-API call here, the reference is going.
  ~Channel() override {
    if (open_) Release();
  }

 private:
  struct Pending {
    std::string data;
    size_t sent = 0;
    int fd = -1;  // this channel's own duplicate, until it has gone out
  };

  static void FreePoll(uv_handle_t* handle) { delete reinterpret_cast<uv_poll_t*>(handle); }

  // Node is tearing the environment down with the channel still open.
  static void CleanupHook(void* arg) { static_cast<Channel*>(arg)->Shut(0, false); }

  static void OnPoll(uv_poll_t* handle, int status, int events) {
    auto* self = static_cast<Channel*>(handle->data);
    if (self == nullptr || !self->open_) return;
    Napi::HandleScope scope(self->env_);
    if (status < 0) {
      // libuv reports any POLLERR as EBADF, and stops watching. A peer that
      // closed with bytes of ours unread sets ECONNRESET, yet what it sent
      // before is still there to read (fds included): take it, then end.
      int err = IntOption(self->fd_, SOL_SOCKET, SO_ERROR);
      int read = self->Readable();
      if (self->open_) self->Shut(err != 0 ? err : read > 0 ? read : -status, true);
      return;
    }
    int read = (events & (UV_READABLE | UV_DISCONNECT)) ? self->Readable() : 0;
    if (self->open_ && read != 0) {
      self->Shut(read > 0 ? read : 0, true);
      return;
    }
    if (self->open_ && (events & UV_WRITABLE)) self->Writable();
  }

  // Everything the kernel has (up to kReadsPerEvent reads) in one callback:
  // the bytes in order, and every fd that came with them, in order.
  // 0 to go on, -1 at EOF, or the errno that ended reading.
  int Readable() {
    std::string data;
    std::vector<int> fds;
    int err = 0;
    bool eof = false;
    for (int i = 0; i < kReadsPerEvent; i++) {
      ssize_t n = ReceiveSome(fd_, &data, &fds);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
      if (n < 0) {
        err = errno;
        break;
      }
      if (n == 0) {
        eof = true;
        break;
      }
    }
    if (!data.empty() || !fds.empty()) Deliver(data, fds);
    return err != 0 ? err : eof ? -1 : 0;
  }

  void Deliver(const std::string& data, const std::vector<int>& fds) {
    if (!open_) {
      CloseAll(fds);
      return;
    }
    Napi::Env env = env_;
    Napi::Buffer<char> chunk = Napi::Buffer<char>::Copy(env, data.data(), data.size());
    Napi::Array list = Napi::Array::New(env, fds.size());
    if (env.IsExceptionPending()) {
      // Nothing reached JavaScript: these fds are still this channel's to close.
      CloseAll(fds);
      Rethrow();
      return;
    }
    for (size_t i = 0; i < fds.size(); i++) list.Set(static_cast<uint32_t>(i), fds[i]);
    Call(on_read_, {chunk, list});
  }

  // Sends the queue in order; reports how many writes completed.
  void Writable() {
    uint32_t done = 0;
    int err = 0;
    while (!queue_.empty()) {
      Pending& p = queue_.front();
      size_t before = p.sent;
      int r = SendSome(fd_, p.data.data(), p.data.size(), p.sent == 0 ? p.fd : -1, &p.sent);
      if (r != 0 && errno != EAGAIN && errno != EWOULDBLOCK) err = errno;
      // The kernel holds its own reference to the fd once a byte went.
      if (p.sent > before && p.fd >= 0) {
        close(p.fd);
        p.fd = -1;
      }
      if (r != 0) break;
      queue_.pop_front();
      done++;
    }
    // The completed writes first, then the close: JavaScript resolves the
    // writes that went before it learns that the rest never will.
    if (done > 0) Call(on_written_, {Napi::Number::New(env_, done)});
    if (err != 0) {
      Shut(err, true);
    } else {
      Watch();
    }
  }

  // Readable always; writable only while something waits to go out.
  // Changes the watch only when it must: each change is an epoll_ctl.
  void Watch() {
    int events = UV_READABLE | (queue_.empty() ? 0 : UV_WRITABLE);
    if (!open_ || events == events_) return;
    int err = uv_poll_start(poll_, events, OnPoll);
    if (err != 0) {
      Shut(-err, true);
      return;
    }
    events_ = events;
  }

  // write(buffer, fd = -1) -> 0: done (handed to the kernel, or dropped
  // because the channel is closed: see `closed`); 1: queued, onWritten
  // counts it. Throws on a bad fd or when the queue cannot hold a copy of it.
  Napi::Value Write(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    int fd = -1;
    if (!info[0].IsBuffer() || (info.Length() > 1 && !info[1].IsUndefined() && !Get(info, 1, &fd)) || fd < -1) {
      return ThrowTypeError(env, "write(buffer, fd)");
    }
    Napi::Buffer<char> buffer = info[0].As<Napi::Buffer<char>>();
    const char* data = buffer.Data();
    size_t len = buffer.Length();
    // An fd rides on a byte: with none, the kernel would drop it.
    if (fd >= 0 && len == 0) return ThrowTypeError(env, "write(buffer, fd): an fd needs at least one byte");
    // A closed fd would fail the whole sendmsg as EBADF, and end the channel.
    if (fd >= 0 && fcntl(fd, F_GETFD) == -1) return ThrowLastError(env, "sendmsg");
    if (!open_) return Napi::Number::New(env, 0);
    size_t sent = 0;
    if (queue_.empty()) {
      if (SendSome(fd_, data, len, fd, &sent) == 0) return Napi::Number::New(env, 0);
      if (errno != EAGAIN && errno != EWOULDBLOCK) {
        // The peer has gone (EPIPE, ECONNRESET): JavaScript sees `closed`
        // and notifies its own listeners.
        Shut(errno, false);
        return Napi::Number::New(env, 0);
      }
    }
    Pending p;
    if (fd >= 0 && sent == 0) {
      // The caller may close its fd as soon as this returns (a connection
      // destroyed by a timeout): the queue keeps its own reference, never a
      // number the process may reuse for another file.
      p.fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
      if (p.fd == -1) return ThrowLastError(env, "dup");
    }
    p.data.assign(data + sent, len - sent);
    p.sent = 0;
    queue_.push_back(std::move(p));
    Watch();
    return Napi::Number::New(env, 1);
  }

  Napi::Value RefJs(const Napi::CallbackInfo& info) {
    if (open_) uv_ref(reinterpret_cast<uv_handle_t*>(poll_));
    return info.Env().Undefined();
  }

  Napi::Value UnrefJs(const Napi::CallbackInfo& info) {
    if (open_) uv_unref(reinterpret_cast<uv_handle_t*>(poll_));
    return info.Env().Undefined();
  }

  // close(): stops polling and closes the fd. What the peer sent and this
  // side had not read yet is discarded by the kernel, which closes any fd
  // in it; queued writes are dropped and their fd copies closed.
  Napi::Value Close(const Napi::CallbackInfo& info) {
    Shut(0, false);
    return info.Env().Undefined();
  }

  Napi::Value Closed(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), !open_); }

  // The errno that ended the channel; 0 for EOF, close() or still open.
  Napi::Value Errno(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), errno_); }

  // Stops the watcher, closes the fd and every fd copy still queued.
  void Release() {
    open_ = false;
    // uv_close stops the watcher at once, so the fd may be closed right after.
    poll_->data = nullptr;
    uv_close(reinterpret_cast<uv_handle_t*>(poll_), FreePoll);
    poll_ = nullptr;
    close(fd_);
    fd_ = -1;
    for (Pending& p : queue_) {
      if (p.fd >= 0) close(p.fd);
    }
    queue_.clear();
  }

  void Shut(int err, bool notify) {
    if (!open_) return;
    errno_ = err;
    Release();
    napi_remove_env_cleanup_hook(env_, CleanupHook, this);
    if (notify) Call(on_close_, {Napi::Number::New(env_, err)});
    if (depth_ == 0) Forget();
  }

  // Drops the callbacks, the async context and the reference that kept this
  // object alive; never while a callback of it runs (close() from onRead),
  // whose frames still use them.
  void Forget() {
    if (context_ == nullptr) return;
    on_read_.Reset();
    on_written_.Reset();
    on_close_.Reset();
    delete context_;
    context_ = nullptr;
    Unref();
  }

  // Calls into JavaScript from the loop as Node does for its own I/O: with
  // an async context, and the microtask and nextTick queues run after.
  void Call(Napi::FunctionReference& fn, const std::initializer_list<napi_value>& args) {
    if (fn.IsEmpty() || context_ == nullptr) return;
    depth_++;
    fn.MakeCallback(Value(), args, *context_);
    depth_--;
    Rethrow();
    if (depth_ == 0 && !open_) Forget();
  }

  // An exception thrown by a callback is the process's uncaught exception,
  // as for any I/O callback.
  void Rethrow() {
    if (!env_.IsExceptionPending()) return;
    Napi::Error error = env_.GetAndClearPendingException();
    napi_fatal_exception(env_, error.Value());
  }

  Napi::Env env_;
  int fd_ = -1;
  bool open_ = false;
  int errno_ = 0;
  int events_ = UV_READABLE;
  int depth_ = 0;  // callbacks of this channel running now
  uv_poll_t* poll_ = nullptr;
  std::deque<Pending> queue_;
  Napi::FunctionReference on_read_;
  Napi::FunctionReference on_written_;
  Napi::FunctionReference on_close_;
  Napi::AsyncContext* context_ = nullptr;
};

}  // namespace

Napi::Function DefineChannel(Napi::Env env) { return Channel::Define(env); }

}  // namespace handover
