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

#include <winsock2.h>
#include <ws2tcpip.h>
#include <windows.h>

#include <stdint.h>
#include <string.h>

#include <string>

#include "../inet_util.h"
#include "../napi_util.h"

namespace handover {
namespace {

constexpr DWORD kSocketFlags = WSA_FLAG_OVERLAPPED | WSA_FLAG_NO_HANDLE_INHERIT;

// SOCKET values are kernel handles: small, and well inside a double's range.
bool GetSocket(napi_env env, napi_value v, SOCKET* out) {
  napi_valuetype type;
  int64_t n;
  if (napi_typeof(env, v, &type) != napi_ok || type != napi_number ||
      napi_get_value_int64(env, v, &n) != napi_ok || n <= 0 || n > (int64_t{1} << 52)) {
    return false;
  }
  *out = static_cast<SOCKET>(n);
  return true;
}

// The one argument of duplicate(), close() and inspect().
bool ReadSocketArg(napi_env env, napi_callback_info info, SOCKET* out) {
  Args a;
  return a.Read(env, info) && a.count >= 1 && GetSocket(env, a.values[0], out);
}

napi_value MakeSocket(napi_env env, SOCKET s) {
  napi_value result;
  napi_create_int64(env, static_cast<int64_t>(s), &result);
  return result;
}

napi_value ThrowWsa(napi_env env, const char* syscall) {
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
  memset(&storage, 0, sizeof(storage));
  int len;
  if (family == 4) {
    auto* sin = reinterpret_cast<sockaddr_in*>(&storage);
    sin->sin_family = AF_INET;
    sin->sin_port = htons(static_cast<u_short>(port));
    if (inet_pton(AF_INET, ip.c_str(), &sin->sin_addr) != 1) {
      WSASetLastError(WSAEINVAL);
      return INVALID_SOCKET;
    }
    len = sizeof(sockaddr_in);
  } else {
    auto* sin6 = reinterpret_cast<sockaddr_in6*>(&storage);
    sin6->sin6_family = AF_INET6;
    sin6->sin6_port = htons(static_cast<u_short>(port));
    if (inet_pton(AF_INET6, ip.c_str(), &sin6->sin6_addr) != 1) {
      WSASetLastError(WSAEINVAL);
      return INVALID_SOCKET;
    }
    len = sizeof(sockaddr_in6);
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
napi_value BindTcpJs(napi_env env, napi_callback_info info) {
  Args a;
  int family, port, backlog;
  bool v6only;
  std::string ip;
  if (!a.Read(env, info) || a.count < 5 || !GetInt(env, a.values[0], &family) ||
      !GetString(env, a.values[1], &ip) || !GetInt(env, a.values[2], &port) ||
      !GetBool(env, a.values[3], &v6only) || !GetInt(env, a.values[4], &backlog) ||
      (family != 4 && family != 6) || port < 0 || port > 65535 || backlog < 1) {
    return ThrowTypeError(env, "bindTcp(family, ip, port, v6only, backlog)");
  }
  SOCKET s = BindTcp(family, ip, port, v6only, backlog);
  if (s == INVALID_SOCKET) return ThrowWsa(env, "listen");
  return MakeSocket(env, s);
}

// duplicateFor(socket, pid) -> Buffer with the WSAPROTOCOL_INFOW for pid
napi_value DuplicateForJs(napi_env env, napi_callback_info info) {
  Args a;
  SOCKET s;
  int pid;
  if (!a.Read(env, info) || a.count < 2 || !GetSocket(env, a.values[0], &s) ||
      !GetInt(env, a.values[1], &pid) || pid <= 0) {
    return ThrowTypeError(env, "duplicateFor(socket, pid)");
  }
  WSAPROTOCOL_INFOW protocol;
  if (WSADuplicateSocketW(s, static_cast<DWORD>(pid), &protocol) != 0) {
    return ThrowWsa(env, "WSADuplicateSocketW");
  }
  napi_value buffer;
  void* data;
  napi_create_buffer_copy(env, sizeof(protocol), &protocol, &data, &buffer);
  return buffer;
}

// importSocket(buffer) -> SOCKET, validated as a listening inet stream socket
napi_value ImportJs(napi_env env, napi_callback_info info) {
  Args a;
  bool is_buffer = false;
  void* data = nullptr;
  size_t length = 0;
  if (!a.Read(env, info) || a.count < 1 || napi_is_buffer(env, a.values[0], &is_buffer) != napi_ok ||
      !is_buffer || napi_get_buffer_info(env, a.values[0], &data, &length) != napi_ok) {
    return ThrowTypeError(env, "importSocket(buffer)");
  }
  if (length != sizeof(WSAPROTOCOL_INFOW)) {
    return ThrowSystemError(env, "WSASocketW", WSAEINVAL);
  }
  WSAPROTOCOL_INFOW protocol;
  memcpy(&protocol, data, sizeof(protocol));
  SOCKET s = Import(protocol);
  if (s == INVALID_SOCKET) return ThrowWsa(env, "WSASocketW");
  return MakeSocket(env, s);
}

// duplicate(socket) -> a second, non-inheritable SOCKET in this process
napi_value DuplicateJs(napi_env env, napi_callback_info info) {
  SOCKET s;
  if (!ReadSocketArg(env, info, &s)) return ThrowTypeError(env, "duplicate(socket)");
  WSAPROTOCOL_INFOW protocol;
  if (WSADuplicateSocketW(s, GetCurrentProcessId(), &protocol) != 0) {
    return ThrowWsa(env, "WSADuplicateSocketW");
  }
  SOCKET copy = WSASocketW(FROM_PROTOCOL_INFO, FROM_PROTOCOL_INFO, FROM_PROTOCOL_INFO, &protocol, 0, kSocketFlags);
  if (copy == INVALID_SOCKET) return ThrowWsa(env, "WSASocketW");
  return MakeSocket(env, copy);
}

// close(socket)
napi_value CloseJs(napi_env env, napi_callback_info info) {
  SOCKET s;
  if (!ReadSocketArg(env, info, &s)) return ThrowTypeError(env, "close(socket)");
  if (closesocket(s) != 0) return ThrowWsa(env, "closesocket");
  return nullptr;
}

// inspect(socket) -> { family, type, listening, address?, port?, v6only? }
napi_value InspectJs(napi_env env, napi_callback_info info) {
  SOCKET s;
  if (!ReadSocketArg(env, info, &s)) return ThrowTypeError(env, "inspect(socket)");
  int type = 0;
  int optlen = sizeof(type);
  if (getsockopt(s, SOL_SOCKET, SO_TYPE, reinterpret_cast<char*>(&type), &optlen) != 0) {
    return ThrowWsa(env, "getsockopt");
  }
  sockaddr_storage storage;
  memset(&storage, 0, sizeof(storage));
  int len = sizeof(storage);
  if (getsockname(s, reinterpret_cast<sockaddr*>(&storage), &len) != 0) {
    return ThrowWsa(env, "getsockname");
  }
  BOOL accepting = FALSE;
  optlen = sizeof(accepting);
  if (getsockopt(s, SOL_SOCKET, SO_ACCEPTCONN, reinterpret_cast<char*>(&accepting), &optlen) != 0) {
    accepting = FALSE;
  }

  napi_value out;
  napi_create_object(env, &out);
  SetString(env, out, "type", type == SOCK_STREAM ? "stream" : type == SOCK_DGRAM ? "dgram" : "other");
  SetBool(env, out, "listening", accepting != FALSE);
  DWORD v6only = 0;
  if (storage.ss_family == AF_INET6) {
    optlen = sizeof(v6only);
    getsockopt(s, IPPROTO_IPV6, IPV6_V6ONLY, reinterpret_cast<char*>(&v6only), &optlen);
  }
  if (!SetInetAddress(env, out, storage, v6only != 0)) SetString(env, out, "family", "other");
  return out;
}

napi_value Init(napi_env env, napi_value exports) {
  // Node has started Winsock already; this reference keeps it ours too.
  WSADATA data;
  if (WSAStartup(MAKEWORD(2, 2), &data) != 0) return ThrowSystemError(env, "WSAStartup", WSAGetLastError());
  Export(env, exports, "bindTcp", BindTcpJs);
  Export(env, exports, "duplicateFor", DuplicateForJs);
  Export(env, exports, "importSocket", ImportJs);
  Export(env, exports, "duplicate", DuplicateJs);
  Export(env, exports, "close", CloseJs);
  Export(env, exports, "inspect", InspectJs);
  return exports;
}

}  // namespace
}  // namespace handover

NAPI_MODULE(NODE_GYP_MODULE_NAME, handover::Init)
