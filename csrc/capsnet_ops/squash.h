// Integer squash v = s |s| / (1 + |s|^2) of one capsule (docs/integer-ops.md, section 4), bit for bit
// the torch reference capsnet_nncf_plugin.ops.int_squash.
#pragma once

#include <cstdint>

namespace capsnet {

/// Squash the capsule s[0..length) (values within [-2^15, 2^15 - 1], exponent `exponent_in` in -31..6,
/// length 1..64) into v[0..length): signed `bits_out` bits (2..16), exponent -(bits_out - 1). The
/// caller has validated every argument; s and v may alias.
void SquashCapsule(const int64_t* s, int64_t* v, int64_t length, int exponent_in, int bits_out);

}  // namespace capsnet
