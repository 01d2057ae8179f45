// What the supervisor needs from the kernel that Node does not offer: an fd
// passed to a running worker (SCM_RIGHTS), and reaping one pid by number.
#pragma once

#include <node_api.h>

namespace handover {

void ExportSupervise(napi_env env, napi_value exports);

}  // namespace handover
