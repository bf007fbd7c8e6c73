// Integer softmax of one vector of logits (docs/integer-ops.md, section 5): a step of
// IntDynamicRouting, bit for bit the torch reference capsnet_nncf_plugin.ops.int_softmax.
#pragma once

#include <cstdint>

namespace capsnet {

/// round(log2(e) * 2^24).
inline constexpr int64_t kLog2eQ24 = 24204406;

/// Softmax of the logits b[0..length) (values within [-2^15, 2^15 - 1], exponent `exponent_in` in
/// -31..6, length 1..65536) into c[0..length): unsigned `bits_out` bits, exponent -bits_out.
/// b and c must not alias (c holds the exponentials until the last pass).
void SoftmaxVector(const int64_t* b, int64_t* c, int64_t length, int exponent_in, int bits_out);

}  // namespace capsnet
