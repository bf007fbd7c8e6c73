// Integer dynamic routing (routing by agreement) of one sample (docs/integer-ops.md, section 6), bit for
// bit the torch reference capsnet_nncf_plugin.ops.int_dynamic_routing, plus the format and bound checks
// of section 6.4.
#pragma once

#include <cstdint>
#include <vector>

namespace capsnet {

/// The formats of every quantity inside routing, per iteration: the IntDynamicRouting attributes, in the
/// field order of capsnet_nncf_plugin.ops.RoutingQuantization.
struct RoutingFormat {
  int64_t iterations = 0;
  int64_t votes_exponent = 0;
  int64_t votes_bits = 0;
  std::vector<int64_t> coupling_bits;    // T entries
  std::vector<int64_t> pre_exponents;    // T entries
  std::vector<int64_t> pre_bits;         // T entries
  std::vector<int64_t> out_bits;         // T entries
  std::vector<int64_t> logit_exponents;  // T - 1 entries
  std::vector<int64_t> logit_bits;       // T - 1 entries

  /// Ranges and list lengths; throws InvalidArgument naming the attribute.
  void Validate() const;
  /// Signed bit-width of the routed capsules (the last iteration's squash); call after Validate().
  int OutputBits() const { return static_cast<int>(out_bits.back()); }
};

/// Throws InvalidArgument if any intermediate of routing `inputs` (I) input capsules of dimension
/// `capsule_dim` (D) could reach 2^62 for some votes of the declared formats (section 6.4).
void CheckRoutingBounds(const RoutingFormat& format, int64_t inputs, int64_t capsule_dim);

/// Scratch memory of one routing sample, reused across the samples a thread routes.
struct RoutingWorkspace {
  std::vector<int64_t> logits;       // B_t [I, J]
  std::vector<int64_t> coupling;     // C_t [I, J]
  std::vector<int64_t> accumulator;  // sum_i C U [J, D]
  std::vector<int64_t> pre;          // S_t [J, D]
  std::vector<int64_t> agreement;    // A_t[i, :] [J]
  std::vector<int32_t> routed32;     // V_t [J, D], when the agreement fits int32
  std::vector<int32_t> sums32;       // sum_i C U [J, D], when it fits int32
  std::vector<int64_t> sums64;       // sum_i C U [J, D], otherwise
};

/// Route the votes [I, J, D] of one sample (validated: values within the signed votes_bits range, shape
/// and formats passing the checks above) into `out` [J, D]: V_{T-1}, signed OutputBits() bits.
template <typename T>
void RouteSample(const T* votes, int64_t inputs, int64_t outputs, int64_t capsule_dim, const RoutingFormat& format,
                 RoutingWorkspace& workspace, int64_t* out);

extern template void RouteSample<int8_t>(const int8_t*, int64_t, int64_t, int64_t, const RoutingFormat&,
                                         RoutingWorkspace&, int64_t*);
extern template void RouteSample<int16_t>(const int16_t*, int64_t, int64_t, int64_t, const RoutingFormat&,
                                          RoutingWorkspace&, int64_t*);
extern template void RouteSample<int32_t>(const int32_t*, int64_t, int64_t, int64_t, const RoutingFormat&,
                                          RoutingWorkspace&, int64_t*);

}  // namespace capsnet
