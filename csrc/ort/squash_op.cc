#include "squash_op.h"

#include <algorithm>
#include <string>
#include <vector>

#include "../capsnet_ops/limits.h"
#include "../capsnet_ops/squash.h"

namespace capsnet_ort {
namespace {

/// Capsules per parallel task: enough work to amortise a hand-off to the thread pool.
constexpr int64_t kValuesPerTask = int64_t{1} << 15;

std::string ShapeString(const std::vector<int64_t>& shape) {
  std::string text = "[";
  for (size_t index = 0; index < shape.size(); ++index) {
    text += (index ? ", " : "") + std::to_string(shape[index]);
  }
  return text + "]";
}

/// Squash capsules [first, last) of a tensor laid out [outer, D, inner]: capsule c is
/// (c / inner, :, c % inner).
template <typename TIn, typename TOut>
void SquashRange(const TIn* input, TOut* output, int64_t first, int64_t last, int64_t capsule_dim, int64_t inner,
                 int exponent_in, int bits_out) {
  int64_t capsule[capsnet::kMaxCapsuleDim];
  for (int64_t c = first; c < last; ++c) {
    const int64_t base = (c / inner) * capsule_dim * inner + c % inner;
    for (int64_t d = 0; d < capsule_dim; ++d) capsule[d] = static_cast<int64_t>(input[base + d * inner]);
    capsnet::SquashCapsule(capsule, capsule, capsule_dim, exponent_in, bits_out);
    for (int64_t d = 0; d < capsule_dim; ++d) output[base + d * inner] = static_cast<TOut>(capsule[d]);
  }
}

template <typename TIn, typename TOut>
void SquashTensor(const OrtApi& api, OrtKernelContext* context, const TIn* input, TOut* output, int64_t capsules,
                  int64_t capsule_dim, int64_t inner, int exponent_in, int bits_out) {
  const int64_t per_task = std::max<int64_t>(1, kValuesPerTask / capsule_dim);
  const int64_t tasks = (capsules + per_task - 1) / per_task;
  ParallelFor(api, context, tasks, [&](int64_t task) {
    const int64_t first = task * per_task;
    const int64_t last = std::min(capsules, first + per_task);
    SquashRange(input, output, first, last, capsule_dim, inner, exponent_in, bits_out);
  });
}

template <typename TIn>
void CheckValues(const TIn* input, int64_t count) {
  if (count == 0) return;
  int64_t smallest = 0;
  int64_t largest = 0;
  capsnet::MinMax(input, count, &smallest, &largest);
  capsnet::CheckSignedRange(smallest, largest, capsnet::kMaxInputBits, "s");
}

template <typename TIn>
void Dispatch(const OrtApi& api, OrtKernelContext* context, const void* input, void* output,
              ONNXTensorElementDataType output_type, int64_t count, int64_t capsule_dim, int64_t inner,
              int exponent_in, int bits_out) {
  const auto* in = static_cast<const TIn*>(input);
  CheckValues(in, count);
  const int64_t capsules = count / capsule_dim;
  if (output_type == ONNX_TENSOR_ELEMENT_DATA_TYPE_INT8) {
    SquashTensor(api, context, in, static_cast<int8_t*>(output), capsules, capsule_dim, inner, exponent_in, bits_out);
  } else {
    SquashTensor(api, context, in, static_cast<int16_t*>(output), capsules, capsule_dim, inner, exponent_in,
                 bits_out);
  }
}

}  // namespace

SquashKernel::SquashKernel(const OrtApi& api, const OrtKernelInfo* info) : api_(api) {
  const Attributes attributes(api, info, kName);
  exponent_in_ = attributes.Int("exponent_in");
  bits_out_ = attributes.Int("bits_out");
  axis_ = attributes.Int("axis", -1);
  capsnet::CheckExponent(exponent_in_, "exponent_in");
  capsnet::CheckBits(bits_out_, "bits_out");
  CheckDeclaredOutputType(api, info, SignedStorageType(bits_out_), bits_out_, "bits_out");
}

void SquashKernel::Compute(OrtKernelContext* raw_context) const {
  Ort::KernelContext context(raw_context);
  const Ort::ConstValue input = context.GetInput(0);
  if (!input || !input.IsTensor()) throw capsnet::InvalidArgument("input s must be a tensor");
  const Ort::TensorTypeAndShapeInfo info = input.GetTensorTypeAndShapeInfo();
  const ONNXTensorElementDataType input_type = info.GetElementType();
  const std::vector<int64_t> shape = info.GetShape();
  const int64_t rank = static_cast<int64_t>(shape.size());
  if (rank == 0) {
    throw capsnet::InvalidArgument("s is a scalar; squash needs a capsule dimension (pass a tensor [..., D])");
  }
  if (axis_ < -rank || axis_ >= rank) {
    throw capsnet::InvalidArgument("axis=" + std::to_string(axis_) + " is not a dimension of s with shape " +
                                   ShapeString(shape));
  }
  const int64_t axis = axis_ < 0 ? axis_ + rank : axis_;
  const int64_t capsule_dim = shape[axis];
  if (capsule_dim < 1 || capsule_dim > capsnet::kMaxCapsuleDim) {
    throw capsnet::InvalidArgument("s has capsule dimension " + std::to_string(capsule_dim) + " along axis=" +
                                   std::to_string(axis) + "; IntSquash supports 1.." +
                                   std::to_string(capsnet::kMaxCapsuleDim) +
                                   " (the bound that keeps |s|^2 within 2^36); squash along the capsule axis");
  }
  const int64_t count = static_cast<int64_t>(info.GetElementCount());

  Ort::UnownedValue output = context.GetOutput(0, shape);
  if (!output) throw capsnet::InvalidArgument("the node has no output tensor to write");
  const ONNXTensorElementDataType output_type = output.GetTensorTypeAndShapeInfo().GetElementType();
  if (output_type != SignedStorageType(bits_out_)) {
    throw capsnet::InvalidArgument(std::string("output is ") + ElementTypeName(output_type) + " but bits_out=" +
                                   std::to_string(bits_out_) + " needs " +
                                   ElementTypeName(SignedStorageType(bits_out_)));
  }
  if (count == 0) return;
  int64_t inner = 1;  // the product of a non-empty tensor's trailing dims cannot overflow
  for (int64_t d = axis + 1; d < rank; ++d) inner *= shape[d];
  const void* in = input.GetTensorRawData();
  void* out = output.GetTensorMutableRawData();
  const int exponent_in = static_cast<int>(exponent_in_);
  const int bits_out = static_cast<int>(bits_out_);
  switch (input_type) {
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_INT8:
      Dispatch<int8_t>(api_, raw_context, in, out, output_type, count, capsule_dim, inner, exponent_in, bits_out);
      break;
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_INT16:
      Dispatch<int16_t>(api_, raw_context, in, out, output_type, count, capsule_dim, inner, exponent_in, bits_out);
      break;
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_INT32:
      Dispatch<int32_t>(api_, raw_context, in, out, output_type, count, capsule_dim, inner, exponent_in, bits_out);
      break;
    default:
      throw capsnet::InvalidArgument(std::string("s has element type ") + ElementTypeName(input_type) +
                                     "; IntSquash takes int8, int16 or int32");
  }
}

}  // namespace capsnet_ort
