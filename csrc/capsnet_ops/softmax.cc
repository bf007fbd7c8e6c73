#include "softmax.h"

#include "exp2_tables.h"
#include "fixed_point.h"

namespace capsnet {

void SoftmaxVector(const int64_t* b, int64_t* c, int64_t length, int exponent_in, int bits_out) {
  int64_t largest = b[0];
  for (int64_t j = 1; j < length; ++j) largest = b[j] > largest ? b[j] : largest;
  // 8 - e is in 2..39: always a right shift.
  const int exponent_shift = 8 - exponent_in;
  int64_t total = 0;  // Z in 2^30..2^46
  for (int64_t j = 0; j < length; ++j) {
    const int64_t distance = largest - b[j];                              // x in 0..2^16 - 1
    const int64_t z = RoundShift(distance * kLog2eQ24, exponent_shift);  // < 2^39
    const int64_t integer_part = (z >> 16) < 32 ? (z >> 16) : 32;
    const int64_t mantissa = kExp2Coarse[(z >> 8) & 255] * kExp2Fine[z & 255];  // <= 2^60
    const int64_t exponential = RoundShift(mantissa, 30 + static_cast<int>(integer_part));  // E <= 2^30
    c[j] = exponential;
    total += exponential;
  }
  for (int64_t j = 0; j < length; ++j) {
    c[j] = SaturateUnsigned(RoundDiv(c[j] << bits_out, total, 0), bits_out);
  }
}

}  // namespace capsnet
