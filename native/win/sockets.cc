// Windows half of the addon: what JavaScript cannot do with a SOCKET.
//
// A SOCKET cannot travel through spawn's stdio array the way a POSIX fd
// does, and making it inheritable would leak it into every process the
// application starts (libuv spawns with bInheritHandles). So every socket
// here is created or imported with WSA_FLAG_NO_HANDLE_INHERIT, and the next
// generation gets its own handle through WSADuplicateSocketW: the protocol
// info names the target pid and is useless to any other process.
//
// Errors carry the Winsock error number as `errno`; src/backend/win.ts gives
// them their E-name.

#include "../addon.h"  // and winsock2.h, ws2tcpip.h, windows.h

namespace handover {
namespace {

constexpr DWORD kSocketFlags = WSA_FLAG_OVERLAPPED | WSA_FLAG_NO_HANDLE_INHERIT;

// SOCKET values are kernel handles: small, and well inside a double's range.
bool GetSocket(const Napi::CallbackInfo& info, size_t i, SOCKET* out) {
  if (!info[i].IsNumber()) return false;
  int64_t n = info[i].As<Napi::Number>().Int64Value();
  if (n <= 0 || n > (int64_t{1} << 52)) return false;
  *out = static_cast<SOCKET>(n);
  return true;
}

Napi::Value MakeSocket(Napi::Env env, SOCKET s) {
  return Napi::Number::New(env, static_cast<double>(static_cast<int64_t>(s)));
}

Napi::Value ThrowWsa(Napi::Env env, const char* syscall) {
  return ThrowSystemError(env, syscall, WSAGetLastError());
}

// Closes s and keeps the Winsock error of the call that failed.
SOCKET Fail(SOCKET s) {
  int err = WSAGetLastError();
  if (s != INVALID_SOCKET) closesocket(s);
  WSASetLastError(err);
  return INVALID_SOCKET;
}

// No SO_REUSEADDR: on Windows it lets a second socket steal a port that is
// in use. No SO_EXCLUSIVEADDRUSE either: it also refuses the port while
// connections accepted by an earlier, closed listener linger, so a server
// restarted after a crash could not bind for minutes. The default is what
// libuv and Node use: a second listener on the port fails, and since
// Windows Server 2003 other accounts cannot take the port over.
SOCKET BindTcp(int family, const std::string& ip, int port, bool v6only, int backlog) {
  sockaddr_storage storage;
  int len = InetAddress(family, ip, port, &storage);
  if (len == 0) {
    WSASetLastError(WSAEINVAL);
    return INVALID_SOCKET;
  }
  SOCKET s = WSASocketW(storage.ss_family, SOCK_STREAM, IPPROTO_TCP, nullptr, 0, kSocketFlags);
  if (s == INVALID_SOCKET) return INVALID_SOCKET;
  if (family == 6) {
    DWORD flag = v6only ? 1 : 0;
    if (setsockopt(s, IPPROTO_IPV6, IPV6_V6ONLY, reinterpret_cast<const char*>(&flag), sizeof(flag)) != 0) {
      return Fail(s);
    }
  }
  if (bind(s, reinterpret_cast<sockaddr*>(&storage), len) != 0) return Fail(s);
  if (listen(s, backlog) != 0) return Fail(s);
  return s;
}

// Imports protocol info duplicated for this process, and refuses anything
// that is not a bound, listening inet stream socket. A refused handle is
// never closed: info meant for another pid names a handle value of that
// process, which here may be any handle of ours (under Wine it came back as
// this process's stdout).
SOCKET Import(const WSAPROTOCOL_INFOW& info) {
  WSAPROTOCOL_INFOW copy = info;
  SOCKET s = WSASocketW(FROM_PROTOCOL_INFO, FROM_PROTOCOL_INFO, FROM_PROTOCOL_INFO, &copy, 0, kSocketFlags);
  if (s == INVALID_SOCKET) return INVALID_SOCKET;
  sockaddr_storage storage;
  int len = sizeof(storage);
  if (getsockname(s, reinterpret_cast<sockaddr*>(&storage), &len) != 0) return INVALID_SOCKET;
  if (storage.ss_family != AF_INET && storage.ss_family != AF_INET6) {
    WSASetLastError(WSAEAFNOSUPPORT);
    return INVALID_SOCKET;
  }
  BOOL accepting = FALSE;
  int optlen = sizeof(accepting);
  if (getsockopt(s, SOL_SOCKET, SO_ACCEPTCONN, reinterpret_cast<char*>(&accepting), &optlen) != 0) {
    return INVALID_SOCKET;
  }
  if (!accepting) {
    WSASetLastError(WSAEINVAL);
    return INVALID_SOCKET;
  }
  return s;
}

// bindTcp(family, ip, port, v6only, backlog) -> SOCKET
Napi::Value BindTcpJs(const Napi::CallbackInfo& info) {
  int family, port, backlog;
  bool v6only;
  std::string ip;
  if (!Get(info, 0, &family) || !Get(info, 1, &ip) || !Get(info, 2, &port) || !Get(info, 3, &v6only) ||
      !Get(info, 4, &backlog) || (family != 4 && family != 6) || port < 0 || port > 65535 || backlog < 1) {
    return ThrowTypeError(info.Env(), "bindTcp(family, ip, port, v6only, backlog)");
  }
  SOCKET s = BindTcp(family, ip, port, v6only, backlog);
  if (s == INVALID_SOCKET) return ThrowWsa(info.Env(), "listen");
  return MakeSocket(info.Env(), s);
}

// duplicateFor(socket, pid) -> Buffer with the WSAPROTOCOL_INFOW for pid
Napi::Value DuplicateForJs(const Napi::CallbackInfo& info) {
  SOCKET s;
  int pid;
  if (!GetSocket(info, 0, &s) || !Get(info, 1, &pid) || pid <= 0) {
    return ThrowTypeError(info.Env(), "duplicateFor(socket, pid)");
  }
  WSAPROTOCOL_INFOW protocol;
  if (WSADuplicateSocketW(s, static_cast<DWORD>(pid), &protocol) != 0) {
    return ThrowWsa(info.Env(), "WSADuplicateSocketW");
  }
  return Napi::Buffer<uint8_t>::Copy(info.Env(), reinterpret_cast<const uint8_t*>(&protocol), sizeof(protocol));
}

// importSocket(buffer) -> SOCKET, validated as a listening inet stream socket
Napi::Value ImportJs(const Napi::CallbackInfo& info) {
  if (!info[0].IsBuffer()) return ThrowTypeError(info.Env(), "importSocket(buffer)");
  auto buffer = info[0].As<Napi::Buffer<uint8_t>>();
  if (buffer.Length() != sizeof(WSAPROTOCOL_INFOW)) {
    return ThrowSystemError(info.Env(), "WSASocketW", WSAEINVAL);
  }
  WSAPROTOCOL_INFOW protocol;
  memcpy(&protocol, buffer.Data(), sizeof(protocol));
  SOCKET s = Import(protocol);
  if (s == INVALID_SOCKET) return ThrowWsa(info.Env(), "WSASocketW");
  return MakeSocket(info.Env(), s);
}

// duplicate(socket) -> a second, non-inheritable SOCKET in this process
Napi::Value DuplicateJs(const Napi::CallbackInfo& info) {
  SOCKET s;
  if (!GetSocket(info, 0, &s)) return ThrowTypeError(info.Env(), "duplicate(socket)");
  WSAPROTOCOL_INFOW protocol;
  if (WSADuplicateSocketW(s, GetCurrentProcessId(), &protocol) != 0) {
    return ThrowWsa(info.Env(), "WSADuplicateSocketW");
  }
  SOCKET copy = WSASocketW(FROM_PROTOCOL_INFO, FROM_PROTOCOL_INFO, FROM_PROTOCOL_INFO, &protocol, 0, kSocketFlags);
  if (copy == INVALID_SOCKET) return ThrowWsa(info.Env(), "WSASocketW");
  return MakeSocket(info.Env(), copy);
}

// close(socket)
Napi::Value CloseJs(const Napi::CallbackInfo& info) {
  SOCKET s;
  if (!GetSocket(info, 0, &s)) return ThrowTypeError(info.Env(), "close(socket)");
  if (closesocket(s) != 0) return ThrowWsa(info.Env(), "closesocket");
  return Napi::Value();
}

// inspect(socket) -> { family, type, listening, address?, port?, v6only? }
Napi::Value InspectJs(const Napi::CallbackInfo& info) {
  SOCKET s;
  if (!GetSocket(info, 0, &s)) return ThrowTypeError(info.Env(), "inspect(socket)");
  int type = 0;
  int optlen = sizeof(type);
  if (getsockopt(s, SOL_SOCKET, SO_TYPE, reinterpret_cast<char*>(&type), &optlen) != 0) {
    return ThrowWsa(info.Env(), "getsockopt");
  }
  sockaddr_storage storage;
  memset(&storage, 0, sizeof(storage));
  int len = sizeof(storage);
  if (getsockname(s, reinterpret_cast<sockaddr*>(&storage), &len) != 0) {
    return ThrowWsa(info.Env(), "getsockname");
  }
  BOOL accepting = FALSE;
  optlen = sizeof(accepting);
  if (getsockopt(s, SOL_SOCKET, SO_ACCEPTCONN, reinterpret_cast<char*>(&accepting), &optlen) != 0) {
    accepting = FALSE;
  }

  Napi::Object out = Napi::Object::New(info.Env());
  out.Set("type", type == SOCK_STREAM ? "stream" : type == SOCK_DGRAM ? "dgram" : "other");
  out.Set("listening", accepting != FALSE);
  DWORD v6only = 0;
  if (storage.ss_family == AF_INET6) {
    optlen = sizeof(v6only);
    getsockopt(s, IPPROTO_IPV6, IPV6_V6ONLY, reinterpret_cast<char*>(&v6only), &optlen);
  }
  if (!SetInetAddress(out, storage, v6only != 0)) out.Set("family", "other");
  return out;
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  // Node has started Winsock already; this reference keeps it ours too.
  WSADATA data;
  if (WSAStartup(MAKEWORD(2, 2), &data) != 0) {
    ThrowSystemError(env, "WSAStartup", WSAGetLastError());
    return exports;
  }
  exports.Set("bindTcp", Napi::Function::New(env, BindTcpJs, "bindTcp"));
  exports.Set("duplicateFor", Napi::Function::New(env, DuplicateForJs, "duplicateFor"));
  exports.Set("importSocket", Napi::Function::New(env, ImportJs, "importSocket"));
  exports.Set("duplicate", Napi::Function::New(env, DuplicateJs, "duplicate"));
  exports.Set("close", Napi::Function::New(env, CloseJs, "close"));
  exports.Set("inspect", Napi::Function::New(env, InspectJs, "inspect"));
  return exports;
}

}  // namespace
}  // namespace handover

using handover::Init;
NODE_API_MODULE(NODE_GYP_MODULE_NAME, Init)
