// sd_notify: lets sockets.cc's module init add the notify export, so the
// addon stays one module built from several sources.
#pragma once

#include <node_api.h>

namespace handover {

void ExportNotify(napi_env env, napi_value exports);

}  // namespace handover
