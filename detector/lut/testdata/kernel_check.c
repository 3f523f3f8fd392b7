// kernel_check.c: every lookup path this CPU supports against the plain
// table read, for random tables, every input byte and lengths around the
// vector widths. Built on its own so the aarch64 NEON path can be checked
// from an x86-64 machine (the Go tests cover the x86 paths):
//
//	aarch64-linux-gnu-gcc -O2 -static -I.. kernel_check.c ../kernel.c -o /tmp/kernel_check
//	qemu-aarch64 /tmp/kernel_check
#include <stdio.h>
#include <stdlib.h>

#include "kernel.h"

int main(void) {
  uint8_t t[256], in[1000], out[1001];
  int checked = 0;
  srand(1);
  for (int path = LUT_PATH_SCALAR; path < LUT_PATH_COUNT; path++) {
    if (!lut_path_supported(path)) continue;
    checked++;
    for (int k = 0; k < 50; k++) {
      for (int i = 0; i < 256; i++) t[i] = (uint8_t)rand();
      for (int i = 0; i < 1000; i++) in[i] = (uint8_t)(i < 256 ? i : rand());
      for (int n = 0; n <= 1000; n += (n < 130 ? 1 : 97)) {
        out[n] = 0xA5;
        if (lut_apply(path, t, in, out, (size_t)n) != 0) {
          printf("path %d: lut_apply refused a supported path\n", path);
          return 1;
        }
        for (int i = 0; i < n; i++)
          if (out[i] != t[in[i]]) {
            printf("path %d: n=%d: byte %d: got %d, want %d\n", path, n, i, out[i], t[in[i]]);
            return 1;
          }
        if (out[n] != 0xA5) {
          printf("path %d: n=%d: wrote past the end\n", path, n);
          return 1;
        }
      }
    }
  }
  printf("ok: %d paths checked, best path %d\n", checked, lut_best_path());
  return 0;
}
