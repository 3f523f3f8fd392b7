#ifndef EDGEDET_LUT_ORTOP_H
#define EDGEDET_LUT_ORTOP_H

#include <stddef.h>

#define LUT_DOMAIN "ai.edgedet"

// lut_register adds the ai.edgedet domain to the OrtSessionOptions at
// options, using the OrtApi of lib, which must already be loaded. It returns
// 0, or -1 with a message in err.
int lut_register(void *options, const char *lib, char *err, size_t errlen);

// lut_version_ok reports whether an ORT version string is new enough.
int lut_version_ok(const char *v);

// lut_set_op_path forces a kernel path for kernels created afterwards
// (LUT_PATH_AUTO: the best). For benchmarks and tests.
void lut_set_op_path(int path);

#endif
