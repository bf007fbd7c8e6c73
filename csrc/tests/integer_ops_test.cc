// C++ unit test of the integer arithmetic without onnxruntime: the worked examples of
// docs/integer-ops.md (section 7), the fixed-point primitives and the integer square root. The bit-exact
// comparison with the torch reference over many inputs is in tests/runtime (through onnxruntime).
#include <cstdint>
#include <cstdio>
#include <vector>

#include "../capsnet_ops/fixed_point.h"
#include "../capsnet_ops/routing.h"
#include "../capsnet_ops/softmax.h"
#include "../capsnet_ops/squash.h"

namespace {

int failures = 0;

void Expect(bool condition, const char* what, long long got, long long expected) {
  if (!condition) {
    std::fprintf(stderr, "FAILED: %s: got %lld, expected %lld\n", what, got, expected);
    ++failures;
  }
}

void ExpectEq(long long got, long long expected, const char* what) { Expect(got == expected, what, got, expected); }

}  // namespace

int main() {
  using namespace capsnet;
  // Rounding half away from zero.
  ExpectEq(RoundShift(5, 1), 3, "RoundShift(5, 1)");
  ExpectEq(RoundShift(-5, 1), -3, "RoundShift(-5, 1)");
  ExpectEq(RoundShift(-7, 2), -2, "RoundShift(-7, 2)");
  ExpectEq(RoundShift(-3, -4), -48, "RoundShift(-3, -4)");
  ExpectEq(RoundDiv(5, 2, 0), 3, "RoundDiv(5, 2, 0)");
  ExpectEq(RoundDiv(-5, 2, 0), -3, "RoundDiv(-5, 2, 0)");
  ExpectEq(RoundDiv(2176, 1, 8), 9, "RoundDiv(2176, 1, 8)");
  ExpectEq(SaturateSigned(200, 8), 127, "SaturateSigned(200, 8)");
  ExpectEq(SaturateSigned(-200, 8), -128, "SaturateSigned(-200, 8)");
  ExpectEq(SaturateUnsigned(256, 8), 255, "SaturateUnsigned(256, 8)");
  ExpectEq(BitLength(0), 0, "BitLength(0)");
  ExpectEq(BitLength(25), 5, "BitLength(25)");
  // Integer square root at k^2 - 1, k^2, k^2 + 1 and at the top of the range.
  for (int64_t k = 1; k < (int64_t{1} << 31); k = k * 3 + 1) {
    ExpectEq(ISqrt(k * k - 1), k - 1, "ISqrt(k^2 - 1)");
    ExpectEq(ISqrt(k * k), k, "ISqrt(k^2)");
    ExpectEq(ISqrt(k * k + 1), k, "ISqrt(k^2 + 1)");
  }
  const int64_t top = (int64_t{1} << 31) - 1;
  ExpectEq(ISqrt(top * top), top, "ISqrt((2^31 - 1)^2)");
  ExpectEq(ISqrt((int64_t{1} << 62) - 1), top, "ISqrt(2^62 - 1)");

  // Squash [3, 4] at exponent 0, 8 bits: [74, 98].
  {
    const int64_t s[2] = {3, 4};
    int64_t v[2];
    SquashCapsule(s, v, 2, 0, 8);
    ExpectEq(v[0], 74, "squash [3, 4] -> v[0]");
    ExpectEq(v[1], 98, "squash [3, 4] -> v[1]");
    const int64_t zero[3] = {0, 0, 0};
    int64_t out[3] = {1, 1, 1};
    SquashCapsule(zero, out, 3, -31, 16);
    ExpectEq(out[0] | out[1] | out[2], 0, "squash of zeros");
  }
  // Softmax [2, 0, -2] at exponent -1, 8 bits: [170, 63, 23].
  {
    const int64_t b[3] = {2, 0, -2};
    int64_t c[3];
    SoftmaxVector(b, c, 3, -1, 8);
    ExpectEq(c[0], 170, "softmax c[0]");
    ExpectEq(c[1], 63, "softmax c[1]");
    ExpectEq(c[2], 23, "softmax c[2]");
    const int64_t single[1] = {5};
    int64_t one[1];
    SoftmaxVector(single, one, 1, 0, 16);
    ExpectEq(one[0], 65535, "softmax of one logit saturates");
  }
  // Routing example: votes [1, 2, 2, 2], T = 2, all formats 8 bits -> [[31, 0], [0, 0]].
  {
    const int8_t votes[8] = {8, 0, 0, 8, 8, 0, 0, -8};
    RoutingFormat format;
    format.iterations = 2;
    format.votes_exponent = -4;
    format.votes_bits = 8;
    format.coupling_bits = {8, 8};
    format.pre_exponents = {-4, -4};
    format.pre_bits = {8, 8};
    format.out_bits = {8, 8};
    format.logit_exponents = {-4};
    format.logit_bits = {8};
    format.Validate();
    CheckRoutingBounds(format, 2, 2);
    RoutingWorkspace workspace;
    int64_t out[4];
    RouteSample(votes, 2, 2, 2, format, workspace, out);
    ExpectEq(out[0], 31, "routing out[0, 0]");
    ExpectEq(out[1], 0, "routing out[0, 1]");
    ExpectEq(out[2], 0, "routing out[1, 0]");
    ExpectEq(out[3], 0, "routing out[1, 1]");
    bool rejected = false;
    // 16-bit votes at 2^6 coupled at 16 bits and requantized to 2^-31: 1152 * (2^16 - 1) * 2^15 * 2^21.
    format.pre_exponents = {-31, -31};
    format.votes_exponent = 6;
    format.votes_bits = 16;
    format.coupling_bits = {16, 16};
    try {
      CheckRoutingBounds(format, 1152, 16);
    } catch (const std::exception&) {
      rejected = true;
    }
    Expect(rejected, "votes at 2^6 requantized to 2^-31 are rejected", rejected, 1);
  }
  if (failures == 0) std::printf("all integer-op checks passed\n");
  return failures == 0 ? 0 : 1;
}
