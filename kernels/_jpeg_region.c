/*
 * Decode only a rectangle of a JPEG (optionally DCT-scaled) with libjpeg-turbo's libjpeg API.
 *
 * Why: a RandomResizedCrop covers about half of the image on average, and a full decode spends
 * IDCT, upsampling and colour conversion on pixels the resize never reads.  Rows above the region
 * are skipped with jpeg_skip_scanlines (entropy decoded only), rows below are never read (the
 * decompressor is aborted), and columns are narrowed with jpeg_crop_scanline (left edge rounded
 * down to an iMCU column; the caller adds a margin so that the edge columns, where fancy chroma
 * upsampling sees the cut instead of the neighbour, are never used).
 *
 * Settings are simplejpeg's (TurboJPEG) defaults, so pixels match it: JDCT_ISLOW, fancy upsampling,
 * RGB output.  Errors longjmp back here (libjpeg's default error_exit would exit() the process)
 * and warnings (e.g. premature end of data) are errors too, as simplejpeg's strict mode makes them.
 * The GIL is released while libjpeg runs, so threads decode in parallel.
 *
 * Two entry points: `decode` (Python, one region per call) and the plain C function whose
 * address is the module's DECODE_REGION_ADDRESS, which fastdeit.kernels.chunk_decode's numba
 * code calls directly for every sample of a chunk, without the GIL and without Python.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>

typedef struct {
    struct jpeg_error_mgr pub;
    jmp_buf jump;
    char message[JMSG_LENGTH_MAX];
} region_error_mgr;

static void region_error_exit(j_common_ptr cinfo)
{
    region_error_mgr *err = (region_error_mgr *)cinfo->err;
    (*cinfo->err->format_message)(cinfo, err->message);
    longjmp(err->jump, 1);
}

static void region_emit_message(j_common_ptr cinfo, int msg_level)
{
    /* msg_level < 0 is a warning (corrupt or truncated data): fail like simplejpeg's strict
     * mode; trace messages (>= 0) are dropped. */
    if (msg_level < 0)
        region_error_exit(cinfo);
}

typedef struct {
    const unsigned char *data;
    size_t size;
    int scale_denom;
    unsigned int expect_h, expect_w;
    unsigned int y0, y1, x0, x1;
    unsigned char *out;
    size_t out_size;
    /* results */
    unsigned int x_offset, width;
    char message[JMSG_LENGTH_MAX + 64];
} region_job;

/* Runs without the GIL; returns 0, or -1 with job->message set. */
static int decode_region(region_job *job)
{
    struct jpeg_decompress_struct cinfo;
    region_error_mgr jerr;
    JSAMPROW *volatile rows = NULL;
    JDIMENSION x_offset, width, n, done;

    memset(&cinfo, 0, sizeof(cinfo));
    cinfo.err = jpeg_std_error(&jerr.pub);
    jerr.pub.error_exit = region_error_exit;
    jerr.pub.emit_message = region_emit_message;
    jerr.message[0] = '\0';
    if (setjmp(jerr.jump)) {
        snprintf(job->message, sizeof(job->message), "libjpeg: %s", jerr.message);
        free(rows);
        jpeg_destroy_decompress(&cinfo);
        return -1;
    }
    jpeg_create_decompress(&cinfo);
    jpeg_mem_src(&cinfo, job->data, (unsigned long)job->size);
    jpeg_read_header(&cinfo, TRUE);
    cinfo.out_color_space = JCS_RGB;
    cinfo.dct_method = JDCT_ISLOW;
    cinfo.do_fancy_upsampling = TRUE;
    cinfo.scale_num = 1;
    cinfo.scale_denom = (unsigned int)job->scale_denom;
    jpeg_calc_output_dimensions(&cinfo);
    if (cinfo.output_height != job->expect_h || cinfo.output_width != job->expect_w) {
        snprintf(job->message, sizeof(job->message),
                 "JPEG decodes to %ux%u at 1/%d scale, expected %ux%u", cinfo.output_width,
                 cinfo.output_height, job->scale_denom, job->expect_w, job->expect_h);
        jpeg_destroy_decompress(&cinfo);
        return -1;
    }
    jpeg_start_decompress(&cinfo);
    if (cinfo.output_components != 3) {
        snprintf(job->message, sizeof(job->message), "JPEG decodes to %d components, 3 expected",
                 cinfo.output_components);
        jpeg_destroy_decompress(&cinfo);
        return -1;
    }
    x_offset = job->x0;
    width = job->x1 - job->x0;
    jpeg_crop_scanline(&cinfo, &x_offset, &width);
    n = job->y1 - job->y0;
    if ((size_t)n * width * 3 > job->out_size) {
        snprintf(job->message, sizeof(job->message),
                 "output buffer of %zu bytes too small for %ux%u RGB", job->out_size, width, n);
        jpeg_destroy_decompress(&cinfo);
        return -1;
    }
    rows = (JSAMPROW *)malloc(sizeof(JSAMPROW) * (n ? n : 1));
    if (rows == NULL) {
        snprintf(job->message, sizeof(job->message), "out of memory");
        jpeg_destroy_decompress(&cinfo);
        return -1;
    }
    for (JDIMENSION i = 0; i < n; i++)
        rows[i] = job->out + (size_t)i * width * 3;
    if (job->y0 > 0 && jpeg_skip_scanlines(&cinfo, job->y0) != job->y0) {
        snprintf(job->message, sizeof(job->message), "could not skip to row %u", job->y0);
        free(rows);
        jpeg_destroy_decompress(&cinfo);
        return -1;
    }
    done = 0;
    while (done < n) {
        JDIMENSION got = jpeg_read_scanlines(&cinfo, rows + done, n - done);
        if (got == 0) {
            snprintf(job->message, sizeof(job->message), "no rows after row %u", job->y0 + done);
            free(rows);
            jpeg_destroy_decompress(&cinfo);
            return -1;
        }
        done += got;
    }
    free(rows);
    /* Rows below the region are never needed: abort instead of finishing the decode. */
    jpeg_abort_decompress(&cinfo);
    jpeg_destroy_decompress(&cinfo);
    job->x_offset = x_offset;
    job->width = width;
    return 0;
}

