//go:build cgo

package platforms

/*
#cgo LDFLAGS: -ldl
#include <dlfcn.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

// Only the parts of onnxruntime_c_api.h this file needs. OrtApi is a struct
// of function pointers in declaration order and the C API is append-only, so
// the indices below (counted in ORT 1.24's header, API 24) are stable.
typedef struct {
	const void *(*GetApi)(uint32_t version);
	const char *(*GetVersionString)(void);
} edgedetOrtApiBase;

typedef const edgedetOrtApiBase *(*edgedetGetApiBaseFn)(void);
typedef int (*edgedetGetErrorCodeFn)(const void *status);
typedef const char *(*edgedetGetErrorMessageFn)(const void *status);
typedef void (*edgedetReleaseStatusFn)(void *status);
typedef void *(*edgedetGetAvailableProvidersFn)(char ***out, int *n);
typedef void *(*edgedetReleaseAvailableProvidersFn)(char **ptr, int n);

enum {
	edgedetIdxGetErrorCode = 1,
	edgedetIdxGetErrorMessage = 2,
	edgedetIdxReleaseStatus = 93,
	edgedetIdxGetAvailableProviders = 125,
	edgedetIdxReleaseAvailableProviders = 126,
};

enum {
	edgedetStageOK = 0,
	edgedetStageDlopen = 1,
	edgedetStageDlsym = 2,
	edgedetStageGetApi = 3,
	edgedetStageGetAvailableProviders = 4,
};

typedef struct {
	int stage;     // edgedetStage*
	int code;      // OrtErrorCode when stage is GetAvailableProviders
	char *err;     // malloc'd message on failure
	char *version; // malloc'd library version, when known
	void *handle;  // dlopen handle on success
	void *const *api;
	char **names;
	int n;
} edgedetProviders;

static char *edgedet_strdup(const char *s) { return strdup(s ? s : ""); }

// edgedet_providers does dlopen, dlsym and the ORT calls in one C call so
// dlerror() reads the same thread's error. On failure it closes the handle.
static void edgedet_providers(const char *path, uint32_t version, edgedetProviders *r) {
	memset(r, 0, sizeof *r);
	dlerror();
	void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (!h) {
		r->stage = edgedetStageDlopen;
		r->err = edgedet_strdup(dlerror());
		return;
	}
	dlerror();
	edgedetGetApiBaseFn getBase = (edgedetGetApiBaseFn)dlsym(h, "OrtGetApiBase");
	if (!getBase) {
		const char *e = dlerror();
		r->stage = edgedetStageDlsym;
		r->err = edgedet_strdup(e ? e : "OrtGetApiBase is NULL");
		dlclose(h);
		return;
	}
	const edgedetOrtApiBase *base = getBase();
	if (base && base->GetVersionString) {
		r->version = edgedet_strdup(base->GetVersionString());
	}
	void *const *api = base ? (void *const *)base->GetApi(version) : NULL;
	if (!api) {
		r->stage = edgedetStageGetApi;
		r->err = edgedet_strdup("GetApi returned NULL: the library does not support this API version");
		dlclose(h);
		return;
	}
	char **names = NULL;
	int n = 0;
	void *st = ((edgedetGetAvailableProvidersFn)api[edgedetIdxGetAvailableProviders])(&names, &n);
	if (st) {
		r->stage = edgedetStageGetAvailableProviders;
		r->code = ((edgedetGetErrorCodeFn)api[edgedetIdxGetErrorCode])(st);
		r->err = edgedet_strdup(((edgedetGetErrorMessageFn)api[edgedetIdxGetErrorMessage])(st));
		((edgedetReleaseStatusFn)api[edgedetIdxReleaseStatus])(st);
		dlclose(h);
		return;
	}
	r->handle = h;
	r->api = api;
	r->names = names;
	r->n = n;
}

// edgedet_providers_release frees what edgedet_providers returned.
static void edgedet_providers_release(edgedetProviders *r) {
	if (r->names) {
		void *st = ((edgedetReleaseAvailableProvidersFn)r->api[edgedetIdxReleaseAvailableProviders])(r->names, r->n);
		if (st) {
			((edgedetReleaseStatusFn)r->api[edgedetIdxReleaseStatus])(st);
		}
		r->names = NULL;
	}
	if (r->handle) {
		dlclose(r->handle);
		r->handle = NULL;
	}
	free(r->err);
	free(r->version);
	r->err = NULL;
	r->version = NULL;
}

static const char *edgedet_name(char **names, int i) { return names[i]; }
*/
import "C"

import (
	"unsafe"
)

// ortAPIVersion is the C API version edgedet speaks (onnxruntime_go v1.27.0,
// ONNX Runtime 1.24).
const ortAPIVersion = 24

// AvailableProviders loads the ONNX Runtime library at libPath and returns
// the execution providers compiled into it ("TensorrtExecutionProvider",
// "CUDAExecutionProvider", ..., "CPUExecutionProvider"), as ONNX Runtime's
// GetAvailableProviders reports them. Compiled in does not mean usable: a
// provider whose own shared library is missing still fails when appended.
// The library may already be loaded (by onnxruntime_go); dlopen then only
// takes another reference, which is dropped before returning.
func AvailableProviders(libPath string) ([]string, error) {
	cpath := C.CString(libPath)
	defer C.free(unsafe.Pointer(cpath))
	var r C.edgedetProviders
	C.edgedet_providers(cpath, ortAPIVersion, &r)
	defer C.edgedet_providers_release(&r)
	if r.stage != C.edgedetStageOK {
		e := &LibraryError{Library: libPath, Code: int(r.code), Message: C.GoString(r.err), Version: C.GoString(r.version)}
		switch r.stage {
		case C.edgedetStageDlopen:
			e.Op = "dlopen"
		case C.edgedetStageDlsym:
			e.Op = "dlsym OrtGetApiBase"
		case C.edgedetStageGetApi:
			e.Op = "GetApi(24)"
		default:
			e.Op = "GetAvailableProviders"
		}
		return nil, e
	}
	out := make([]string, 0, int(r.n))
	for i := 0; i < int(r.n); i++ {
		out = append(out, C.GoString(C.edgedet_name(r.names, C.int(i))))
	}
	return out, nil
}
