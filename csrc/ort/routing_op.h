// The onnxruntime kernel of capsnet::IntDynamicRouting (docs/integer-ops.md, section 6).
#pragma once

#include "../capsnet_ops/routing.h"
#include "common.h"

namespace capsnet_ort {

class RoutingKernel {
 public:
  static constexpr const char* kName = "IntDynamicRouting";

  /// Reads and validates the routing formats and the declared output type.
  RoutingKernel(const OrtApi& api, const OrtKernelInfo* info);

  OrtStatusPtr ComputeV2(OrtKernelContext* context) noexcept {
    return Guard(api_, kName, [&] { Compute(context); });
  }

 private:
  void Compute(OrtKernelContext* context) const;

  const OrtApi& api_;
  capsnet::RoutingFormat format_;
};

}  // namespace capsnet_ort
