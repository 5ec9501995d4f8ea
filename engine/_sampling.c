/* The per-token sampling step of the lean generation path, in C.
 *
 * After llama.cpp decodes a token, its logits over the whole vocabulary (262 144 floats for
 * Gemma 3) are fresh in memory and the interpreter's own code and data are cold: every Python
 * or NumPy operation then costs tens of microseconds. This module does the whole step in one
 * call: find the candidate tokens (every token whose logit reaches a threshold that at least
 * `needed` tokens reach: the only ones the sampler chain can pick, see generation.py), hand
 * them to llama.cpp's native sampler chain, accept the pick and return its id. llama.cpp's
 * functions are called through addresses the caller passes (taken from llama-cpp-python's
 * ctypes bindings), so nothing here links against llama.cpp or needs its headers.
 *
 * The algorithm is the one of generation.SamplerChain.candidates (the fallback when this
 * module is not built); the results are identical.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* llama.h (llama.cpp b6xxx-b7xxx; the layout has not changed since the sampler API came) */
typedef struct {
    int32_t id;
    float logit;
    float p;
} token_data;

typedef struct {
    token_data *data;
    size_t size;
    int64_t selected;
    bool sorted;
} token_data_array;

typedef float *(*get_logits_ith_fn)(void *ctx, int32_t i);
typedef void (*sampler_apply_fn)(void *chain, token_data_array *cur);
typedef void (*sampler_accept_fn)(void *chain, int32_t token);

/* The threshold kept for the next token aims at this many times the tokens needed. */
#define MARGIN 8
/* More candidates than this many times those needed are cut down before the chain. */
#define SURPLUS 4

typedef struct {
    PyObject_HEAD
    get_logits_ith_fn get_logits_ith;
    sampler_apply_fn apply;
    sampler_accept_fn accept;
    void *ctx;
    void *chain;
    int32_t n_vocab;
    int32_t needed;
    int32_t stride;
    bool has_threshold;
    float threshold;
    token_data *candidates; /* capacity: `capacity` entries */
    size_t capacity;
    float *scratch; /* capacity + the strided sample */
    size_t scratch_capacity;
} Sampler;

/* The k-th largest value (k counted from 0) of values[0..n), reordering them. */
static float kth_largest(float *values, size_t n, size_t k)
{
    size_t lo = 0, hi = n - 1;
    while (lo < hi) {
        float pivot = values[lo + (hi - lo) / 2];
        size_t i = lo, j = hi;
        while (i <= j) {
            while (values[i] > pivot) i++;
            while (values[j] < pivot) j--;
            if (i <= j) {
                float t = values[i];
                values[i] = values[j];
                values[j] = t;
                i++;
                if (j == 0) break;
                j--;
            }
        }
        if (k <= j) hi = j;
        else if (k >= i) lo = i;
        else return values[k];
    }
    return values[k];
}

static bool reserve_scratch(Sampler *self, size_t n)
{
    if (n <= self->scratch_capacity) return true;
    float *grown = realloc(self->scratch, n * sizeof(float));
    if (!grown) return false;
    self->scratch = grown;
    self->scratch_capacity = n;
    return true;
}

/* Whether any of the BLOCK logits from `logits` reaches `threshold`: four 4-lane vector
 * compares (GCC/Clang vector extensions: SSE2 or NEON, in every 64-bit target's baseline)
 * where a scalar loop over the vocabulary would take most of the step's time (measured on
 * 262 144 logits: 21 us instead of 107 us). */
#define BLOCK 16
#if defined(__GNUC__)
typedef float vfloat __attribute__((vector_size(16)));
typedef int32_t vint __attribute__((vector_size(16)));

static inline bool block_reaches(const float *logits, vfloat threshold)
{
    vfloat a, b, c, d;
    memcpy(&a, logits, sizeof a);
    memcpy(&b, logits + 4, sizeof b);
    memcpy(&c, logits + 8, sizeof c);
    memcpy(&d, logits + 12, sizeof d);
    vint hit = (a >= threshold) | (b >= threshold) | (c >= threshold) | (d >= threshold);
    uint64_t lanes[2];
    memcpy(lanes, &hit, sizeof lanes);
    return (lanes[0] | lanes[1]) != 0;
}
#define SPLAT(x) ((vfloat){x, x, x, x})
#else
typedef float vfloat;

