#include "routing.h"

#include <algorithm>
#include <string>

#include "fixed_point.h"
#include "limits.h"
#include "softmax.h"
#include "squash.h"

namespace capsnet {
namespace {

using Wide = __int128;

std::string Str(int64_t value) { return std::to_string(value); }

void CheckList(const std::vector<int64_t>& values, const char* name, int64_t expected, bool per_iteration,
               int64_t iterations) {
  if (static_cast<int64_t>(values.size()) != expected) {
    throw InvalidArgument(std::string(name) + " has " + Str(static_cast<int64_t>(values.size())) +
                          " entries but iterations=" + Str(iterations) + " needs " + Str(expected) + ", one per " +
                          (per_iteration ? "iteration" : "logit update (iterations - 1)"));
  }
  const bool exponents = std::string(name).find("exponents") != std::string::npos;
  for (size_t index = 0; index < values.size(); ++index) {
    const std::string argument = std::string(name) + "[" + std::to_string(index) + "]";
    if (exponents) {
      CheckExponent(values[index], argument);
    } else {
      CheckBits(values[index], argument);
    }
  }
}

/// value * 2^shift < 2^62, evaluated without overflow (value >= 0, 0 <= shift <= 62).
bool FitsAfterShift(Wide value, int shift) {
  if (value >= (Wide{1} << 62)) return false;
  return (value << shift) < (Wide{1} << 62);
}

std::string WideStr(Wide value) {
  if (value == 0) return "0";
  std::string digits;
  while (value > 0) {
    digits.insert(digits.begin(), static_cast<char>('0' + static_cast<int>(value % 10)));
    value /= 10;
  }
  return digits;
}

}  // namespace

void RoutingFormat::Validate() const {
  if (iterations < 1 || iterations > kMaxRoutingIterations) {
    throw InvalidArgument("iterations must be in 1.." + Str(kMaxRoutingIterations) + ", got " + Str(iterations));
  }
  CheckExponent(votes_exponent, "votes_exponent");
  CheckBits(votes_bits, "votes_bits");
  CheckList(coupling_bits, "coupling_bits", iterations, true, iterations);
  CheckList(pre_exponents, "pre_exponents", iterations, true, iterations);
  CheckList(pre_bits, "pre_bits", iterations, true, iterations);
  CheckList(out_bits, "out_bits", iterations, true, iterations);
  CheckList(logit_exponents, "logit_exponents", iterations - 1, false, iterations);
  CheckList(logit_bits, "logit_bits", iterations - 1, false, iterations);
}

void CheckRoutingBounds(const RoutingFormat& format, int64_t inputs, int64_t capsule_dim) {
  const Wide votes_max = Wide{1} << (format.votes_bits - 1);
  for (int64_t t = 0; t < format.iterations; ++t) {
    const int64_t coupling_bits = format.coupling_bits[t];
    const Wide accumulator_max = Wide{inputs} * ((Wide{1} << coupling_bits) - 1) * votes_max;  // < 2^94
    const int64_t left_shift = std::max<int64_t>(0, format.votes_exponent - coupling_bits - format.pre_exponents[t]);
    if (!FitsAfterShift(accumulator_max, static_cast<int>(left_shift))) {
      throw InvalidArgument("sum_I C*U can reach " + WideStr(accumulator_max) + " * 2^" + Str(left_shift) +
                            " >= 2^62 with I=" + Str(inputs) + ", coupling_bits[" + Str(t) + "]=" + Str(coupling_bits) +
                            ", votes_bits=" + Str(format.votes_bits) + " and pre_exponents[" + Str(t) + "]=" +
                            Str(format.pre_exponents[t]) + "; use fewer bits or a coarser pre_exponents[" + Str(t) +
                            "]");
    }
    if (t == format.iterations - 1) continue;
    const Wide agreement_max = Wide{capsule_dim} * votes_max * (Wide{1} << (format.out_bits[t] - 1));  // <= 2^36
    const int64_t agreement_exponent = format.votes_exponent - (format.out_bits[t] - 1);
    Wide logits_max = 0;  // B_0 = 0 aligns to anything
    int64_t logit_exponent = agreement_exponent;
    if (t > 0) {
      logits_max = Wide{1} << (format.logit_bits[t - 1] - 1);
      logit_exponent = format.logit_exponents[t - 1];
    }
    const int64_t finer = std::min(logit_exponent, agreement_exponent);
    // Shifts <= 52 on values <= 2^36: below 2^89.
    const Wide sum_max = (logits_max << (logit_exponent - finer)) + (agreement_max << (agreement_exponent - finer));
    const int64_t sum_shift = std::max<int64_t>(0, finer - format.logit_exponents[t]);
    if (!FitsAfterShift(sum_max, static_cast<int>(sum_shift))) {
      throw InvalidArgument("the logit update of iteration " + Str(t) + " can reach " + WideStr(sum_max) + " * 2^" +
                            Str(sum_shift) + " >= 2^62: logits at 2^" + Str(logit_exponent) +
                            " and agreements at 2^" + Str(agreement_exponent) +
                            " are too far apart for logit_exponents[" + Str(t) + "]=" +
                            Str(format.logit_exponents[t]) +
                            "; bring logit_exponents closer to votes_exponent - (out_bits - 1)");
    }
  }
}

namespace {

/// Whether every partial sum of `terms` products of magnitudes below 2^a and 2^b fits an int32.
bool Fits32(int64_t terms, int64_t a_bits, int64_t b_bits) {
  return Wide{terms} * (Wide{1} << a_bits) * (Wide{1} << b_bits) < (Wide{1} << 31);
}

/// acc[j, d] += c[j] * u[j, d] for one input capsule: the inner step of sum_i C U. `Acc` is int32 where
/// the format's bound allows it, which AVX2 multiplies eight lanes at a time (int64 products have no
/// AVX2 instruction). Cloned for AVX2 and the baseline; the loader picks the one the CPU runs.
template <typename T, typename Acc>
__attribute__((target_clones("avx2", "default"))) void CoupleInput(const T* u, const int64_t* c, Acc* acc,
                                                                   int64_t outputs, int64_t capsule_dim) {
  for (int64_t j = 0; j < outputs; ++j) {
    const Acc weight = static_cast<Acc>(c[j]);
    Acc* row = acc + j * capsule_dim;
    const T* vote = u + j * capsule_dim;
    for (int64_t d = 0; d < capsule_dim; ++d) row[d] += weight * static_cast<Acc>(vote[d]);
  }
}

/// a[j] = sum_d u[j, d] v[j, d] for one input capsule: its agreement with every routed capsule.
template <typename T, typename Acc>
__attribute__((target_clones("avx2", "default"))) void Agree(const T* u, const Acc* v, int64_t* agreement,
                                                             int64_t outputs, int64_t capsule_dim) {
  for (int64_t j = 0; j < outputs; ++j) {
    const T* vote = u + j * capsule_dim;
    const Acc* routed = v + j * capsule_dim;
    Acc sum = 0;
    for (int64_t d = 0; d < capsule_dim; ++d) sum += static_cast<Acc>(vote[d]) * routed[d];
    agreement[j] = static_cast<int64_t>(sum);
  }
}

/// sum_i U[i] over all input capsules into `accumulator` (int64), accumulating in `Acc`.
template <typename T, typename Acc>
__attribute__((target_clones("avx2", "default"))) void SumInputs(const T* votes, int64_t inputs,
                                                                 int64_t capsule_values, Acc* sums) {
  for (int64_t k = 0; k < capsule_values; ++k) sums[k] = 0;
  for (int64_t i = 0; i < inputs; ++i) {
    const T* vote = votes + i * capsule_values;
    for (int64_t k = 0; k < capsule_values; ++k) sums[k] += static_cast<Acc>(vote[k]);
  }
}

/// sum_i C U over all input capsules into `accumulator` (int64), accumulating in `Acc`.
template <typename T, typename Acc>
void Pre(const T* votes, const int64_t* coupling, int64_t inputs, int64_t outputs, int64_t capsule_dim,
         std::vector<Acc>& scratch, int64_t* accumulator) {
  const int64_t capsule_values = outputs * capsule_dim;
  scratch.assign(static_cast<size_t>(capsule_values), 0);
  for (int64_t i = 0; i < inputs; ++i) {
    CoupleInput(votes + i * capsule_values, coupling + i * outputs, scratch.data(), outputs, capsule_dim);
  }
  for (int64_t k = 0; k < capsule_values; ++k) accumulator[k] = static_cast<int64_t>(scratch[k]);
}

}  // namespace

template <typename T>
void RouteSample(const T* votes, int64_t inputs, int64_t outputs, int64_t capsule_dim, const RoutingFormat& format,
                 RoutingWorkspace& workspace, int64_t* out) {
  const int64_t couplings = inputs * outputs;
  const int64_t capsule_values = outputs * capsule_dim;
  workspace.logits.assign(static_cast<size_t>(couplings), 0);
  workspace.coupling.resize(static_cast<size_t>(couplings));
  workspace.accumulator.resize(static_cast<size_t>(capsule_values));
  workspace.pre.resize(static_cast<size_t>(capsule_values));
  workspace.agreement.resize(static_cast<size_t>(outputs));
  workspace.routed32.resize(static_cast<size_t>(capsule_values));
  int64_t* const logits = workspace.logits.data();
  int64_t* const coupling = workspace.coupling.data();
  int64_t* const accumulator = workspace.accumulator.data();
  int64_t* const pre = workspace.pre.data();
  int64_t* const agreement = workspace.agreement.data();
  const int votes_exponent = static_cast<int>(format.votes_exponent);
  const int64_t vote_magnitude_bits = format.votes_bits - 1;
  int logit_exponent = 0;  // B_0 = 0: its softmax is uniform whatever the exponent

  for (int64_t t = 0; t < format.iterations; ++t) {
    const int coupling_bits = static_cast<int>(format.coupling_bits[t]);
    const int pre_exponent = static_cast<int>(format.pre_exponents[t]);
    const int out_bits = static_cast<int>(format.out_bits[t]);
    if (t == 0) {
      // B_0 = 0 couples every input capsule alike (C_0[i, j] = c[j]), so sum_i C U = c[j] sum_i U[i, j]:
      // the same integers, with one softmax and additions only.
      SoftmaxVector(logits, coupling, outputs, logit_exponent, coupling_bits);
      if (Fits32(inputs, vote_magnitude_bits, 0)) {
        workspace.sums32.resize(static_cast<size_t>(capsule_values));
        SumInputs(votes, inputs, capsule_values, workspace.sums32.data());
        for (int64_t k = 0; k < capsule_values; ++k) accumulator[k] = workspace.sums32[k];
      } else {
        SumInputs(votes, inputs, capsule_values, accumulator);
      }
      for (int64_t k = 0; k < capsule_values; ++k) accumulator[k] *= coupling[k / capsule_dim];
    } else {
      // 1. Couple: C_t = softmax over J of each input capsule's logits.
      for (int64_t i = 0; i < inputs; ++i) {
        SoftmaxVector(logits + i * outputs, coupling + i * outputs, outputs, logit_exponent, coupling_bits);
      }
      // 2. Pre-activate: sum_i C U at exponent e_u - bc (int32 wherever its bound allows).
      if (Fits32(inputs, coupling_bits, vote_magnitude_bits)) {
        Pre(votes, coupling, inputs, outputs, capsule_dim, workspace.sums32, accumulator);
      } else {
        Pre(votes, coupling, inputs, outputs, capsule_dim, workspace.sums64, accumulator);
      }
    }
    // ... then one rounding shift to pre_exponents[t].
    const int pre_shift = pre_exponent - (votes_exponent - coupling_bits);
    const int pre_bits = static_cast<int>(format.pre_bits[t]);
    for (int64_t k = 0; k < capsule_values; ++k) pre[k] = RequantizeSigned(accumulator[k], pre_shift, pre_bits);
    // 3. Squash each output capsule.
    for (int64_t j = 0; j < outputs; ++j) {
      SquashCapsule(pre + j * capsule_dim, out + j * capsule_dim, capsule_dim, pre_exponent, out_bits);
    }
    if (t == format.iterations - 1) break;
    // 4. Update the logits: agreement A = sum_d U V_t at e_a, added to B_t exactly at the finer exponent,
    // then rounded once to the new logit format.
    const int agreement_exponent = votes_exponent - (out_bits - 1);
    if (t == 0) logit_exponent = agreement_exponent;
    const int finer = logit_exponent < agreement_exponent ? logit_exponent : agreement_exponent;
    const int64_t logit_scale = int64_t{1} << (logit_exponent - finer);
    const int64_t agreement_scale = int64_t{1} << (agreement_exponent - finer);
    const int new_exponent = static_cast<int>(format.logit_exponents[t]);
    const int new_bits = static_cast<int>(format.logit_bits[t]);
    const bool agree32 = Fits32(capsule_dim, vote_magnitude_bits, out_bits - 1);
    if (agree32) {
      for (int64_t k = 0; k < capsule_values; ++k) workspace.routed32[k] = static_cast<int32_t>(out[k]);
    }
    for (int64_t i = 0; i < inputs; ++i) {
      const T* vote = votes + i * capsule_values;
      if (agree32) {
        Agree(vote, workspace.routed32.data(), agreement, outputs, capsule_dim);
      } else {
        Agree(vote, out, agreement, outputs, capsule_dim);  // |A| <= D 2^(bu-1) 2^(bv-1) <= 2^36
      }
      for (int64_t j = 0; j < outputs; ++j) {
        int64_t& logit = logits[i * outputs + j];
        const int64_t exact_sum = logit * logit_scale + agreement[j] * agreement_scale;
        logit = RequantizeSigned(exact_sum, new_exponent - finer, new_bits);
      }
    }
    logit_exponent = new_exponent;
  }
}

template void RouteSample<int8_t>(const int8_t*, int64_t, int64_t, int64_t, const RoutingFormat&, RoutingWorkspace&,
                                  int64_t*);
template void RouteSample<int16_t>(const int16_t*, int64_t, int64_t, int64_t, const RoutingFormat&,
                                   RoutingWorkspace&, int64_t*);
template void RouteSample<int32_t>(const int32_t*, int64_t, int64_t, int64_t, const RoutingFormat&,
                                   RoutingWorkspace&, int64_t*);

}  // namespace capsnet
