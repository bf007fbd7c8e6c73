// The common limits of the integer capsule ops (docs/integer-ops.md, section 2, "Common limits") and the
// checks that enforce them. Every limit exists to keep the int64 arithmetic provably free of overflow;
// a violation throws std::invalid_argument with a message naming the argument and the fix.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>

namespace capsnet {

inline constexpr int64_t kMinBits = 2;
inline constexpr int64_t kMaxBits = 16;
inline constexpr int64_t kMinExponent = -31;
inline constexpr int64_t kMaxExponent = 6;
/// Capsule dimension D: N2 = sum s^2 <= 64 * 2^30 = 2^36.
inline constexpr int64_t kMaxCapsuleDim = 64;
/// Softmax length J: Z <= J * 2^30 <= 2^46.
inline constexpr int64_t kMaxSoftmaxLength = int64_t{1} << 16;
inline constexpr int64_t kMaxRoutingIterations = 16;
/// Inputs of squash and softmax are at most 16-bit signed: [-2^15, 2^15 - 1].
inline constexpr int kMaxInputBits = 16;

/// Thrown by every check; the ONNX Runtime glue turns it into an INVALID_ARGUMENT status.
class InvalidArgument : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

inline void CheckBits(int64_t bits, const std::string& argument) {
  if (bits < kMinBits || bits > kMaxBits) {
    throw InvalidArgument(argument + " must be an integer in " + std::to_string(kMinBits) + ".." +
                          std::to_string(kMaxBits) + ", got " + std::to_string(bits) +
                          "; pick a bit-width in that range");
  }
}

inline void CheckExponent(int64_t exponent, const std::string& argument) {
  if (exponent < kMinExponent || exponent > kMaxExponent) {
    throw InvalidArgument(argument + "=" + std::to_string(exponent) + " is outside the supported " +
                          std::to_string(kMinExponent) + ".." + std::to_string(kMaxExponent) +
                          ", where the int64 arithmetic is proven not to overflow; recalibrate so the scale "
                          "2^" + argument + " lies in it");
  }
}

/// Signed b-bit range check of already scanned extremes.
inline void CheckSignedRange(int64_t smallest, int64_t largest, int bits, const std::string& argument) {
  const int64_t low = -(int64_t{1} << (bits - 1));
  const int64_t high = (int64_t{1} << (bits - 1)) - 1;
  if (smallest < low || largest > high) {
    throw InvalidArgument(argument + " holds values in " + std::to_string(smallest) + ".." +
                          std::to_string(largest) + ", outside the signed " + std::to_string(bits) +
                          "-bit range " + std::to_string(low) + ".." + std::to_string(high) +
                          " the op is declared for; saturate it to that range or declare more bits");
  }
}

/// Smallest and largest of n values (n > 0), for the one min/max pass over an input.
template <typename T>
void MinMax(const T* values, int64_t n, int64_t* smallest, int64_t* largest) {
  T low = values[0];
  T high = values[0];
  for (int64_t i = 1; i < n; ++i) {
    low = values[i] < low ? values[i] : low;
    high = values[i] > high ? values[i] : high;
  }
  *smallest = static_cast<int64_t>(low);
  *largest = static_cast<int64_t>(high);
}

}  // namespace capsnet
