// What the two onnxruntime kernels share: the API version they target, turning C++ exceptions into
// OrtStatus, attribute readers, the output dtype rule, a deterministic parallel loop on onnxruntime's
// intra-op thread pool, and the OrtCustomOp wrapper registered once per input dtype.
//
// The library uses onnxruntime's headers only (ORT_API_MANUAL_INIT): every call goes through the OrtApi
// table that RegisterCustomOps receives, so it links against no onnxruntime library and loads into any
// onnxruntime whose C API is at least version kOrtApiVersion.
#pragma once

#ifndef ORT_API_MANUAL_INIT
#error "define ORT_API_MANUAL_INIT (the CMake target does): the library must not link libonnxruntime"
#endif

#include <onnxruntime_cxx_api.h>

#include <atomic>
#include <cstdint>
#include <exception>
#include <mutex>
#include <new>
#include <string>
#include <type_traits>
#include <vector>

#include "../capsnet_ops/limits.h"

namespace capsnet_ort {

/// onnxruntime 1.21: the oldest runtime the library supports (Debian trixie's libonnxruntime-dev).
inline constexpr uint32_t kOrtApiVersion = 21;
static_assert(ORT_API_VERSION >= kOrtApiVersion, "onnxruntime headers of version 1.21 or newer are needed");

/// The ONNX domain of the ops (version 1).
inline constexpr const char* kDomain = "capsnet";

/// An OrtStatus with `code` and the message "<op_name>: <message>".
inline OrtStatusPtr MakeStatus(const OrtApi& api, OrtErrorCode code, const char* op_name,
                               const char* message) noexcept {
  try {
    return api.CreateStatus(code, (std::string(op_name) + ": " + message).c_str());
  } catch (...) {  // no memory left for the message
    return api.CreateStatus(code, op_name);
  }
}

/// Runs `body`; returns nullptr, or an OrtStatus carrying the message of whatever it threw. No exception
/// leaves the library: onnxruntime calls it through a C interface.
template <typename Body>
OrtStatusPtr Guard(const OrtApi& api, const char* op_name, Body&& body) noexcept {
  try {
    body();
    return nullptr;
  } catch (const capsnet::InvalidArgument& error) {
    return MakeStatus(api, ORT_INVALID_ARGUMENT, op_name, error.what());
  } catch (const Ort::Exception& error) {
    return MakeStatus(api, error.GetOrtErrorCode(), op_name, error.what());
  } catch (const std::bad_alloc&) {
    return MakeStatus(api, ORT_FAIL, op_name, "out of memory");
  } catch (const std::exception& error) {
    return MakeStatus(api, ORT_RUNTIME_EXCEPTION, op_name, error.what());
  } catch (...) {
    return MakeStatus(api, ORT_RUNTIME_EXCEPTION, op_name, "unknown error");
  }
}

/// Throws Ort::Exception with the status' message (and releases it) unless it is nullptr.
void ThrowIfError(const OrtApi& api, OrtStatusPtr status, const std::string& context);

/// Reads node attributes, naming the op and the attribute in every error.
class Attributes {
 public:
  Attributes(const OrtApi& api, const OrtKernelInfo* info, const char* op_name)
      : api_(api), info_(info), op_name_(op_name) {}

  /// A required int attribute.
  int64_t Int(const char* name) const;
  /// An optional int attribute; `fallback` when the node does not have it.
  int64_t Int(const char* name, int64_t fallback) const;
  /// A required list-of-ints attribute.
  std::vector<int64_t> Ints(const char* name) const;
  /// An optional list-of-ints attribute; empty when the node does not have it.
  std::vector<int64_t> IntsOrEmpty(const char* name) const;

 private:
  bool TryInt(const char* name, int64_t* value) const;
  bool TryInts(const char* name, std::vector<int64_t>* values) const;
  /// True if the node has an attribute `name` of any type (used to tell "absent" from "wrong type").
  bool Exists(const char* name) const;
  [[noreturn]] void Fail(const char* name, const std::string& problem) const;

