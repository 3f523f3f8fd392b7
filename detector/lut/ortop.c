// ortop.c: the LUT activation as an ONNX Runtime custom operator.
//
// Domain "ai.edgedet", ops "LutActivationU8" (uint8) and "LutActivationS8"
// (int8): Y = table[X] element-wise, where input 1 is the 256-entry table
// (an initializer of X's type) indexed by X's raw byte. Y has X's shape and
// type. Everything runs in C on ORT's threads; no Go code is called back.
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernel.h"
#include "ortmini.h"
#include "ortop.h"

// api_fn returns OrtApi function number i (see ortmini.h).
#define API_FN(api, idx) (((void *const *)(api))[idx])

typedef OrtStatus *(*CreateStatusFn)(int code, const char *msg);
typedef const char *(*GetErrorMessageFn)(const OrtStatus *status);
typedef void (*ReleaseStatusFn)(OrtStatus *status);
typedef OrtStatus *(*CreateCustomOpDomainFn)(const char *domain, OrtCustomOpDomain **out);
typedef OrtStatus *(*CustomOpDomain_AddFn)(OrtCustomOpDomain *domain, const OrtCustomOp *op);
typedef OrtStatus *(*AddCustomOpDomainFn)(OrtSessionOptions *options, OrtCustomOpDomain *domain);
typedef OrtStatus *(*GetTensorMutableDataFn)(OrtValue *value, void **out);
typedef OrtStatus *(*GetTensorElementTypeFn)(const OrtTensorTypeAndShapeInfo *info, int *out);
typedef OrtStatus *(*GetDimensionsCountFn)(const OrtTensorTypeAndShapeInfo *info, size_t *out);
typedef OrtStatus *(*GetDimensionsFn)(const OrtTensorTypeAndShapeInfo *info, int64_t *dims, size_t n);
typedef OrtStatus *(*GetTensorShapeElementCountFn)(const OrtTensorTypeAndShapeInfo *info, size_t *out);
typedef OrtStatus *(*GetTensorTypeAndShapeFn)(const OrtValue *value, OrtTensorTypeAndShapeInfo **out);
typedef OrtStatus *(*KernelContext_GetInputFn)(const OrtKernelContext *ctx, size_t index, const OrtValue **out);
typedef OrtStatus *(*KernelContext_GetOutputFn)(OrtKernelContext *ctx, size_t index, const int64_t *dims,
                                               size_t n, OrtValue **out);
typedef void (*ReleaseTensorTypeAndShapeInfoFn)(OrtTensorTypeAndShapeInfo *info);
typedef OrtStatus *(*ShapeInferContext_GetInputTypeShapeFn)(const OrtShapeInferContext *ctx, size_t index,
                                           OrtTensorTypeAndShapeInfo **info);
typedef OrtStatus *(*ShapeInferContext_SetOutputTypeShapeFn)(const OrtShapeInferContext *ctx, size_t index,
                                            const OrtTensorTypeAndShapeInfo *info);
typedef OrtStatus *(*KernelContext_ParallelForFn)(const OrtKernelContext *ctx, void (*fn)(void *, size_t), size_t total,
                                    size_t num_batch, void *usr);

#define CALL(api, name) ((name##Fn)API_FN(api, LUT_API_##name))

// The process-wide state, written only by lut_register (the Go side holds a
// mutex around it) before any session that uses the ops exists.
static const OrtApi *g_api;
static OrtCustomOpDomain *g_domain;
static int g_path = LUT_PATH_AUTO;

enum { MAX_DIMS = 16, CHUNK = 64 * 1024 };

typedef struct {
  const OrtApi *api;
  int elem;
  int path;
} lut_kernel;

typedef struct {
  const uint8_t *table, *in;
  uint8_t *out;
  size_t n;
  int path;
} lut_job;

static int op_elem(const OrtCustomOp *op);