static inline bool block_reaches(const float *logits, vfloat threshold)
{
    for (int j = 0; j < BLOCK; j++) {
        if (logits[j] >= threshold) return true;
    }
    return false;
}
#define SPLAT(x) (x)
#endif

/* Every token whose logit reaches `threshold`, in id order, into self->candidates (grown when
 * they do not fit). Returns how many, or -1 when memory ran out. */
static Py_ssize_t collect(Sampler *self, const float *logits, float threshold)
{
    size_t n = 0;
    const size_t capacity = self->capacity;
    token_data *out = self->candidates;
    const vfloat splat = SPLAT(threshold);
    const int32_t whole = self->n_vocab - self->n_vocab % BLOCK;
    for (int32_t start = 0; start < self->n_vocab; start += BLOCK) {
        if (start < whole && !block_reaches(logits + start, splat)) continue;
        const int32_t end = start < whole ? start + BLOCK : self->n_vocab;
        for (int32_t i = start; i < end; i++) {
            if (logits[i] >= threshold) {
                if (n < capacity) {
                    out[n].id = i;
                    out[n].logit = logits[i];
                    out[n].p = 0.0f;
                }
                n++;
            }
        }
    }
    if (n <= capacity) return (Py_ssize_t)n;
    token_data *grown = realloc(self->candidates, n * sizeof(token_data));
    if (!grown) return -1;
    self->candidates = grown;
    self->capacity = n;
    return collect(self, logits, threshold);
}

/* A threshold guessed from a strided sample of the logits: about `rank` sampled values reach
 * it (so about rank * stride of all logits do). */
static float guess_threshold(Sampler *self, const float *logits, size_t rank)
{
    size_t m = 0;
    for (int32_t i = 0; i < self->n_vocab; i += self->stride) self->scratch[m++] = logits[i];
    return kth_largest(self->scratch, m, rank - 1);
}

/* Cut `n` candidates (all tokens at or above some threshold, at least `needed`) down to those
 * at or above the needed-th largest logit among them (the needed-th largest of the vocabulary);
 * the kept threshold becomes the (MARGIN * needed)-th largest. Returns the new count. */
static size_t keep_likeliest(Sampler *self, size_t n)
{
    if (n <= (size_t)SURPLUS * self->needed) return n;
    float *values = self->scratch;
    for (size_t i = 0; i < n; i++) values[i] = self->candidates[i].logit;
    size_t margin_rank = (size_t)MARGIN * self->needed;
    if (margin_rank > n) margin_rank = n;
    self->threshold = kth_largest(values, n, margin_rank - 1);
    float cut = kth_largest(values, margin_rank, (size_t)self->needed - 1);
    size_t kept = 0;
    for (size_t i = 0; i < n; i++) {
        if (self->candidates[i].logit >= cut) self->candidates[kept++] = self->candidates[i];
    }
    return kept;
}

/* The candidates for this token's logits; returns their count, or -1 when memory ran out. */
static Py_ssize_t find_candidates(Sampler *self, const float *logits)
{
    Py_ssize_t n;
    if (self->has_threshold) {
        n = collect(self, logits, self->threshold);
        if (n < 0) return -1;
        if (n >= self->needed) {
            if (!reserve_scratch(self, (size_t)n)) return -1;
            return (Py_ssize_t)keep_likeliest(self, (size_t)n);
        }
    }
    size_t sampled = (size_t)((self->n_vocab + self->stride - 1) / self->stride);
    size_t rank = ((size_t)MARGIN * self->needed + self->stride - 1) / self->stride;
    if (rank < 1) rank = 1;
    if (!reserve_scratch(self, sampled)) return -1;
    while (rank < sampled) {
        float threshold = guess_threshold(self, logits, rank);
        n = collect(self, logits, threshold);
        if (n < 0) return -1;
        if (n >= self->needed) {
            self->has_threshold = true;
            self->threshold = threshold;
            if (!reserve_scratch(self, (size_t)n)) return -1;
            return (Py_ssize_t)keep_likeliest(self, (size_t)n);
        }
        rank *= 4;
    }
    self->has_threshold = false;
    return collect(self, logits, -INFINITY);
}

