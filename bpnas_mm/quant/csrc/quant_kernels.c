/* One-pass CPU kernels of the uniform quantizer (float32, contiguous).
 *
 * Q(x) = round(clamp(x, lo, hi) * k_in) * k_out with round half to even,
 * the same float32 operations, in the same order, as the torch ops of
 * bpnas_mm.quant.functional.quantize_values, so the values are identical.
 * Compiled without -ffast-math (the rounding and the float32 operations must
 * stay as written); only the double sums are vectorized (OpenMP simd
 * reductions, -fopenmp-simd, no OpenMP runtime). Built and loaded by
 * bpnas_mm/quant/cpu_kernels.py (ctypes); each call handles one chunk of a
 * tensor, the caller runs the chunks on several threads.
 */
#include <math.h>
#include <stdint.h>

static inline float clip(float v, float lo, float hi) {
    return v < lo ? lo : (v > hi ? hi : v);  /* NaN stays NaN, as torch.clamp */
}

void bp_quantize(const float *x, float *out, int64_t n, float lo, float hi, float k_in,
                 float k_out) {
    for (int64_t i = 0; i < n; ++i)
        out[i] = nearbyintf(clip(x[i], lo, hi) * k_in) * k_out;
}

/* The loop of bp_ste_backward for constant flags (specialized when inlined). */
static inline __attribute__((always_inline)) void ste_loop(
        const float *g, const float *x, float *gx, int64_t n, float lo, float hi, float k_in,
        float k_out, const int need_gx, const int need_alpha, const int need_gate,
        double *sums) {
    double inside = 0.0, above = 0.0, below = 0.0, gq = 0.0;
#pragma omp simd reduction(+ : inside, above, below, gq)
    for (int64_t i = 0; i < n; ++i) {
        const float v = x[i], gi = g[i];
        if (need_alpha || need_gate) {
            const float q = nearbyintf(clip(v, lo, hi) * k_in) * k_out;
            if (need_alpha) {  /* 0/1 factors, not selects, and the range test inline:
                                  written otherwise, gcc 12 reduced in order, 10x slower */
                inside += (double)gi * (double)((q - v) * (float)((v >= lo) & (v <= hi)));
                above += (double)gi * (double)(float)(v > hi);
                below += (double)gi * (double)(float)(v < lo);
            }
            if (need_gate)
                gq += (double)gi * (double)q;
        }
        if (need_gx)
            gx[i] = ((v >= lo) & (v <= hi)) ? gi : 0.0f;
    }
    sums[0] += inside;
    sums[1] += above;
    sums[2] += below;
    sums[3] += gq;
}

/* The straight-through backward of Q given g = dL/dQ.
 * want & 1: gx[i] = g[i] on [lo, hi], 0 outside (gx may be g itself);
 * want & 2: sums[0] += sum over [lo, hi] of g * (Q - x), sums[1] += sum of g above hi,
 *           sums[2] += sum of g below lo (the clip's gradient, assembled by the caller);
 * want & 4: sums[3] += sum of g * Q (a path-sampling gate's gradient).
 * The sums are accumulated in double. */
void bp_ste_backward(const float *g, const float *x, float *gx, int64_t n, float lo, float hi,
                     float k_in, float k_out, int want, double *sums) {
    switch (want & 7) {
    case 1: ste_loop(g, x, gx, n, lo, hi, k_in, k_out, 1, 0, 0, sums); break;
    case 2: ste_loop(g, x, gx, n, lo, hi, k_in, k_out, 0, 1, 0, sums); break;
    case 3: ste_loop(g, x, gx, n, lo, hi, k_in, k_out, 1, 1, 0, sums); break;
    case 4: ste_loop(g, x, gx, n, lo, hi, k_in, k_out, 0, 0, 1, sums); break;
    case 5: ste_loop(g, x, gx, n, lo, hi, k_in, k_out, 1, 0, 1, sums); break;
    case 6: ste_loop(g, x, gx, n, lo, hi, k_in, k_out, 0, 1, 1, sums); break;
    case 7: ste_loop(g, x, gx, n, lo, hi, k_in, k_out, 1, 1, 1, sums); break;
    default: break;
    }
}

/* The same kernels run on the OpenMP thread team of the runtime torch uses
 * (its GOMP_parallel, omp_get_thread_num and omp_get_num_threads, passed in by
 * the caller): the threads that run torch's own ops, so no second pool of
 * threads competes with them for the cores (a Python thread pool did: an
 * OpenMP worker spinning after a convolution took the core the kernel's second
 * thread needed). Each thread handles one contiguous chunk, 16-float aligned;
 * thread k adds its sums into sums[4k .. 4k+3]. */
typedef void (*bp_gomp_parallel_fn)(void (*fn)(void *), void *data, unsigned num_threads,
                                    unsigned flags);
typedef int (*bp_omp_int_fn)(void);

struct bp_task {
    int ste;  /* 0: bp_quantize, 1: bp_ste_backward */
    const float *g, *x;
    float *out;
    int64_t n;
    float lo, hi, k_in, k_out;
    int want;
    double *sums;
    bp_omp_int_fn thread_num, num_threads;
};

static void bp_task_body(void *arg) {
    const struct bp_task *t = (const struct bp_task *)arg;
    const int64_t id = t->thread_num(), nt = t->num_threads();
    int64_t step = (t->n + nt - 1) / nt;
    step = (step + 15) / 16 * 16;
    const int64_t start = id * step;
    if (start >= t->n)
        return;
    const int64_t count = t->n - start < step ? t->n - start : step;
    if (t->ste)
        bp_ste_backward(t->g + start, t->x + start, t->out ? t->out + start : 0, count, t->lo,
                        t->hi, t->k_in, t->k_out, t->want, t->sums + 4 * id);
    else
        bp_quantize(t->x + start, t->out + start, count, t->lo, t->hi, t->k_in, t->k_out);
}

void bp_quantize_team(void *parallel, void *thread_num, void *num_threads, unsigned threads,
                      const float *x, float *out, int64_t n, float lo, float hi, float k_in,
                      float k_out) {
    struct bp_task t = {0, 0, x, out, n, lo, hi, k_in, k_out, 0, 0,
                        (bp_omp_int_fn)thread_num, (bp_omp_int_fn)num_threads};
    ((bp_gomp_parallel_fn)parallel)(bp_task_body, &t, threads, 0);
}

/* sums: 4 * threads doubles, zeroed by the caller. */
void bp_ste_backward_team(void *parallel, void *thread_num, void *num_threads, unsigned threads,
                          const float *g, const float *x, float *gx, int64_t n, float lo,
                          float hi, float k_in, float k_out, int want, double *sums) {
    struct bp_task t = {1, g, x, gx, n, lo, hi, k_in, k_out, want, sums,
                        (bp_omp_int_fn)thread_num, (bp_omp_int_fn)num_threads};
    ((bp_gomp_parallel_fn)parallel)(bp_task_body, &t, threads, 0);
}
