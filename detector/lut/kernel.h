// kernel.h: the 256-entry byte lookup, out[i] = table[in[i]], with a
// portable path and vectorised paths chosen at run time.
#ifndef EDGEDET_LUT_KERNEL_H
#define EDGEDET_LUT_KERNEL_H

#include <stddef.h>
#include <stdint.h>

enum {
  LUT_PATH_AUTO = 0,   // the best path this CPU supports (lut_best_path)
  LUT_PATH_SCALAR = 1, // portable C
  LUT_PATH_AVX2 = 2,   // x86-64 AVX2: 16 masked pshufb lookups, one per high nibble
  LUT_PATH_VBMI = 3,   // x86-64 AVX-512 VBMI: two vpermi2b and a blend per 64 bytes
  LUT_PATH_NEON = 4,   // aarch64: four tbl over 64-byte table quarters
  LUT_PATH_COUNT = 5,
};

// lut_path_supported reports whether path can run on this CPU (1) or not (0).
int lut_path_supported(int path);

// lut_best_path is the path LUT_PATH_AUTO resolves to on this CPU.
int lut_best_path(void);

// lut_apply maps n bytes of in through table into out with the given path.
// in and out may be the same buffer. It returns 0, or -1 when path is not
// supported on this CPU (nothing is written then).
int lut_apply(int path, const uint8_t table[256], const uint8_t *in, uint8_t *out, size_t n);

#endif