static PyObject *Sampler_sample(Sampler *self, PyObject *Py_UNUSED(ignored))
{
    const float *logits = self->get_logits_ith(self->ctx, -1);
    if (!logits) {
        PyErr_SetString(PyExc_RuntimeError, "llama.cpp has no logits for the last token");
        return NULL;
    }
    Py_ssize_t n;
    token_data_array array;
    int32_t token = -1;
    Py_BEGIN_ALLOW_THREADS /* as ctypes does around llama.cpp's calls */
    n = find_candidates(self, logits);
    if (n >= 0) {
        array = (token_data_array){self->candidates, (size_t)n, -1, false};
        self->apply(self->chain, &array);
        if (array.selected >= 0 && (size_t)array.selected < array.size) {
            token = array.data[array.selected].id; /* the chain sorts (and may move) the data */
            self->accept(self->chain, token);
        }
    }
    Py_END_ALLOW_THREADS
    if (n < 0) return PyErr_NoMemory();
    if (token < 0) {
        PyErr_SetString(PyExc_RuntimeError, "llama.cpp's sampler chain selected no token");
        return NULL;
    }
    return PyLong_FromLong(token);
}

static void *address(PyObject *value)
{
    void *pointer = PyLong_AsVoidPtr(value);
    if (!pointer && !PyErr_Occurred()) {
        PyErr_SetString(PyExc_ValueError, "a null address");
    }
    return pointer;
}

static int Sampler_init(Sampler *self, PyObject *args, PyObject *kwargs)
{
    static char *keywords[] = {"get_logits_ith", "apply", "accept", "ctx", "chain",
                               "n_vocab", "needed", NULL};
    PyObject *get_logits_ith, *apply, *accept, *ctx, *chain;
    int n_vocab, needed;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OOOOOii", keywords, &get_logits_ith, &apply,
                                     &accept, &ctx, &chain, &n_vocab, &needed)) {
        return -1;
    }
    if (n_vocab < 1 || needed < 1 || needed > n_vocab) {
        PyErr_SetString(PyExc_ValueError, "needed must be between 1 and n_vocab");
        return -1;
    }
    self->get_logits_ith = (get_logits_ith_fn)address(get_logits_ith);
    self->apply = (sampler_apply_fn)address(apply);
    self->accept = (sampler_accept_fn)address(accept);
    self->ctx = address(ctx);
    self->chain = address(chain);
    if (PyErr_Occurred()) return -1;
    self->n_vocab = n_vocab;
    self->needed = needed;
    self->stride = n_vocab / 8192 > 1 ? n_vocab / 8192 : 1;
    self->has_threshold = false;
    size_t capacity = (size_t)MARGIN * 2 * needed;
    free(self->candidates);
    self->candidates = malloc(capacity * sizeof(token_data));
    self->capacity = self->candidates ? capacity : 0;
    if (!self->candidates || !reserve_scratch(self, capacity)) {
        PyErr_NoMemory();
        return -1;
    }
    return 0;
}

static void Sampler_dealloc(Sampler *self)
{
    free(self->candidates);
    free(self->scratch);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyMethodDef Sampler_methods[] = {
    {"sample", (PyCFunction)Sampler_sample, METH_NOARGS,
     "Pick the next token from the last decoded position's logits (and accept it)."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject SamplerType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "quantdesk.engine._sampling.Sampler",
    .tp_doc = "Sampler(get_logits_ith, apply, accept, ctx, chain, n_vocab, needed): llama.cpp's "
              "sampler chain applied to the candidate tokens of each decoded position "
              "(addresses of llama.cpp's functions, context and chain as integers).",
    .tp_basicsize = sizeof(Sampler),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Sampler_init,
    .tp_dealloc = (destructor)Sampler_dealloc,
    .tp_methods = Sampler_methods,
};

static struct PyModuleDef module = {
    .m_base = PyModuleDef_HEAD_INIT,
    .m_name = "_sampling",
    .m_doc = "The per-token sampling step of the lean generation path, in C.",
    .m_size = -1,
};

PyMODINIT_FUNC PyInit__sampling(void)
{
    if (PyType_Ready(&SamplerType) < 0) return NULL;
    PyObject *m = PyModule_Create(&module);
    if (!m) return NULL;
    Py_INCREF(&SamplerType);
    if (PyModule_AddObject(m, "Sampler", (PyObject *)&SamplerType) < 0) {
        Py_DECREF(&SamplerType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
