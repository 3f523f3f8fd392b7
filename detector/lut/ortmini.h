// ortmini.h: the small part of ONNX Runtime's C ABI (API version 24, ORT
// 1.24) that the LUT custom operator uses, declared here because cgo cannot
// include onnxruntime_go's copy of onnxruntime_c_api.h from this package.
//
// OrtApi is a table of function pointers that ORT only ever appends to, so a
// function is reached by its index in that table. TestABIMatchesHeader
// compiles a probe against onnxruntime_go's header and checks every index,
// the OrtCustomOp layout and the enum values below.
#ifndef EDGEDET_LUT_ORTMINI_H
#define EDGEDET_LUT_ORTMINI_H

#include <stddef.h>
#include <stdint.h>

#define LUT_ORT_API_VERSION 24

typedef struct OrtStatus OrtStatus;
typedef struct OrtApi OrtApi;
typedef struct OrtKernelInfo OrtKernelInfo;
typedef struct OrtKernelContext OrtKernelContext;
typedef struct OrtValue OrtValue;
typedef struct OrtTensorTypeAndShapeInfo OrtTensorTypeAndShapeInfo;
typedef struct OrtCustomOpDomain OrtCustomOpDomain;
typedef struct OrtSessionOptions OrtSessionOptions;
typedef struct OrtShapeInferContext OrtShapeInferContext;

typedef struct OrtApiBase {
  const OrtApi *(*GetApi)(uint32_t version);
  const char *(*GetVersionString)(void);
} OrtApiBase;

// Enum values used (checked against the header).
enum {
  LUT_ELEM_FLOAT = 1,
  LUT_ELEM_UINT8 = 2,
  LUT_ELEM_INT8 = 3,
  LUT_ORT_FAIL = 1,
  LUT_ORT_INVALID_ARGUMENT = 2,
  LUT_IO_REQUIRED = 0,
  LUT_MEM_DEFAULT = 0,
};

// Indices of the OrtApi functions used (checked against the header).
enum {
  LUT_API_CreateStatus = 0,
  LUT_API_GetErrorMessage = 2,
  LUT_API_CreateCustomOpDomain = 26,
  LUT_API_CustomOpDomain_Add = 27,
  LUT_API_AddCustomOpDomain = 28,
  LUT_API_GetTensorMutableData = 51,
  LUT_API_GetTensorElementType = 60,
  LUT_API_GetDimensionsCount = 61,
  LUT_API_GetDimensions = 62,
  LUT_API_GetTensorShapeElementCount = 64,
  LUT_API_GetTensorTypeAndShape = 65,
  LUT_API_KernelContext_GetInputCount = 88,
  LUT_API_KernelContext_GetInput = 90,
  LUT_API_KernelContext_GetOutput = 91,
  LUT_API_ReleaseStatus = 93,
  LUT_API_ReleaseTensorTypeAndShapeInfo = 99,
  LUT_API_ReleaseCustomOpDomain = 101,
  LUT_API_ShapeInferContext_GetInputTypeShape = 268,
  LUT_API_ShapeInferContext_SetOutputTypeShape = 270,
  LUT_API_KernelContext_ParallelFor = 274,
};

// OrtCustomOp, field for field as in onnxruntime_c_api.h (API 24).
typedef struct OrtCustomOp {
  uint32_t version;
  void *(*CreateKernel)(const struct OrtCustomOp *op, const OrtApi *api, const OrtKernelInfo *info);
  const char *(*GetName)(const struct OrtCustomOp *op);
  const char *(*GetExecutionProviderType)(const struct OrtCustomOp *op);
  int (*GetInputType)(const struct OrtCustomOp *op, size_t index);
  size_t (*GetInputTypeCount)(const struct OrtCustomOp *op);
  int (*GetOutputType)(const struct OrtCustomOp *op, size_t index);
  size_t (*GetOutputTypeCount)(const struct OrtCustomOp *op);
  void (*KernelCompute)(void *kernel, OrtKernelContext *context);
  void (*KernelDestroy)(void *kernel);
  int (*GetInputCharacteristic)(const struct OrtCustomOp *op, size_t index);
  int (*GetOutputCharacteristic)(const struct OrtCustomOp *op, size_t index);
  int (*GetInputMemoryType)(const struct OrtCustomOp *op, size_t index);
  int (*GetVariadicInputMinArity)(const struct OrtCustomOp *op);
  int (*GetVariadicInputHomogeneity)(const struct OrtCustomOp *op);
  int (*GetVariadicOutputMinArity)(const struct OrtCustomOp *op);
  int (*GetVariadicOutputHomogeneity)(const struct OrtCustomOp *op);
  OrtStatus *(*CreateKernelV2)(const struct OrtCustomOp *op, const OrtApi *api, const OrtKernelInfo *info,
                               void **kernel);
  OrtStatus *(*KernelComputeV2)(void *kernel, OrtKernelContext *context);
  OrtStatus *(*InferOutputShapeFn)(const struct OrtCustomOp *op, OrtShapeInferContext *ctx);
  int (*GetStartVersion)(const struct OrtCustomOp *op);
  int (*GetEndVersion)(const struct OrtCustomOp *op);
  size_t (*GetMayInplace)(int **input_index, int **output_index);
  void (*ReleaseMayInplace)(int *input_index, int *output_index);
  size_t (*GetAliasMap)(int **input_index, int **output_index);
  void (*ReleaseAliasMap)(int *input_index, int *output_index);
} OrtCustomOp;

#endif
