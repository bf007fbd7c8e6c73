// The onnxruntime kernel of capsnet::IntSquash (docs/integer-ops.md, section 4).
#pragma once

#include "common.h"

namespace capsnet_ort {

class SquashKernel {
 public:
  static constexpr const char* kName = "IntSquash";

  /// Reads and validates exponent_in, bits_out and axis, and the declared output type.
  SquashKernel(const OrtApi& api, const OrtKernelInfo* info);

  OrtStatusPtr ComputeV2(OrtKernelContext* context) noexcept {
    return Guard(api_, kName, [&] { Compute(context); });
  }

 private:
  void Compute(OrtKernelContext* context) const;

  const OrtApi& api_;
  int64_t exponent_in_;
  int64_t bits_out_;
  int64_t axis_;
};

}  // namespace capsnet_ort
