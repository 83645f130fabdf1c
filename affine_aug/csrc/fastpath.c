/* fastpath.c: the one-image call and the one-key draws as a CPython extension
   (affine_aug._fastpath), for the per-sample path of a DataLoader worker, where a ctypes
   call's argument conversion costs more than warping a small image.

   warp_one(images, matrices, out, interpolation, border, fill, cubic_a, threads):
     reads the arrays through the buffer protocol, checks the plain case (images (1, H, W)
     or (1, H, W, C) C-contiguous uint8 / uint16 / float32 / float64; one finite affine
     float64 matrix (3, 3), (2, 3), (1, 3, 3) or (1, 2, 3) that matrix.invert accepts; out
     a writable C-contiguous array of the images' format, (1, H_out, W_out[, C])), inverts
     the matrix with matrix.invert's operations in its order (the same bits), and calls the
     kernel's aa_warp with the GIL released. Returns True when done, False for anything
     else: the caller then takes the general path, with its checks and error messages.
   Keyed(...): the plain case of affine_aug.Augment's call, from a sample key to the kernel
     (see below).
   warp_into(images, dst_to_src, out, fill, interpolation, border, cubic_a, threads): the
     batch call of kernel.warp_into on buffers (see below).
   uniforms(key, hashes): sampling._uniform_one of one key for each stream hash, as a
     tuple of floats (the same bits: integer arithmetic, then an exact conversion).
   bind(address): the address of the kernel's aa_warp (kernel.py passes it once), so that
     this module and ctypes share one kernel and its state (the permutation counter).

   Only the buffer protocol is used: no numpy headers at build time. */

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef int (*warp_fn)(const void *, void *, const double *, const double *, int64_t, int64_t, int64_t, int64_t,
                       int64_t, int64_t, int, int, int, double, int);

static warp_fn WARP = NULL;

#define MAX_CONDITION 1e12 /* matrix.MAX_CONDITION */

/* the kernel's dtype code of a buffer's format, or -1 (native formats only) */
static int dtype_code(const Py_buffer *v) {
    const char *f = v->format;
    if (!f || f[0] == '\0' || f[1] != '\0') return -1;
    switch (f[0]) {
    case 'B': return v->itemsize == 1 ? 0 : -1;
    case 'H': return v->itemsize == 2 ? 1 : -1;
    case 'f': return v->itemsize == 4 ? 2 : -1;
    case 'd': return v->itemsize == 8 ? 3 : -1;
    default: return -1;
    }
}

/* the six entries of one affine matrix (any strides), if the buffer holds one that is finite */
static int matrix_entries(const Py_buffer *v, double e[6]) {
    if (!v->format || strcmp(v->format, "d") != 0 || v->itemsize != 8 || !v->strides) return 0;
    const Py_ssize_t *s = v->shape, *st = v->strides + v->ndim - 2;
    int rows;
    if (v->ndim == 2) rows = (int)s[0];
    else if (v->ndim == 3 && s[0] == 1) rows = (int)s[1];
    else return 0;
    if (s[v->ndim - 1] != 3 || (rows != 2 && rows != 3)) return 0;
    double m[9];
    for (int i = 0; i < rows; i++)
        for (int j = 0; j < 3; j++) memcpy(&m[3 * i + j], (const char *)v->buf + i * st[0] + j * st[1], 8);
    if (rows == 3 && !(m[6] == 0.0 && m[7] == 0.0 && m[8] == 1.0)) return 0;
    for (int k = 0; k < 6; k++) {
        if (!isfinite(m[k])) return 0;
        e[k] = m[k];
    }
    return 1;
}

/* matrix.invert of [[a, b, tx], [c, d, ty]]: its operations in its order; 0 where
   invert refuses the matrix (singular, ill-conditioned, or an inverse beyond float64) */
