#include "squash.h"

#include "fixed_point.h"

namespace capsnet {

void SquashCapsule(const int64_t* s, int64_t* v, int64_t length, int exponent_in, int bits_out) {
  const int fraction_bits_out = bits_out - 1;  // K
  int64_t squared_norm = 0;                    // N2 <= 2^36
  for (int64_t d = 0; d < length; ++d) squared_norm += s[d] * s[d];
  // F = (62 - L) >> 1 puts N2 * 4^F in [2^60, 2^62): a 31-bit root whatever the magnitude of s.
  // N2 = 0 gives F = 31 and R = 0, hence V = 0 without a special case.
  const int root_fraction_bits = (62 - BitLength(static_cast<uint64_t>(squared_norm))) >> 1;  // F
  const int64_t root = ISqrt(squared_norm << (2 * root_fraction_bits));                       // R < 2^31
  int64_t denominator;  // A
  int input_scale_bits;
  if (exponent_in <= 0) {
    denominator = (int64_t{1} << (-2 * exponent_in)) + squared_norm;  // 4^m + N2 < 2^63
    input_scale_bits = 0;
  } else {
    denominator = 1 + (squared_norm << (2 * exponent_in));  // 1 + N2 * 4^e <= 1 + 2^48
    input_scale_bits = 2 * exponent_in;
  }
  const int scale_exponent = fraction_bits_out + input_scale_bits - root_fraction_bits;  // c in -30..15
  const int left = scale_exponent > 0 ? scale_exponent : 0;
  const int right = scale_exponent < 0 ? -scale_exponent : 0;
  for (int64_t d = 0; d < length; ++d) {
    const int64_t value = s[d];
    const int64_t numerator = ((value < 0 ? -value : value) * root) << left;  // < 2^61
    const int64_t magnitude = RoundDiv(numerator, denominator, right);
    v[d] = SaturateSigned(value < 0 ? -magnitude : magnitude, bits_out);
  }
}

}  // namespace capsnet
