// Fixed-point primitives of the integer capsule ops (docs/integer-ops.md, sections 2 and 3), on int64.
//
// Every rounding rounds half away from zero and is computed on magnitudes, never by an arithmetic right
// shift of a negative number. Callers keep |x| < 2^62 and every shift amount within -62..62 (the op
// validation proves both before any arithmetic runs), so no rounding constant or doubled remainder
// overflows and no shift is undefined.
#pragma once

#include <cmath>
#include <cstdint>

namespace capsnet {

/// Every intermediate of every op stays strictly below this magnitude.
inline constexpr int64_t kInt64Bound = int64_t{1} << 62;

/// Number of bits of x >= 0 (0 for 0), like Python's int.bit_length.
inline int BitLength(uint64_t x) { return x == 0 ? 0 : 64 - __builtin_clzll(x); }

/// x * 2^-n rounded half away from zero for n > 0; the exact x * 2^-n for n <= 0.
inline int64_t RoundShift(int64_t x, int n) {
  if (n <= 0) {
    // A multiplication rather than `x << -n`: shifting a negative value left is undefined before C++20.
    return x * (int64_t{1} << -n);
  }
  const int64_t magnitude = ((x < 0 ? -x : x) + (int64_t{1} << (n - 1))) >> n;
  return x < 0 ? -magnitude : magnitude;
}

/// numerator / (denominator * 2^h) rounded once, half away from zero; denominator > 0, h >= 0:
/// sign(n) * ((floor(2|n| / d) + 2^h) >> (h + 1)).
inline int64_t RoundDiv(int64_t numerator, int64_t denominator, int h) {
  const int64_t magnitude = numerator < 0 ? -numerator : numerator;
  const int64_t rounded = (2 * magnitude / denominator + (int64_t{1} << h)) >> (h + 1);
  return numerator < 0 ? -rounded : rounded;
}

/// Clamp to the signed b-bit range [-2^(b-1), 2^(b-1) - 1].
inline int64_t SaturateSigned(int64_t x, int bits) {
  const int64_t high = (int64_t{1} << (bits - 1)) - 1;
  const int64_t low = -(int64_t{1} << (bits - 1));
  return x < low ? low : (x > high ? high : x);
}

/// Clamp to the unsigned b-bit range [0, 2^b - 1].
inline int64_t SaturateUnsigned(int64_t x, int bits) {
  const int64_t high = (int64_t{1} << bits) - 1;
  return x < 0 ? 0 : (x > high ? high : x);
}

/// Saturate(RoundShift(x, n), b, signed): move x to an exponent n larger, then clamp.
inline int64_t RequantizeSigned(int64_t x, int n, int bits) { return SaturateSigned(RoundShift(x, n), bits); }

/// floor(sqrt(x)) for 0 <= x < 2^62, exactly: a float64 estimate corrected by one step each way
/// (section 3 proves that this suffices; every square stays below (2^31 + 1)^2 < 2^63).
inline int64_t ISqrt(int64_t x) {
  int64_t root = static_cast<int64_t>(std::floor(std::sqrt(static_cast<double>(x))));
  if (root * root > x) --root;
  if ((root + 1) * (root + 1) <= x) ++root;
  return root;
}

}  // namespace capsnet