static void *create_kernel(const OrtCustomOp *op, const OrtApi *api, const OrtKernelInfo *info) {
  (void)info;
  lut_kernel *k = calloc(1, sizeof *k);
  if (k == NULL) return NULL;
  k->api = api;
  k->elem = op_elem(op);
  k->path = g_path;
  return k;
}

static OrtStatus *create_kernel_v2(const OrtCustomOp *op, const OrtApi *api, const OrtKernelInfo *info,
                                   void **out) {
  *out = create_kernel(op, api, info);
  if (*out == NULL) return CALL(api, CreateStatus)(LUT_ORT_FAIL, "edgedet lut: out of memory");
  return NULL;
}

static void run_chunk(void *usr, size_t i) {
  const lut_job *j = usr;
  size_t off = i * CHUNK, n = j->n - off < CHUNK ? j->n - off : CHUNK;
  lut_apply(j->path, j->table, j->in + off, j->out + off, n);
}

static OrtStatus *fail(const OrtApi *api, const char *msg, OrtTensorTypeAndShapeInfo *a,
                       OrtTensorTypeAndShapeInfo *b) {
  if (a) CALL(api, ReleaseTensorTypeAndShapeInfo)(a);
  if (b) CALL(api, ReleaseTensorTypeAndShapeInfo)(b);
  return CALL(api, CreateStatus)(LUT_ORT_INVALID_ARGUMENT, msg);
}

#define TRY(expr)                                                                                            \
  do {                                                                                                       \
    OrtStatus *st_ = (expr);                                                                                 \
    if (st_ != NULL) {                                                                                       \
      if (xi) CALL(api, ReleaseTensorTypeAndShapeInfo)(xi);                                                  \
      if (ti) CALL(api, ReleaseTensorTypeAndShapeInfo)(ti);                                                  \
      return st_;                                                                                            \
    }                                                                                                        \
  } while (0)

static OrtStatus *compute_v2(void *kernel, OrtKernelContext *ctx) {
  const lut_kernel *k = kernel;
  const OrtApi *api = k->api;
  OrtTensorTypeAndShapeInfo *xi = NULL, *ti = NULL;
  const OrtValue *x = NULL, *t = NULL;
  TRY(CALL(api, KernelContext_GetInput)(ctx, 0, &x));
  TRY(CALL(api, KernelContext_GetInput)(ctx, 1, &t));
  if (x == NULL || t == NULL) return fail(api, "edgedet lut: missing input", NULL, NULL);
  TRY(CALL(api, GetTensorTypeAndShape)(x, &xi));
  TRY(CALL(api, GetTensorTypeAndShape)(t, &ti));
  size_t nd = 0, n = 0, nt = 0;
  int64_t dims[MAX_DIMS];
  TRY(CALL(api, GetDimensionsCount)(xi, &nd));
  if (nd > MAX_DIMS) return fail(api, "edgedet lut: input has more than 16 dimensions", xi, ti);
  TRY(CALL(api, GetDimensions)(xi, dims, nd));
  TRY(CALL(api, GetTensorShapeElementCount)(xi, &n));
  TRY(CALL(api, GetTensorShapeElementCount)(ti, &nt));
  if (nt != 256) return fail(api, "edgedet lut: the table (input 1) must have 256 elements", xi, ti);
  CALL(api, ReleaseTensorTypeAndShapeInfo)(xi);
  CALL(api, ReleaseTensorTypeAndShapeInfo)(ti);
  xi = ti = NULL;

  OrtValue *y = NULL;
  void *in = NULL, *table = NULL, *out = NULL;
  TRY(CALL(api, KernelContext_GetOutput)(ctx, 0, dims, nd, &y));
  TRY(CALL(api, GetTensorMutableData)((OrtValue *)x, &in));
  TRY(CALL(api, GetTensorMutableData)((OrtValue *)t, &table));
  TRY(CALL(api, GetTensorMutableData)(y, &out));
  if (n == 0) return NULL;
  lut_job job = {table, in, out, n, k->path};
  size_t chunks = (n + CHUNK - 1) / CHUNK;
  if (chunks == 1) {
    run_chunk(&job, 0);
    return NULL;
  }
  return CALL(api, KernelContext_ParallelFor)(ctx, run_chunk, chunks, 0, &job);
}

