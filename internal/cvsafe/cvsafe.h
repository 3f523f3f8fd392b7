// Thin C wrappers around the OpenCV calls edgedet makes on input it does
// not control. Each catches every C++ exception and returns it as a
// malloc'd message in *err (NULL on success), so no exception ever crosses
// into Go, where it would abort the process.
#ifndef EDGEDET_CVSAFE_H
#define EDGEDET_CVSAFE_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

int cvsafe_have_writer(const char* filename);
void cvsafe_imwrite(const char* filename, void* mat, const int* params, int nparams, int* ok, char** err);
void cvsafe_imencode(const char* ext, void* mat, const int* params, int nparams, unsigned char** out, size_t* outlen, char** err);
void cvsafe_imread(const char* filename, int flags, void* dst, char** err);
void cvsafe_imdecode(const unsigned char* buf, size_t len, int flags, void* dst, char** err);
char* cvsafe_resize(void* src, void* dst, int w, int h, int interp);
char* cvsafe_cvtcolor(void* src, void* dst, int code);
void* cvsafe_videowriter_open(const char* filename, int fourcc, double fps, int w, int h, int color, char** err);
void cvsafe_videowriter_write(void* vw, void* mat, char** err);
void cvsafe_videowriter_release(void* vw);

#ifdef __cplusplus
}
#endif

#endif