static int invert(const double e[6], double inv[9]) {
    const double a = e[0], b = e[1], tx = e[2], c = e[3], d = e[4], ty = e[5];
    double scale = fmax(fmax(fabs(a), fabs(b)), fmax(fabs(c), fabs(d)));
    scale = scale > 0 ? scale : 1.0;
    const double sa = a / scale, sb = b / scale, sc = c / scale, sd = d / scale;
    const double p = hypot(sa + sd, sc - sb), q = hypot(sa - sd, sc + sb);
    if (p == q || !((p + q) / fabs(p - q) <= MAX_CONDITION)) return 0;
    const double det = a * d - b * c;
    const double ia = d / det, ib = -b / det, ic = -c / det, id = a / det;
    const double r[6] = {ia, ib, -(ia * tx + ib * ty), ic, id, -(ic * tx + id * ty)};
    for (int k = 0; k < 6; k++) {
        if (!isfinite(r[k])) return 0;
        inv[k] = r[k];
    }
    inv[6] = 0.0, inv[7] = 0.0, inv[8] = 1.0;
    return 1;
}

/* whether images (1, H, W[, C]) and out (1, Ho, Wo[, C]) make a plain call; their sizes */
static int plain_shapes(const Py_buffer *im, const Py_buffer *out, int64_t size[5]) {
    if (im->ndim != 3 && im->ndim != 4) return 0;
    if (out->ndim != im->ndim || im->shape[0] != 1 || out->shape[0] != 1) return 0;
    const int64_t c = im->ndim == 4 ? im->shape[3] : 1;
    if (im->ndim == 4 && out->shape[3] != c) return 0;
    size[0] = im->shape[1], size[1] = im->shape[2], size[2] = c, size[3] = out->shape[1], size[4] = out->shape[2];
    if (size[0] < 1 || size[1] < 1 || c < 1 || size[3] < 1 || size[4] < 1) return 0;
    return 1;
}