static void compute_v1(void *kernel, OrtKernelContext *ctx) {
  // Not called: ORT prefers KernelComputeV2 when it is set (API >= 16).
  (void)kernel;
  (void)ctx;
}

static void destroy_kernel(void *kernel) { free(kernel); }

static OrtStatus *infer_shape(const OrtCustomOp *op, OrtShapeInferContext *ctx) {
  (void)op;
  const OrtApi *api = g_api;
  OrtTensorTypeAndShapeInfo *info = NULL;
  OrtStatus *st = CALL(api, ShapeInferContext_GetInputTypeShape)(ctx, 0, &info);
  if (st != NULL) return st;
  // info belongs to the context (ORT frees it with the context).
  return CALL(api, ShapeInferContext_SetOutputTypeShape)(ctx, 0, info);
}

static const char *name_u8(const OrtCustomOp *op) {
  (void)op;
  return "LutActivationU8";
}
static const char *name_s8(const OrtCustomOp *op) {
  (void)op;
  return "LutActivationS8";
}
static const char *provider(const OrtCustomOp *op) {
  (void)op;
  return NULL; // the CPU provider
}
static int type_u8(const OrtCustomOp *op, size_t i) {
  (void)op;
  (void)i;
  return LUT_ELEM_UINT8;
}
static int type_s8(const OrtCustomOp *op, size_t i) {
  (void)op;
  (void)i;
  return LUT_ELEM_INT8;
}
static size_t two(const OrtCustomOp *op) {
  (void)op;
  return 2;
}
static size_t one(const OrtCustomOp *op) {
  (void)op;
  return 1;
}
static int required(const OrtCustomOp *op, size_t i) {
  (void)op;
  (void)i;
  return LUT_IO_REQUIRED;
}
static int mem_default(const OrtCustomOp *op, size_t i) {
  (void)op;
  (void)i;
  return LUT_MEM_DEFAULT;
}
static int int_one(const OrtCustomOp *op) {
  (void)op;
  return 1;
}
static int int_zero(const OrtCustomOp *op) {
  (void)op;
  return 0;
}
static size_t no_pairs(int **in, int **out) {
  *in = NULL;
  *out = NULL;
  return 0;
}
static void release_pairs(int *in, int *out) {
  free(in);
  free(out);
}

#define LUT_OP(NAME, TYPE)                                                                                   \
  {                                                                                                          \
      .version = LUT_ORT_API_VERSION,                                                                        \
      .CreateKernel = create_kernel,                                                                         \
      .GetName = NAME,                                                                                       \
      .GetExecutionProviderType = provider,                                                                  \
      .GetInputType = TYPE,                                                                                  \
      .GetInputTypeCount = two,                                                                              \
      .GetOutputType = TYPE,                                                                                 \
      .GetOutputTypeCount = one,                                                                             \
      .KernelCompute = compute_v1,                                                                           \
      .KernelDestroy = destroy_kernel,                                                                       \
      .GetInputCharacteristic = required,                                                                    \
      .GetOutputCharacteristic = required,                                                                   \
      .GetInputMemoryType = mem_default,                                                                     \
      .GetVariadicInputMinArity = int_one,                                                                   \
      .GetVariadicInputHomogeneity = int_one,                                                                \
      .GetVariadicOutputMinArity = int_one,                                                                  \
      .GetVariadicOutputHomogeneity = int_one,                                                               \
      .CreateKernelV2 = create_kernel_v2,                                                                    \
      .KernelComputeV2 = compute_v2,                                                                         \
      .InferOutputShapeFn = infer_shape,                                                                     \
      .GetStartVersion = int_one,                                                                            \
      .GetEndVersion = int_zero, /* 0: no upper bound */                                                     \
      .GetMayInplace = no_pairs,                                                                             \
      .ReleaseMayInplace = release_pairs,                                                                    \
      .GetAliasMap = no_pairs,                                                                               \
      .ReleaseAliasMap = release_pairs,                                                                      \
  }

