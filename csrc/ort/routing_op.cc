#include "routing_op.h"

#include <algorithm>
#include <string>
#include <vector>

#include "../capsnet_ops/limits.h"

namespace capsnet_ort {
namespace {

/// Multiply-adds per parallel task: samples are grouped until a task has about this much work.
constexpr int64_t kWorkPerTask = int64_t{1} << 16;

template <typename TIn, typename TOut>
void RouteBatch(const OrtApi& api, OrtKernelContext* context, const TIn* votes, TOut* output, int64_t samples,
                int64_t inputs, int64_t outputs, int64_t capsule_dim, const capsnet::RoutingFormat& format) {
  const int64_t sample_votes = inputs * outputs * capsule_dim;
  const int64_t sample_outputs = outputs * capsule_dim;
  const int64_t per_task = std::max<int64_t>(1, kWorkPerTask / std::max<int64_t>(1, sample_votes));
  const int64_t tasks = (samples + per_task - 1) / per_task;
  ParallelFor(api, context, tasks, [&](int64_t task) {
    capsnet::RoutingWorkspace workspace;
    std::vector<int64_t> routed(static_cast<size_t>(sample_outputs));
    const int64_t last = std::min(samples, (task + 1) * per_task);
    for (int64_t n = task * per_task; n < last; ++n) {
      capsnet::RouteSample(votes + n * sample_votes, inputs, outputs, capsule_dim, format, workspace, routed.data());
      TOut* out = output + n * sample_outputs;
      for (int64_t k = 0; k < sample_outputs; ++k) out[k] = static_cast<TOut>(routed[static_cast<size_t>(k)]);
    }
  });
}

template <typename TIn>
void Dispatch(const OrtApi& api, OrtKernelContext* context, const void* input, void* output,
              ONNXTensorElementDataType output_type, const std::vector<int64_t>& shape,
              const capsnet::RoutingFormat& format) {
  const auto* votes = static_cast<const TIn*>(input);
  const int64_t count = shape[0] * shape[1] * shape[2] * shape[3];
  if (count == 0) return;
  int64_t smallest = 0;
  int64_t largest = 0;
  capsnet::MinMax(votes, count, &smallest, &largest);
  capsnet::CheckSignedRange(smallest, largest, static_cast<int>(format.votes_bits), "votes");
  if (output_type == ONNX_TENSOR_ELEMENT_DATA_TYPE_INT8) {
    RouteBatch(api, context, votes, static_cast<int8_t*>(output), shape[0], shape[1], shape[2], shape[3], format);
  } else {
    RouteBatch(api, context, votes, static_cast<int16_t*>(output), shape[0], shape[1], shape[2], shape[3], format);
  }
}

}  // namespace

RoutingKernel::RoutingKernel(const OrtApi& api, const OrtKernelInfo* info) : api_(api) {
  const Attributes attributes(api, info, kName);
  format_.iterations = attributes.Int("iterations");
  format_.votes_exponent = attributes.Int("votes_exponent");
  format_.votes_bits = attributes.Int("votes_bits");
  format_.coupling_bits = attributes.Ints("coupling_bits");
  format_.pre_exponents = attributes.Ints("pre_exponents");
  format_.pre_bits = attributes.Ints("pre_bits");
  format_.out_bits = attributes.Ints("out_bits");
  format_.logit_exponents = attributes.IntsOrEmpty("logit_exponents");
  format_.logit_bits = attributes.IntsOrEmpty("logit_bits");
  format_.Validate();
  const int64_t output_bits = format_.OutputBits();
  CheckDeclaredOutputType(api, info, SignedStorageType(output_bits), output_bits, "out_bits[iterations - 1]");
}

void RoutingKernel::Compute(OrtKernelContext* raw_context) const {
  Ort::KernelContext context(raw_context);
  const Ort::ConstValue input = context.GetInput(0);
  if (!input || !input.IsTensor()) throw capsnet::InvalidArgument("input votes must be a tensor");
  const Ort::TensorTypeAndShapeInfo info = input.GetTensorTypeAndShapeInfo();
  const ONNXTensorElementDataType input_type = info.GetElementType();
  const std::vector<int64_t> shape = info.GetShape();
  if (shape.size() != 4) {
    throw capsnet::InvalidArgument("votes must be [N, I, J, D] (rank 4), got rank " + std::to_string(shape.size()) +
                                   "; fold spatial positions into N for 3D routing");
  }
  const int64_t inputs = shape[1];
  const int64_t outputs = shape[2];
  const int64_t capsule_dim = shape[3];
  if (outputs < 1 || outputs > capsnet::kMaxSoftmaxLength) {
    throw capsnet::InvalidArgument("votes has J=" + std::to_string(outputs) + " output capsules; routing needs 1.." +
                                   std::to_string(capsnet::kMaxSoftmaxLength));
  }
  if (capsule_dim < 1 || capsule_dim > capsnet::kMaxCapsuleDim) {
    throw capsnet::InvalidArgument("votes has capsule dimension D=" + std::to_string(capsule_dim) +
                                   "; integer squash supports 1.." + std::to_string(capsnet::kMaxCapsuleDim));
  }
  if (inputs < 1) {
    throw capsnet::InvalidArgument("votes has I=" + std::to_string(inputs) +
                                   " input capsules; routing needs at least one");
  }
  capsnet::CheckRoutingBounds(format_, inputs, capsule_dim);

  const std::vector<int64_t> output_shape = {shape[0], outputs, capsule_dim};
  Ort::UnownedValue output = context.GetOutput(0, output_shape);
  if (!output) throw capsnet::InvalidArgument("the node has no output tensor to write");
  const ONNXTensorElementDataType expected = SignedStorageType(format_.OutputBits());
  const ONNXTensorElementDataType output_type = output.GetTensorTypeAndShapeInfo().GetElementType();
  if (output_type != expected) {
    throw capsnet::InvalidArgument(std::string("output is ") + ElementTypeName(output_type) + " but out_bits[-1]=" +
                                   std::to_string(format_.OutputBits()) + " needs " + ElementTypeName(expected));
  }
  const void* in = input.GetTensorRawData();
  void* out = output.GetTensorMutableRawData();
  switch (input_type) {
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_INT8:
      Dispatch<int8_t>(api_, raw_context, in, out, output_type, shape, format_);
      break;
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_INT16:
      Dispatch<int16_t>(api_, raw_context, in, out, output_type, shape, format_);
      break;
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_INT32:
      Dispatch<int32_t>(api_, raw_context, in, out, output_type, shape, format_);
      break;
    default:
      throw capsnet::InvalidArgument(std::string("votes has element type ") + ElementTypeName(input_type) +
                                     "; IntDynamicRouting takes int8, int16 or int32");
  }
}

}  // namespace capsnet_ort
