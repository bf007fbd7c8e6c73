// The library's one exported symbol: RegisterCustomOps, which onnxruntime calls from
// SessionOptions::RegisterCustomOpsLibrary (Python: SessionOptions.register_custom_ops_library).
#include <string>

#include "common.h"
#include "routing_op.h"
#include "squash_op.h"

#define CAPSNET_EXPORT __attribute__((visibility("default")))

namespace capsnet_ort {
namespace {

/// The custom-op domain, created once per process and never released: sessions keep pointers to it and to
/// its ops for as long as they live, and a release at process exit could run after onnxruntime unloaded.
struct Registry {
  OrtCustomOpDomain* domain = nullptr;
  std::string error;
};

Registry* CreateRegistry(const OrtApi* api) {
  auto* registry = new Registry;
  const OrtStatusPtr status = Guard(*api, "RegisterCustomOps", [&] {
    Ort::InitApi(api);
    ThrowIfError(*api, api->CreateCustomOpDomain(kDomain, &registry->domain), "creating the capsnet domain");
    for (const ONNXTensorElementDataType type : kInputTypes) {
      ThrowIfError(*api, api->CustomOpDomain_Add(registry->domain, new CapsnetOp<SquashKernel>(type)),
                   "adding IntSquash");
      ThrowIfError(*api, api->CustomOpDomain_Add(registry->domain, new CapsnetOp<RoutingKernel>(type)),
                   "adding IntDynamicRouting");
    }
  });
  if (status != nullptr) {
    registry->error = api->GetErrorMessage(status);
    api->ReleaseStatus(status);
  }
  return registry;
}

}  // namespace
}  // namespace capsnet_ort

extern "C" CAPSNET_EXPORT OrtStatus* ORT_API_CALL RegisterCustomOps(OrtSessionOptions* options,
                                                                    const OrtApiBase* api_base) {
  using namespace capsnet_ort;
  if (api_base == nullptr) return nullptr;  // not called by onnxruntime: nothing to report an error through
  const OrtApi* api = api_base->GetApi(kOrtApiVersion);
  if (api == nullptr) {
    const OrtApi* oldest = api_base->GetApi(1);
    if (oldest == nullptr) return nullptr;
    try {
      const std::string message = std::string("libcapsnet_ort_ops needs onnxruntime 1.21 or newer (C API version ") +
                                  std::to_string(kOrtApiVersion) + "), this process runs onnxruntime " +
                                  api_base->GetVersionString();
      return oldest->CreateStatus(ORT_FAIL, message.c_str());
    } catch (...) {
      return oldest->CreateStatus(ORT_FAIL, "libcapsnet_ort_ops needs onnxruntime 1.21 or newer");
    }
  }
  try {
    static Registry* const registry = CreateRegistry(api);  // thread-safe, once per process
    if (registry->domain == nullptr || !registry->error.empty()) {
      return MakeStatus(*api, ORT_FAIL, "RegisterCustomOps", registry->error.c_str());
    }
    return api->AddCustomOpDomain(options, registry->domain);
  } catch (...) {  // only std::bad_alloc can get here
    return MakeStatus(*api, ORT_FAIL, "RegisterCustomOps", "out of memory");
  }
}