static const OrtCustomOp op_u8 = LUT_OP(name_u8, type_u8);
static const OrtCustomOp op_s8 = LUT_OP(name_s8, type_s8);

static int op_elem(const OrtCustomOp *op) { return op == &op_s8 ? LUT_ELEM_INT8 : LUT_ELEM_UINT8; }

static int status_error(const OrtApi *api, OrtStatus *st, const char *what, char *err, size_t errlen) {
  snprintf(err, errlen, "%s: %s", what, CALL(api, GetErrorMessage)(st));
  CALL(api, ReleaseStatus)(st);
  return -1;
}

// lut_version_ok reports whether version string v ("1.24.1") is at least
// 1.LUT_ORT_API_VERSION, the API our OrtCustomOp struct is laid out for.
int lut_version_ok(const char *v) {
  int major = 0, minor = 0;
  if (v == NULL || sscanf(v, "%d.%d", &major, &minor) != 2) return 0;
  return major > 1 || (major == 1 && minor >= LUT_ORT_API_VERSION);
}

int lut_register(void *options, const char *lib, char *err, size_t errlen) {
  void *h = dlopen(lib, RTLD_NOW | RTLD_NOLOAD);
  if (h == NULL) {
    snprintf(err, errlen, "onnx runtime library %s is not loaded in this process (initialise the runtime first)",
             lib);
    return -1;
  }
  const OrtApiBase *(*get_base)(void) = (const OrtApiBase *(*)(void))dlsym(h, "OrtGetApiBase");
  dlclose(h); // drops only our reference: the library stays loaded by onnxruntime_go
  if (get_base == NULL) {
    snprintf(err, errlen, "%s has no OrtGetApiBase", lib);
    return -1;
  }
  const OrtApiBase *base = get_base();
  const char *ver = base->GetVersionString();
  if (!lut_version_ok(ver)) {
    snprintf(err, errlen, "onnx runtime %s is older than 1.%d, the C API the custom operator is built for",
             ver ? ver : "(unknown)", LUT_ORT_API_VERSION);
    return -1;
  }
  const OrtApi *api = base->GetApi(LUT_ORT_API_VERSION);
  if (api == NULL) {
    snprintf(err, errlen, "onnx runtime %s does not provide C API version %d", ver, LUT_ORT_API_VERSION);
    return -1;
  }
  if (api != g_api) {
    // First use, or the library was unloaded and loaded again: a domain made
    // by the old copy cannot be released (its code is gone), so it is left.
    OrtCustomOpDomain *d = NULL;
    OrtStatus *st = CALL(api, CreateCustomOpDomain)(LUT_DOMAIN, &d);
    if (st != NULL) return status_error(api, st, "create custom op domain", err, errlen);
    if ((st = CALL(api, CustomOpDomain_Add)(d, &op_u8)) != NULL ||
        (st = CALL(api, CustomOpDomain_Add)(d, &op_s8)) != NULL) {
      ((void (*)(OrtCustomOpDomain *))API_FN(api, LUT_API_ReleaseCustomOpDomain))(d);
      return status_error(api, st, "add custom op", err, errlen);
    }
    g_api = api;
    g_domain = d;
  }
  OrtStatus *st = CALL(api, AddCustomOpDomain)((OrtSessionOptions *)options, g_domain);
  if (st != NULL) return status_error(api, st, "add custom op domain to session options", err, errlen);
  return 0;
}

void lut_set_op_path(int path) { g_path = path; }