  const OrtApi& api_;
  const OrtKernelInfo* info_;
  const char* op_name_;
};

/// Output dtype of a signed `bits`-bit result: int8 up to 8 bits, else int16 (docs/integer-ops.md, 1).
inline ONNXTensorElementDataType SignedStorageType(int64_t bits) {
  return bits <= 8 ? ONNX_TENSOR_ELEMENT_DATA_TYPE_INT8 : ONNX_TENSOR_ELEMENT_DATA_TYPE_INT16;
}

const char* ElementTypeName(ONNXTensorElementDataType type);

/// Fails unless the node's output 0 is declared as a tensor of `expected` (the model states it, in a
/// graph output or value_info, since the type depends on an attribute; see docs/runtime.md).
void CheckDeclaredOutputType(const OrtApi& api, const OrtKernelInfo* info, ONNXTensorElementDataType expected,
                             int64_t bits, const char* bits_attribute);

/// Calls body(task) for task in [0, tasks), on onnxruntime's intra-op thread pool when there is more than
/// one task. Every task writes its own part of the output, so the result is the same for any number of
/// threads. The first exception a task throws is rethrown here after all tasks ended.
template <typename Body>
void ParallelFor(const OrtApi& api, OrtKernelContext* context, int64_t tasks, Body&& body) {
  if (tasks <= 0) return;
  if (tasks == 1) {
    body(int64_t{0});
    return;
  }
  struct Shared {
    std::remove_reference_t<Body>* body;
    std::atomic<int64_t> started{0};
    std::mutex mutex;
    std::exception_ptr error;
  } shared;
  shared.body = &body;
  auto trampoline = [](void* data, size_t task) {
    auto* state = static_cast<Shared*>(data);
    state->started.fetch_add(1, std::memory_order_relaxed);
    try {
      (*state->body)(static_cast<int64_t>(task));
    } catch (...) {
      std::lock_guard<std::mutex> lock(state->mutex);
      if (!state->error) state->error = std::current_exception();
    }
  };
  OrtStatusPtr status = api.KernelContext_ParallelFor(context, trampoline, static_cast<size_t>(tasks), 0, &shared);
  if (status != nullptr) {
    const bool nothing_ran = shared.started.load() == 0;
    if (!nothing_ran) ThrowIfError(api, status, "parallel loop");
    api.ReleaseStatus(status);
    // The runtime offers no thread pool here (e.g. a build without the kernel-context API): run serially.
    for (int64_t task = 0; task < tasks; ++task) body(task);
    return;
  }
  if (shared.error) std::rethrow_exception(shared.error);
}

/// The OrtCustomOp of one kernel for one input dtype: onnxruntime picks the variant by the input's type.
/// The output is declared with an undefined type, optional, so that onnxruntime takes its type from the
/// model rather than from the input (it depends on the bits attribute).
template <typename TKernel>
struct CapsnetOp : Ort::CustomOpBase<CapsnetOp<TKernel>, TKernel, true> {
  explicit CapsnetOp(ONNXTensorElementDataType input_type) : input_type_(input_type) {
    // Built with newer headers, still claim only the API version the library needs, so that it loads into
    // every onnxruntime from 1.21 on (a runtime rejects custom ops of a version newer than its own).
    OrtCustomOp::version = kOrtApiVersion;
  }

  OrtStatusPtr CreateKernelV2(const OrtApi& api, const OrtKernelInfo* info, void** kernel) const {
    *kernel = nullptr;
    return Guard(api, TKernel::kName, [&] { *kernel = new TKernel(api, info); });
  }

  const char* GetName() const { return TKernel::kName; }
  size_t GetInputTypeCount() const { return 1; }
  ONNXTensorElementDataType GetInputType(size_t /*index*/) const { return input_type_; }
  size_t GetOutputTypeCount() const { return 1; }
  ONNXTensorElementDataType GetOutputType(size_t /*index*/) const { return ONNX_TENSOR_ELEMENT_DATA_TYPE_UNDEFINED; }
  OrtCustomOpInputOutputCharacteristic GetOutputCharacteristic(size_t /*index*/) const {
    return OrtCustomOpInputOutputCharacteristic::INPUT_OUTPUT_OPTIONAL;
  }

 private:
  ONNXTensorElementDataType input_type_;
};

/// Input dtypes the kernels accept (docs/integer-ops.md: int8, int16 or int32).
inline constexpr ONNXTensorElementDataType kInputTypes[] = {
    ONNX_TENSOR_ELEMENT_DATA_TYPE_INT8,
    ONNX_TENSOR_ELEMENT_DATA_TYPE_INT16,
    ONNX_TENSOR_ELEMENT_DATA_TYPE_INT32,
};

}  // namespace capsnet_ort
