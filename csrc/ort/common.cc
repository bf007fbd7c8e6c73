#include "common.h"

namespace capsnet_ort {
namespace {

/// Releases the status and says whether it was a success.
bool Succeeded(const OrtApi& api, OrtStatusPtr status) {
  if (status == nullptr) return true;
  api.ReleaseStatus(status);
  return false;
}

}  // namespace

void ThrowIfError(const OrtApi& api, OrtStatusPtr status, const std::string& context) {
  if (status == nullptr) return;
  const std::string message = context + ": " + api.GetErrorMessage(status);
  const OrtErrorCode code = api.GetErrorCode(status);
  api.ReleaseStatus(status);
  throw Ort::Exception(std::string(message), code);
}

void Attributes::Fail(const char* name, const std::string& problem) const {
  throw capsnet::InvalidArgument(std::string("attribute '") + name + "' " + problem);
}

bool Attributes::TryInt(const char* name, int64_t* value) const {
  return Succeeded(api_, api_.KernelInfoGetAttribute_int64(info_, name, value));
}

bool Attributes::TryInts(const char* name, std::vector<int64_t>* values) const {
  // onnxruntime reads a list attribute without checking its type (any attribute reads as its `ints`
  // field), so an empty result is accepted only when the attribute is not an int, float, string or floats.
  size_t size = 0;
  if (!Succeeded(api_, api_.KernelInfoGetAttributeArray_int64(info_, name, nullptr, &size))) return false;
  values->assign(size, 0);
  if (size == 0) {
    int64_t int_value = 0;
    float float_value = 0.0f;
    size_t other_size = 0;
    if (Succeeded(api_, api_.KernelInfoGetAttribute_int64(info_, name, &int_value)) ||
        Succeeded(api_, api_.KernelInfoGetAttribute_float(info_, name, &float_value)) ||
        Succeeded(api_, api_.KernelInfoGetAttribute_string(info_, name, nullptr, &other_size))) {
      return false;
    }
    other_size = 0;
    const bool floats = Succeeded(api_, api_.KernelInfoGetAttributeArray_float(info_, name, nullptr, &other_size));
    return !(floats && other_size > 0);
  }
  return Succeeded(api_, api_.KernelInfoGetAttributeArray_int64(info_, name, values->data(), &size)) &&
         size == values->size();
}

bool Attributes::Exists(const char* name) const {
  // Reading any attribute as a list of ints succeeds (see TryInts): it fails only for an absent one.
  size_t size = 0;
  return Succeeded(api_, api_.KernelInfoGetAttributeArray_int64(info_, name, nullptr, &size));
}

int64_t Attributes::Int(const char* name) const {
  int64_t value = 0;
  if (TryInt(name, &value)) return value;
  Fail(name, Exists(name) ? "must be an int (a single integer, not a list, float or string)"
                          : "is missing: it is required (an int)");
}

int64_t Attributes::Int(const char* name, int64_t fallback) const {
  int64_t value = 0;
  if (TryInt(name, &value)) return value;
  if (Exists(name)) Fail(name, "must be an int (a single integer, not a list, float or string)");
  return fallback;
}

std::vector<int64_t> Attributes::Ints(const char* name) const {
  std::vector<int64_t> values;
  if (TryInts(name, &values)) return values;
  Fail(name, Exists(name) ? "must be a list of ints"
                          : "is missing: it is required (a list of ints, one per iteration)");
}

std::vector<int64_t> Attributes::IntsOrEmpty(const char* name) const {
  std::vector<int64_t> values;
  if (TryInts(name, &values)) return values;
  if (Exists(name)) Fail(name, "must be a list of ints");
  return {};
}

const char* ElementTypeName(ONNXTensorElementDataType type) {
  switch (type) {
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_INT8:
      return "int8";
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_INT16:
      return "int16";
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_INT32:
      return "int32";
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_INT64:
      return "int64";
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT8:
      return "uint8";
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT16:
      return "uint16";
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT:
      return "float";
    default:
      return "another element type";
  }
}

void CheckDeclaredOutputType(const OrtApi& api, const OrtKernelInfo* info, ONNXTensorElementDataType expected,
                             int64_t bits, const char* bits_attribute) {
  size_t outputs = 0;
  ThrowIfError(api, api.KernelInfo_GetOutputCount(info, &outputs), "reading the node's outputs");
  if (outputs != 1) {
    throw capsnet::InvalidArgument("the node must have exactly one output, got " + std::to_string(outputs));
  }
  OrtTypeInfo* type_info = nullptr;
  ThrowIfError(api, api.KernelInfo_GetOutputTypeInfo(info, 0, &type_info),
               "the type of output 0 is unknown (declare it in the graph outputs or value_info)");
  const OrtTensorTypeAndShapeInfo* tensor_info = nullptr;
  OrtStatusPtr status = api.CastTypeInfoToTensorInfo(type_info, &tensor_info);
  ONNXTensorElementDataType declared = ONNX_TENSOR_ELEMENT_DATA_TYPE_UNDEFINED;
  if (status == nullptr && tensor_info != nullptr) status = api.GetTensorElementType(tensor_info, &declared);
  api.ReleaseTypeInfo(type_info);
  ThrowIfError(api, status, "output 0 must be a tensor");
  if (declared != expected) {
    throw capsnet::InvalidArgument(std::string("output 0 is declared as ") + ElementTypeName(declared) +
                                   " (element type " + std::to_string(static_cast<int>(declared)) + ") but " +
                                   bits_attribute + "=" + std::to_string(bits) + " makes it " +
                                   ElementTypeName(expected) +
                                   " (int8 up to 8 bits, else int16); fix the output's type in the model");
  }
}

}  // namespace capsnet_ort