/* The chunk decoder's entry point (a plain C ABI: numba calls it through its address).
 * result[0], result[1] = the decoded columns' start and count.  Returns 0, or -1 with a
 * NUL-terminated message in `message` (at most message_size bytes). */
static int fastdeit_decode_region(const unsigned char *data, size_t size, int scale_denom,
                                  unsigned int expect_h, unsigned int expect_w, unsigned int y0,
                                  unsigned int y1, unsigned int x0, unsigned int x1,
                                  unsigned char *out, size_t out_size, unsigned int *result,
                                  char *message, size_t message_size)
{
    region_job job;
    int rc;

    memset(&job, 0, sizeof(job));
    if (scale_denom != 1 && scale_denom != 2 && scale_denom != 4 && scale_denom != 8) {
        snprintf(job.message, sizeof(job.message), "scale_denom must be 1, 2, 4 or 8, got %d",
                 scale_denom);
        rc = -1;
    } else if (!(y0 < y1 && y1 <= expect_h && x0 < x1 && x1 <= expect_w)) {
        snprintf(job.message, sizeof(job.message),
                 "region rows %u:%u, columns %u:%u outside the %ux%u image", y0, y1, x0, x1,
                 expect_w, expect_h);
        rc = -1;
    } else {
        job.data = data;
        job.size = size;
        job.scale_denom = scale_denom;
        job.expect_h = expect_h;
        job.expect_w = expect_w;
        job.y0 = y0;
        job.y1 = y1;
        job.x0 = x0;
        job.x1 = x1;
        job.out = out;
        job.out_size = out_size;
        rc = decode_region(&job);
    }
    if (rc != 0) {
        if (message_size > 0)
            snprintf(message, message_size, "%s", job.message);
        return -1;
    }
    result[0] = job.x_offset;
    result[1] = job.width;
    return 0;
}

PyDoc_STRVAR(decode_doc,
"decode(data, out, scale_denom, expect_h, expect_w, y0, y1, x0, x1) -> (x_offset, width)\n\n"
"Decode rows y0:y1 and at least columns x0:x1 of the JPEG `data` scaled by 1/scale_denom\n"
"(whose size must be expect_h x expect_w) as packed RGB rows into the writable buffer `out`.\n"
"Returns the decoded columns' start (x0 rounded down to an iMCU column) and count; row r of the\n"
"region is out[r * width * 3 : (r + 1) * width * 3].  Raises ValueError for bad arguments or\n"
"corrupt, truncated or unsupported data.");

static PyObject *py_decode(PyObject *self, PyObject *args)
{
    Py_buffer data, out;
    int scale_denom;
    unsigned int expect_h, expect_w, y0, y1, x0, x1;
    region_job job;
    int rc;

    (void)self;
    if (!PyArg_ParseTuple(args, "y*w*iIIIIII", &data, &out, &scale_denom, &expect_h, &expect_w,
                          &y0, &y1, &x0, &x1))
        return NULL;
    if (scale_denom != 1 && scale_denom != 2 && scale_denom != 4 && scale_denom != 8) {
        PyErr_Format(PyExc_ValueError, "scale_denom must be 1, 2, 4 or 8, got %d", scale_denom);
        goto fail;
    }
    if (!(y0 < y1 && y1 <= expect_h && x0 < x1 && x1 <= expect_w)) {
        PyErr_Format(PyExc_ValueError, "region rows %u:%u, columns %u:%u outside the %ux%u image",
                     y0, y1, x0, x1, expect_w, expect_h);
        goto fail;
    }
    memset(&job, 0, sizeof(job));
    job.data = (const unsigned char *)data.buf;
    job.size = (size_t)data.len;
    job.scale_denom = scale_denom;
    job.expect_h = expect_h;
    job.expect_w = expect_w;
    job.y0 = y0;
    job.y1 = y1;
    job.x0 = x0;
    job.x1 = x1;
    job.out = (unsigned char *)out.buf;
    job.out_size = (size_t)out.len;
    Py_BEGIN_ALLOW_THREADS
    rc = decode_region(&job);
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&data);
    PyBuffer_Release(&out);
    if (rc != 0) {
        PyErr_SetString(PyExc_ValueError, job.message);
        return NULL;
    }
    return Py_BuildValue("(II)", job.x_offset, job.width);
fail:
    PyBuffer_Release(&data);
    PyBuffer_Release(&out);
    return NULL;
}

static PyMethodDef methods[] = {
    {"decode", py_decode, METH_VARARGS, decode_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_jpeg_region",
    "Region (crop) JPEG decoding with libjpeg-turbo; see fastdeit.kernels.chunk_decode.", -1, methods,
};

PyMODINIT_FUNC PyInit__jpeg_region(void)
{
    PyObject *m = PyModule_Create(&module);
    if (m == NULL)
        return NULL;
    if (PyModule_AddObject(m, "DECODE_REGION_ADDRESS",
                           PyLong_FromVoidPtr((void *)&fastdeit_decode_region)) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    PyModule_AddIntConstant(m, "LIBJPEG_TURBO_VERSION_NUMBER",
#ifdef LIBJPEG_TURBO_VERSION_NUMBER
                                LIBJPEG_TURBO_VERSION_NUMBER
#else
                                0
#endif
    );
    return m;
}