/* the fill: None (zeros) or a C-contiguous float64 buffer of c values, copied into f */
static int fill_values(PyObject *fill, int64_t c, double *f) {
    if (fill == Py_None) {
        memset(f, 0, (size_t)c * sizeof(double));
        return 1;
    }
    Py_buffer v;
    if (PyObject_GetBuffer(fill, &v, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0) {
        PyErr_Clear();
        return 0;
    }
    const int ok = v.format && strcmp(v.format, "d") == 0 && v.len == c * 8;
    if (ok) memcpy(f, v.buf, (size_t)c * sizeof(double));
    PyBuffer_Release(&v);
    return ok;
}

typedef struct {
    int interp, border, threads;
    double cubic_a;
} call_t;

/* the warp of the buffers once they are held; 1 when done */
static int warp_buffers(const Py_buffer *im, const Py_buffer *mat, const Py_buffer *out, PyObject *fill,
                        const call_t *k) {
    int64_t s[5];
    double e[6], inv[9], small[16];
    const int dtype = dtype_code(im);
    if (dtype < 0 || dtype_code(out) != dtype || out->readonly || !plain_shapes(im, out, s)) return 0;
    if (!matrix_entries(mat, e) || !invert(e, inv)) return 0;
    const int64_t c = s[2];
    double *f = c <= 16 ? small : PyMem_Malloc((size_t)c * sizeof(double));
    if (!f) return 0;
    int done = fill_values(fill, c, f);
    if (done) {
        int rc;
        Py_BEGIN_ALLOW_THREADS
        rc = WARP(im->buf, out->buf, inv, f, 1, s[0], s[1], c, s[3], s[4], dtype, k->interp, k->border, k->cubic_a,
                  k->threads);
        Py_END_ALLOW_THREADS
        done = rc == 0;
    }
    if (f != small) PyMem_Free(f);
    return done;
}

static PyObject *warp_one(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    (void)self;
    if (nargs != 8) {
        PyErr_SetString(PyExc_TypeError, "warp_one takes 8 arguments");
        return NULL;
    }
    call_t k;
    k.interp = (int)PyLong_AsLong(args[3]);
    k.border = (int)PyLong_AsLong(args[4]);
    k.cubic_a = PyFloat_AsDouble(args[6]);
    k.threads = (int)PyLong_AsLong(args[7]);
    if (PyErr_Occurred()) return NULL;
    if (!WARP) Py_RETURN_FALSE;
    Py_buffer im, mat, out;
    int done = 0;
    if (PyObject_GetBuffer(args[0], &im, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) == 0) {
        if (PyObject_GetBuffer(args[1], &mat, PyBUF_RECORDS_RO) == 0) {
            if (PyObject_GetBuffer(args[2], &out, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | PyBUF_WRITABLE) == 0) {
                done = warp_buffers(&im, &mat, &out, args[5], &k);
                PyBuffer_Release(&out);
            }
            PyBuffer_Release(&mat);
        }
        PyBuffer_Release(&im);
    }
    PyErr_Clear(); /* a buffer that was refused: not the plain case */
    return PyBool_FromLong(done);
}

/* warp_into(images, dst_to_src, out, fill, interpolation, border, cubic_a, threads): the
   batch call of kernel.warp_into, its arrays read as buffers: images (N, H, W, C) and out
   (N, Ho, Wo, C) C-contiguous of one format, dst_to_src (N, 3, 3) and fill (C,) C-contiguous
   float64. Returns the kernel's code (0: done), or None where the buffers are not so. */
static PyObject *warp_into(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    (void)self;
    if (nargs != 8) {
        PyErr_SetString(PyExc_TypeError, "warp_into takes 8 arguments");
        return NULL;
    }
    const int interp = (int)PyLong_AsLong(args[4]), border = (int)PyLong_AsLong(args[5]);
    const double cubic_a = PyFloat_AsDouble(args[6]);
    const int threads = (int)PyLong_AsLong(args[7]);
    if (PyErr_Occurred()) return NULL;
    Py_buffer v[4];
    const int flags[4] = {PyBUF_C_CONTIGUOUS | PyBUF_FORMAT, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT,
                          PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | PyBUF_WRITABLE, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT};
    int held = 0; /* images, dst_to_src, out, fill */
    for (; held < 4; held++)
        if (PyObject_GetBuffer(args[held], &v[held], flags[held]) < 0) break;
    int rc = -2;
    if (held == 4) {
        const Py_buffer *im = &v[0], *m = &v[1], *out = &v[2], *f = &v[3];
        const int dtype = dtype_code(im);
        const int fits = dtype >= 0 && dtype_code(out) == dtype && im->ndim == 4 && out->ndim == 4 &&
                         out->shape[0] == im->shape[0] && out->shape[3] == im->shape[3] && m->format &&
                         strcmp(m->format, "d") == 0 && m->len == im->shape[0] * 72 && f->format &&
                         strcmp(f->format, "d") == 0 && f->len == im->shape[3] * 8 && WARP;
        if (fits) {
            Py_BEGIN_ALLOW_THREADS
            rc = WARP(im->buf, out->buf, (const double *)m->buf, (const double *)f->buf, im->shape[0], im->shape[1],
                      im->shape[2], im->shape[3], out->shape[1], out->shape[2], dtype, interp, border, cubic_a, threads);
            Py_END_ALLOW_THREADS
        }
    }
    for (int k = 0; k < held; k++) PyBuffer_Release(&v[k]);
    PyErr_Clear();
    if (rc == -2) Py_RETURN_NONE;
    return PyLong_FromLong(rc);
}

/* ------------------------------------------------------------------ the one-key draws */

static uint64_t splitmix64(uint64_t x) {
    x = (x ^ (x >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    x = (x ^ (x >> 27)) * UINT64_C(0x94D049BB133111EB);
    return x ^ (x >> 31);
}

/* sampling._uniform_one: a uniform in (0, 1) of a key under one stream hash */
static double uniform_of(uint64_t key, uint64_t s) {
    const uint64_t h = splitmix64(splitmix64(key ^ s) + UINT64_C(0x9E3779B97F4A7C15));
    return ((double)(h >> 11) + 0.5) * 0x1p-53;
}

static PyObject *uniforms(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    (void)self;
    if (nargs != 2 || !PyTuple_Check(args[1])) {
        PyErr_SetString(PyExc_TypeError, "uniforms takes a key and a tuple of stream hashes");
        return NULL;
    }
    const uint64_t key = PyLong_AsUnsignedLongLong(args[0]);
    if (PyErr_Occurred()) return NULL;
    const Py_ssize_t n = PyTuple_GET_SIZE(args[1]);
    PyObject *out = PyTuple_New(n);
    if (!out) return NULL;
    for (Py_ssize_t i = 0; i < n; i++) {
        const uint64_t s = PyLong_AsUnsignedLongLong(PyTuple_GET_ITEM(args[1], i));
        if (PyErr_Occurred()) {
            Py_DECREF(out);
            return NULL;
        }
        PyObject *u = PyFloat_FromDouble(uniform_of(key, s));
        if (!u) {
            Py_DECREF(out);
            return NULL;
        }
        PyTuple_SET_ITEM(out, i, u);
    }
    return out;
}

/* compose_into(out, cos, sin, tan_x, tan_y, scale_x, scale_y, tx, ty, cx, cy, flip_x, flip_y, order):
   sampling._compose_one written into out, a writable C-contiguous float64 (1, 3, 3) or
   (3, 3): the same operations in the same order (so the same bits). order: the step
   codes (0 scale, 1 shear, 2 rotate, 3 translate) in the order they apply. */
static PyObject *compose_into(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    (void)self;
    if (nargs != 14 || !PyTuple_Check(args[13])) {
        PyErr_SetString(PyExc_TypeError, "compose_into takes an array, 12 numbers and a tuple of step codes");
        return NULL;
    }
    double v[10];
    for (int k = 0; k < 10; k++) v[k] = PyFloat_AsDouble(args[1 + k]);
    const int fx = PyObject_IsTrue(args[11]), fy = PyObject_IsTrue(args[12]);
    if (PyErr_Occurred() || fx < 0 || fy < 0) return NULL;
    const double cs = v[0], sn = v[1], sx = v[4], sy = v[5], tx = v[6], ty = v[7], cx = v[8], cy = v[9];
    const double steps[4][6] = {
        {sx, 0.0, 0.0, sy, 0.0, 0.0}, {1.0, v[2], v[3], 1.0, 0.0, 0.0}, {cs, sn, -sn, cs, 0.0, 0.0}, {1.0, 0.0, 0.0, 1.0, tx, ty}};
    double a = fx ? -1.0 : 1.0, b = 0.0, c = 0.0, d = fy ? -1.0 : 1.0, ox = 0.0, oy = 0.0;
    const Py_ssize_t n = PyTuple_GET_SIZE(args[13]);
    for (Py_ssize_t i = 0; i < n; i++) {
        const long code = PyLong_AsLong(PyTuple_GET_ITEM(args[13], i));
        if (code < 0 || code > 3) {
            if (!PyErr_Occurred()) PyErr_SetString(PyExc_ValueError, "step codes are 0 to 3");
            return NULL;
        }
        const double *t = steps[code];
        const double a2 = t[0] * a + t[1] * c, b2 = t[0] * b + t[1] * d, c2 = t[2] * a + t[3] * c, d2 = t[2] * b + t[3] * d;
        const double ox2 = t[0] * ox + t[1] * oy + t[4], oy2 = t[2] * ox + t[3] * oy + t[5];
        a = a2, b = b2, c = c2, d = d2, ox = ox2, oy = oy2;
    }
    const double m[9] = {a + 0.0, b + 0.0, ox + cx - (a * cx + b * cy) + 0.0, c + 0.0, d + 0.0, oy + cy - (c * cx + d * cy) + 0.0,
                         0.0, 0.0, 1.0};
    Py_buffer o;
    if (PyObject_GetBuffer(args[0], &o, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | PyBUF_WRITABLE) < 0) return NULL;
    const int ok = o.format && strcmp(o.format, "d") == 0 && o.len == 9 * 8;
    if (ok) memcpy(o.buf, m, sizeof m);
    PyBuffer_Release(&o);
    if (!ok) {
        PyErr_SetString(PyExc_ValueError, "compose_into writes a C-contiguous float64 array of 9 values");
        return NULL;
    }
    Py_RETURN_NONE;
}

/* ------------------------------------------------------------------ affine_aug.Augment's call */

/* Keyed(ndarray, empty, large_empty, smallest, max_side, kernel_globals, general, matrix_of,
         fill_of, hashes, coins, constant, interpolation, border, cubic_a, out_size): called
   as keyed(image, key), the plain case of Augment's call from the key to the kernel: a
   numpy array (H, W[, C]) C-contiguous of a kernel dtype, H and W up to max_side, and an
   int key in [0, 2**64). The matrix
   is matrix_of(key, H, W), inverted here as matrix.invert does. For a config of constants
   (`constant`: the matrix depends on the size and the coins alone) its inverse is kept per
   coin outcome for the last image size, and the coins (applied, flip_x, flip_y) are drawn
   here; coins: three triples (drawn, value, index), value the probability of a drawn coin
   (its uniform the index-th of the hashes'), else its outcome. The output is empty(shape, dtype), or large_empty for
   `smallest` bytes or more; the fill is None (zeros) or fill_of(C, dtype) (False: not
   valid); the thread count is kernel_globals["_THREADS"] where set. Anything else, and
   a call the kernel declines, returns general(image, key): the checked path. */
typedef struct {
    PyObject_HEAD
    vectorcallfunc vectorcall;
    PyObject *ndarray, *empty, *large_empty, *kernel_globals, *general, *matrix_of, *fill_of;
    Py_ssize_t smallest, max_side;
    uint64_t hashes[64];
    Py_ssize_t n_hashes;
    int drawn[3], uniform[3], constant, interp, border;
    double value[3], cubic_a;
    int64_t ho, wo;          /* 0: the image's size */
    int64_t kept_h, kept_w;  /* the size whose inverses are kept */
    int kept[8];             /* per coin outcome applied + 2 flip_x + 4 flip_y: 1 kept, 0 not yet */
    double kept_inv[8][9];
    PyObject *fill_dtype;    /* the last fill made, for this dtype and channel count */
    int64_t fill_c;
    double fill[16];
} keyed_t;

static PyObject *keyed_general(keyed_t *k, PyObject *image, PyObject *key) {
    PyObject *args[2] = {image, key};
    return PyObject_Vectorcall(k->general, args, 2, NULL);
}

/* the inverse of matrix_of(key, h, w) into inv: 1, 0 where it is not a plain matrix
   (the general path decides), -1 on an error */
static int inverse_of(keyed_t *k, PyObject *key_obj, int64_t h, int64_t w, double inv[9]) {
    PyObject *hw[2] = {PyLong_FromLongLong(h), PyLong_FromLongLong(w)}, *m = NULL;
    if (hw[0] && hw[1]) {
        PyObject *args[3] = {key_obj, hw[0], hw[1]};
        m = PyObject_Vectorcall(k->matrix_of, args, 3, NULL);
    }
    Py_XDECREF(hw[0]);
    Py_XDECREF(hw[1]);
    if (!m) return -1;
    Py_buffer v;
    int ok = 0;
    if (PyObject_GetBuffer(m, &v, PyBUF_RECORDS_RO) == 0) {
        double e[6];
        ok = matrix_entries(&v, e) && invert(e, inv);
        PyBuffer_Release(&v);
    }
    Py_DECREF(m);
    PyErr_Clear();
    return ok;
}

/* the dst-to-src matrix of key for an h x w image into inv (see inverse_of): for a
   config of constants the one kept for the key's coin outcome at this size. The cache is
   read and written only between calls into Python (which may run another thread's call),
   so a size that changed meanwhile never receives another size's matrix. */
static int keyed_inverse(keyed_t *k, uint64_t key, PyObject *key_obj, int64_t h, int64_t w, double inv[9]) {
    if (!k->constant) return inverse_of(k, key_obj, h, w, inv);
    int coin[3];
    for (int i = 0; i < 3; i++)
        coin[i] = k->drawn[i] ? uniform_of(key, k->hashes[k->uniform[i]]) < k->value[i] : k->value[i] != 0.0;
    const int outcome = coin[0] ? 1 + 2 * coin[1] + 4 * coin[2] : 0;
    if (h == k->kept_h && w == k->kept_w && k->kept[outcome]) {
        memcpy(inv, k->kept_inv[outcome], 9 * sizeof(double));
        return 1;
    }
    const int got = inverse_of(k, key_obj, h, w, inv);
    if (got <= 0) return got;
    if (h != k->kept_h || w != k->kept_w) {
        memset(k->kept, 0, sizeof k->kept);
        k->kept_h = h, k->kept_w = w;
    }
    memcpy(k->kept_inv[outcome], inv, 9 * sizeof(double));
    k->kept[outcome] = 1;
    return 1;
}

/* the fill for c channels of dtype into f (the call's own copy: the kernel reads it with
   the GIL released, while another thread's call may make another fill): 1, 0 where not
   valid, -1 on an error */
static int keyed_fill(keyed_t *k, int64_t c, PyObject *dtype, double *f) {
    if (k->fill_of == Py_None) {
        memset(f, 0, (size_t)c * sizeof(double));
        return 1;
    }
    if (c > 16) return 0;
    if (k->fill_dtype != dtype || k->fill_c != c) {
        PyObject *cv = PyLong_FromLongLong(c);
        if (!cv) return -1;
        PyObject *args[2] = {cv, dtype};
        PyObject *made = PyObject_Vectorcall(k->fill_of, args, 2, NULL);
        Py_DECREF(cv);
        if (!made) return -1;
        double values[16];
        const int ok = made != Py_False && fill_values(made, c, values);
        Py_DECREF(made);
        if (!ok) return 0;
        memcpy(k->fill, values, (size_t)c * sizeof(double)); /* no call into Python from here to the copy below */
        Py_INCREF(dtype);
        Py_XSETREF(k->fill_dtype, dtype);
        k->fill_c = c;
    }
    memcpy(f, k->fill, (size_t)c * sizeof(double));
    return 1;
}

static PyObject *DTYPE, *THREADS; /* interned "dtype", "_THREADS" */

static PyObject *keyed_call(PyObject *self, PyObject *const *args, size_t nargsf, PyObject *kwnames) {
    keyed_t *k = (keyed_t *)self;
    const Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    if (nargs != 2 || kwnames || !WARP) /* the general path, with its own error for other arguments */
        return PyObject_Vectorcall(k->general, args, nargsf, kwnames);
    PyObject *image = args[0], *key_obj = args[1];
    if (Py_TYPE(image) != (PyTypeObject *)k->ndarray || !PyLong_CheckExact(key_obj)) return keyed_general(k, image, key_obj);
    const uint64_t key = PyLong_AsUnsignedLongLong(key_obj);
    if (PyErr_Occurred()) {
        PyErr_Clear();
        return keyed_general(k, image, key_obj);
    }
    Py_buffer im, out;
    if (PyObject_GetBuffer(image, &im, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0) {
        PyErr_Clear();
        return keyed_general(k, image, key_obj);
    }
    PyObject *result = NULL, *dtype = NULL, *shape = NULL;
    int done = 0;
    double inv[9], small[16], *fill = small, *many = NULL;
    const int dt = dtype_code(&im);
    if (dt < 0 || (im.ndim != 2 && im.ndim != 3) || im.shape[0] < 1 || im.shape[1] < 1) goto release;
    if (im.shape[0] > k->max_side || im.shape[1] > k->max_side) goto release;
    const int64_t h = im.shape[0], w = im.shape[1], c = im.ndim == 3 ? im.shape[2] : 1;
    const int64_t ho = k->ho ? k->ho : h, wo = k->wo ? k->wo : w;
    if (c < 1 || keyed_inverse(k, key, key_obj, h, w, inv) <= 0 || !(dtype = PyObject_GetAttr(image, DTYPE))) goto release;
    if (c > 16 && k->fill_of == Py_None) { /* zeros for many channels: memory of the call's own */
        if (!(many = PyMem_Calloc((size_t)c, sizeof(double)))) goto release;
        fill = many;
    } else if (keyed_fill(k, c, dtype, fill) <= 0) {
        goto release;
    }
    shape = PyTuple_New(im.ndim);
    if (!shape) goto release;
    const int64_t dims[3] = {ho, wo, c};
    for (int i = 0; i < im.ndim; i++) {
        PyObject *d = PyLong_FromLongLong(dims[i]);
        if (!d) goto release;
        PyTuple_SET_ITEM(shape, i, d);
    }
    PyObject *alloc_args[2] = {shape, dtype};
    const int large = ho * wo * c * im.itemsize >= k->smallest;
    if (!(result = PyObject_Vectorcall(large ? k->large_empty : k->empty, alloc_args, 2, NULL))) goto release;
    PyObject *t = PyDict_GetItemWithError(k->kernel_globals, THREADS); /* borrowed */
    const int threads = t && PyLong_Check(t) ? (int)PyLong_AsLong(t) : 0;
    if (threads < 1 || PyErr_Occurred()) goto release;
    if (PyObject_GetBuffer(result, &out, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | PyBUF_WRITABLE) == 0) {
        if (dtype_code(&out) == dt) {
            int rc;
            Py_BEGIN_ALLOW_THREADS
            rc = WARP(im.buf, out.buf, inv, fill, 1, h, w, c, ho, wo, dt, k->interp, k->border, k->cubic_a, threads);
            Py_END_ALLOW_THREADS
            done = rc == 0;
        }
        PyBuffer_Release(&out);
    }
release:
    PyBuffer_Release(&im);
    PyMem_Free(many);
    Py_XDECREF(dtype);
    Py_XDECREF(shape);
    if (done) return result;
    Py_XDECREF(result);
    PyErr_Clear(); /* whatever went wrong, the general path meets it again with its own error */
    return keyed_general(k, image, key_obj);
}

static void keyed_dealloc(PyObject *self) {
    keyed_t *k = (keyed_t *)self;
    Py_XDECREF(k->ndarray);
    Py_XDECREF(k->empty);
    Py_XDECREF(k->large_empty);
    Py_XDECREF(k->kernel_globals);
    Py_XDECREF(k->general);
    Py_XDECREF(k->matrix_of);
    Py_XDECREF(k->fill_of);
    Py_XDECREF(k->fill_dtype);
    Py_TYPE(self)->tp_free(self);
}

static PyObject *keyed_new(PyTypeObject *type, PyObject *args, PyObject *kwargs) {
    PyObject *ndarray, *empty, *large_empty, *globals, *general, *matrix_of, *fill_of, *hashes, *coins, *out_size;
    Py_ssize_t smallest, max_side;
    int constant, interp, border;
    double cubic_a;
    if (kwargs && PyDict_GET_SIZE(kwargs)) {
        PyErr_SetString(PyExc_TypeError, "Keyed takes positional arguments");
        return NULL;
    }
    if (!PyArg_ParseTuple(args, "OOOnnO!OOOO!O!piidO", &ndarray, &empty, &large_empty, &smallest, &max_side, &PyDict_Type, &globals,
                          &general, &matrix_of, &fill_of, &PyTuple_Type, &hashes, &PyTuple_Type, &coins, &constant,
                          &interp, &border, &cubic_a, &out_size))
        return NULL;
    if (!PyType_Check(ndarray) || PyTuple_GET_SIZE(hashes) > 64 || PyTuple_GET_SIZE(coins) != 3) {
        PyErr_SetString(PyExc_ValueError, "Keyed: a type, at most 64 hashes and three coins");
        return NULL;
    }
    keyed_t *k = (keyed_t *)type->tp_alloc(type, 0);
    if (!k) return NULL;
    k->vectorcall = keyed_call;
    k->n_hashes = PyTuple_GET_SIZE(hashes);
    for (Py_ssize_t i = 0; i < k->n_hashes; i++) k->hashes[i] = PyLong_AsUnsignedLongLong(PyTuple_GET_ITEM(hashes, i));
    for (int i = 0; i < 3; i++) {
        PyObject *coin = PyTuple_GET_ITEM(coins, i);
        if (!PyArg_ParseTuple(coin, "pdi", &k->drawn[i], &k->value[i], &k->uniform[i])) break;
        if (k->drawn[i] && (k->uniform[i] < 0 || k->uniform[i] >= k->n_hashes))
            PyErr_SetString(PyExc_ValueError, "Keyed: a drawn coin's uniform is one of the hashes'");
    }
    if (out_size != Py_None && !PyArg_ParseTuple(out_size, "LL", &k->ho, &k->wo)) k->ho = 0;
    if (PyErr_Occurred()) {
        Py_DECREF(k);
        return NULL;
    }
    k->smallest = smallest, k->max_side = max_side, k->constant = constant, k->interp = interp, k->border = border, k->cubic_a = cubic_a;
    PyObject *refs[7] = {ndarray, empty, large_empty, globals, general, matrix_of, fill_of};
    PyObject **slots[7] = {&k->ndarray, &k->empty, &k->large_empty, &k->kernel_globals, &k->general, &k->matrix_of, &k->fill_of};
    for (int i = 0; i < 7; i++) {
        Py_INCREF(refs[i]);
        *slots[i] = refs[i];
    }
    return (PyObject *)k;
}

static PyTypeObject KEYED = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "affine_aug._fastpath.Keyed",
    .tp_basicsize = sizeof(keyed_t),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_VECTORCALL,
    .tp_vectorcall_offset = offsetof(keyed_t, vectorcall),
    .tp_call = PyVectorcall_Call,
    .tp_new = keyed_new,
    .tp_dealloc = keyed_dealloc,
    .tp_doc = "the plain case of affine_aug.Augment's call (see fastpath.c)",
};

static PyObject *bind(PyObject *self, PyObject *address) {
    (void)self;
    void *p = PyLong_AsVoidPtr(address);
    if (PyErr_Occurred()) return NULL;
    WARP = (warp_fn)p;
    Py_RETURN_NONE;
}

static PyMethodDef METHODS[] = {
    {"warp_one", (PyCFunction)(void (*)(void))warp_one, METH_FASTCALL, "the plain one-image warp; False: not done"},
    {"warp_into", (PyCFunction)(void (*)(void))warp_into, METH_FASTCALL, "kernel.warp_into's call; None: not buffers"},
    {"uniforms", (PyCFunction)(void (*)(void))uniforms, METH_FASTCALL, "one key's uniforms, one per stream hash"},
    {"compose_into", (PyCFunction)(void (*)(void))compose_into, METH_FASTCALL, "one transform's matrix, into an array"},
    {"bind", bind, METH_O, "the address of the kernel's aa_warp"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef MODULE = {PyModuleDef_HEAD_INIT, "_fastpath", NULL, -1, METHODS, NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__fastpath(void) {
    DTYPE = PyUnicode_InternFromString("dtype");
    THREADS = PyUnicode_InternFromString("_THREADS");
    if (!DTYPE || !THREADS || PyType_Ready(&KEYED) < 0) return NULL;
    PyObject *m = PyModule_Create(&MODULE);
    if (!m) return NULL;
    Py_INCREF(&KEYED);
    if (PyModule_AddObject(m, "Keyed", (PyObject *)&KEYED) < 0) {
        Py_DECREF(&KEYED);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
