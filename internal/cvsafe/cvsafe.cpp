#include "cvsafe.h"

#include <cstdlib>
#include <cstring>
#include <exception>
#include <stdexcept>
#include <string>
#include <vector>

#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <opencv2/videoio.hpp>

namespace {

char* dup(const char* s) {
    size_t n = std::strlen(s);
    char* p = static_cast<char*>(std::malloc(n + 1));
    if (p != nullptr) {
        std::memcpy(p, s, n + 1);
    }
    return p;
}

// guard runs f, turning any exception into *err.
template <typename F>
void guard(char** err, F f) {
    *err = nullptr;
    try {
        f();
    } catch (const cv::Exception& e) {
        // "<code>\x1f<message>": OpenCV's status code for the Go error,
        // and the bare message (e.what() repeats the file and line).
        std::string m = std::to_string(e.code) + "\x1f" + (e.err.empty() ? e.what() : e.err);
        *err = dup(m.c_str());
    } catch (const std::exception& e) {
        *err = dup(e.what());
    } catch (...) {
        *err = dup("unknown C++ exception");
    }
}

std::vector<int> toVector(const int* params, int n) {
    return std::vector<int>(params, params + (n > 0 ? n : 0));
}

cv::Mat& mat(void* p) { return *static_cast<cv::Mat*>(p); }

}  // namespace

extern "C" {

int cvsafe_have_writer(const char* filename) {
    try {
        return cv::haveImageWriter(filename) ? 1 : 0;
    } catch (...) {
        return 0;
    }
}

void cvsafe_imwrite(const char* filename, void* m, const int* params, int nparams, int* ok, char** err) {
    *ok = 0;
    guard(err, [&] { *ok = cv::imwrite(filename, mat(m), toVector(params, nparams)) ? 1 : 0; });
}

void cvsafe_imencode(const char* ext, void* m, const int* params, int nparams, unsigned char** out, size_t* outlen,
                     char** err) {
    *out = nullptr;
    *outlen = 0;
    guard(err, [&] {
        std::vector<uchar> buf;
        if (!cv::imencode(ext, mat(m), buf, toVector(params, nparams)) || buf.empty()) {
            return;
        }
        *out = static_cast<unsigned char*>(std::malloc(buf.size()));
        if (*out == nullptr) {
            throw std::bad_alloc();
        }
        std::memcpy(*out, buf.data(), buf.size());
        *outlen = buf.size();
    });
}

void cvsafe_imread(const char* filename, int flags, void* dst, char** err) {
    guard(err, [&] { mat(dst) = cv::imread(filename, flags); });
}

void cvsafe_imdecode(const unsigned char* buf, size_t len, int flags, void* dst, char** err) {
    guard(err, [&] {
        cv::Mat raw(1, static_cast<int>(len), CV_8UC1, const_cast<unsigned char*>(buf));
        mat(dst) = cv::imdecode(raw, flags);
    });
}

// resize and cvtcolor return the error rather than take char**: Go would
// move an out variable to the heap, and these run on every frame.
char* cvsafe_resize(void* src, void* dst, int w, int h, int interp) {
    char* err;
    guard(&err, [&] {
        if (mat(src).empty()) {
            throw std::invalid_argument("empty source image");
        }
        cv::resize(mat(src), mat(dst), cv::Size(w, h), 0, 0, interp);
    });
    return err;
}

char* cvsafe_cvtcolor(void* src, void* dst, int code) {
    char* err;
    guard(&err, [&] {
        if (mat(src).empty()) {
            throw std::invalid_argument("empty source image");
        }
        cv::cvtColor(mat(src), mat(dst), code);
    });
    return err;
}

void* cvsafe_videowriter_open(const char* filename, int fourcc, double fps, int w, int h, int color, char** err) {
    cv::VideoWriter* vw = nullptr;
    guard(err, [&] {
        vw = new cv::VideoWriter();
        if (!vw->open(filename, fourcc, fps, cv::Size(w, h), color != 0)) {
            delete vw;
            vw = nullptr;
        }
    });
    if (*err != nullptr && vw != nullptr) {
        delete vw;
        vw = nullptr;
    }
    return vw;
}

void cvsafe_videowriter_write(void* vw, void* m, char** err) {
    guard(err, [&] { static_cast<cv::VideoWriter*>(vw)->write(mat(m)); });
}

void cvsafe_videowriter_release(void* vw) {
    try {
        delete static_cast<cv::VideoWriter*>(vw);
    } catch (...) {
    }
}

}  // extern "C"
