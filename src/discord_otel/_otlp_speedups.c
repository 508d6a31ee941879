/*
 * The compiled half of discord_otel.otlp_encoding: one span's OTLP/protobuf
 * ``Span`` message, framed as a ``ScopeSpans.spans`` field, written straight
 * into a buffer.
 *
 * The Python encoder spends most of its time making and joining small bytes
 * objects and tuples; this does the same work for the usual span (a direct
 * span type, plain attributes, no events or links, a plain status) without
 * them. It reuses the Python module's caches and helpers, which it is handed
 * on every call, so the two can never disagree: every encoding that is cached
 * or scrubbed is made by the Python code, and anything out of the ordinary is
 * declined (None) and encoded by the Python code. See otlp_encoding._encode.
 *
 * EndEncoder does the same for one span as it ends (otlp_encoding.end_encoder),
 * keeping the helpers it was made with, and queues an EncodedSpan in its place.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <string.h>
#include <structmember.h>
#ifdef HAVE_FORK
#include <pthread.h>
#endif

typedef struct {
    unsigned char *data;
    Py_ssize_t len;
    Py_ssize_t cap;
} Buffer;

/* Room for the ``0x12 <varint length>`` frame, written in front of the body
 * once its length is known. */
#define FRAME_ROOM 11

static int
reserve(Buffer *buffer, Py_ssize_t extra)
{
    Py_ssize_t cap;
    unsigned char *data;

    if (buffer->len + extra <= buffer->cap) {
        return 0;
    }
    cap = buffer->cap ? buffer->cap : 512;
    while (cap < buffer->len + extra) {
        cap *= 2;
    }
    data = PyMem_Realloc(buffer->data, (size_t)cap);
    if (data == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    buffer->data = data;
    buffer->cap = cap;
    return 0;
}

static int
put(Buffer *buffer, const void *source, Py_ssize_t size)
{
    if (reserve(buffer, size) < 0) {
        return -1;
    }
    memcpy(buffer->data + buffer->len, source, (size_t)size);
    buffer->len += size;
    return 0;
}

static Py_ssize_t
varint_into(unsigned char *out, unsigned long long value)
{
    Py_ssize_t size = 0;
    while (value >= 0x80) {
        out[size++] = (unsigned char)((value & 0x7F) | 0x80);
        value >>= 7;
    }
    out[size++] = (unsigned char)value;
    return size;
}

static int
put_varint(Buffer *buffer, unsigned long long value)
{
    if (reserve(buffer, 10) < 0) {
        return -1;
    }
    buffer->len += varint_into(buffer->data + buffer->len, value);
    return 0;
}

static int
put_fixed64(Buffer *buffer, unsigned char tag, unsigned long long value)
{
    unsigned char out[9];
    int i;
    out[0] = tag;
    for (i = 0; i < 8; i++) {
        out[1 + i] = (unsigned char)(value >> (8 * i));
    }
    return put(buffer, out, 9);
}

/* A bytes object's content; anything else is a caller's mistake. */
static int
put_bytes(Buffer *buffer, PyObject *bytes)
{
    if (!PyBytes_CheckExact(bytes)) {
        PyErr_Format(PyExc_TypeError, "expected bytes, got %.100s", Py_TYPE(bytes)->tp_name);
        return -1;
    }
    return put(buffer, PyBytes_AS_STRING(bytes), PyBytes_GET_SIZE(bytes));
}

/* ``value`` as ``size`` big-endian bytes, as int.to_bytes(size, "big") (which
 * raises for a negative or too large value, and so does this). */
/* A 64-bit id as 8 big-endian bytes, as int.to_bytes(8, "big") (which raises
 * OverflowError for a negative or too large value, and so does this). */
static int
put_id64(Buffer *buffer, PyObject *value)
{
    unsigned char out[8];
    unsigned long long id = PyLong_AsUnsignedLongLong(value);
    int i;
    if (id == (unsigned long long)-1 && PyErr_Occurred()) {
        return -1;
    }
    for (i = 0; i < 8; i++) {
        out[i] = (unsigned char)(id >> (56 - 8 * i));
    }
    return put(buffer, out, 8);
}

static int
put_big_endian(Buffer *buffer, PyObject *value, size_t size)
{
    int done;
    if (reserve(buffer, (Py_ssize_t)size) < 0) {
        return -1;
    }
#if PY_VERSION_HEX >= 0x030D0000
    done = _PyLong_AsByteArray((PyLongObject *)value, buffer->data + buffer->len, size, 0, 0, 1);
#else
    done = _PyLong_AsByteArray((PyLongObject *)value, buffer->data + buffer->len, size, 0, 0);
#endif
    if (done < 0) {
        return -1;
    }
    buffer->len += (Py_ssize_t)size;
    return 0;
}

/* A length-delimited field whose length is known only once its body is
 * written: open_frame leaves room for the tag and length, close_frame writes
 * them and moves the body up to them. */
static Py_ssize_t
open_frame(Buffer *buffer)
{
    Py_ssize_t start = buffer->len;
    if (reserve(buffer, FRAME_ROOM) < 0) {
        return -1;
    }
    buffer->len += FRAME_ROOM;
    return start;
}

static void
close_frame(Buffer *buffer, Py_ssize_t start, unsigned char tag)
{
    unsigned char head[FRAME_ROOM];
    Py_ssize_t body = start + FRAME_ROOM, size = buffer->len - body, head_size;

    head[0] = tag;
    head_size = 1 + varint_into(head + 1, (unsigned long long)size);
    memmove(buffer->data + start + head_size, buffer->data + body, (size_t)size);
    memcpy(buffer->data + start, head, (size_t)head_size);
    buffer->len = start + head_size + size;
}

/* Interned attribute names, made once. */
static PyObject *str_context, *str_name, *str_kind, *str_parent, *str_start_time,
    *str_end_time, *str_attributes, *str_events, *str_links, *str_status, *str_dict,
    *str_dropped, *str_status_code, *str_description, *str_generation, *str_deque, *str_timestamp;

#define MEMO_SIZE 256

/* What one call is handed (see encode_pieces's docstring). */
typedef struct {
    PyObject *direct_types;
    PyObject *names;
    PyObject *key_values;
    PyObject *span_context_type;
    PyObject *bounded_attributes_type;
    PyObject *bounded_list_type;
    PyObject *event_type;
    PyObject *status_type;
    PyObject *kinds;
    PyObject *kind_fields;
    PyObject *status_codes;
    PyObject *status_fields;
    PyObject *name_field;
    PyObject *cached_key_value;
    PyObject *key_value;
    PyObject *trace_state_field;
    PyObject *reads_fields_directly;
    /* per call: the trace state last seen and its encoded field */
    PyObject *last_trace_state;
    PyObject *last_trace_state_field;
    /* per call: the trace id last seen (spans of a trace end together) */
    PyObject *last_trace_id;
    unsigned char last_trace_id_bytes[16];
    /* per call: KeyValue encodings by (key, value) identity, holding all three */
    struct {
        PyObject *key;
        PyObject *value;
        PyObject *encoded;
    } memo[MEMO_SIZE];
} Call;

#define DECLINE 1

/* 0 when ``value`` is an int in [0, 2**64) (set in *out), DECLINE for any
 * other value, -1 on error. None is 0 ("not set"). */
static int
unsigned64(PyObject *value, unsigned long long *out)
{
    if (value == Py_None) {
        *out = 0;
        return 0;
    }
    if (!PyLong_CheckExact(value)) {
        return DECLINE;
    }
    *out = PyLong_AsUnsignedLongLong(value);
    if (*out == (unsigned long long)-1 && PyErr_Occurred()) {
        if (!PyErr_ExceptionMatches(PyExc_OverflowError)) {
            return -1;
        }
        PyErr_Clear();
        return DECLINE;
    }
    return 0;
}

/* 1 when an events/links container holds nothing and dropped nothing, as the
 * Python path reads it: None, an empty tuple or list, or an empty BoundedList
 * (the SDK's) with nothing dropped; 0 otherwise; -1 on error. */
static int
is_plain_empty(PyObject *container, PyObject *bounded_list_type)
{
    PyObject *items, *dropped;
    int empty;

    if (container == Py_None) {
        return 1;
    }
    if (PyTuple_CheckExact(container)) {
        return PyTuple_GET_SIZE(container) == 0;
    }
    if (PyList_CheckExact(container)) {
        return PyList_GET_SIZE(container) == 0;
    }
    if (Py_TYPE(container) != (PyTypeObject *)bounded_list_type) {
        return 0;
    }
    items = PyObject_GetAttr(container, str_deque);
    if (items == NULL) {
        return -1;
    }
    empty = PyObject_Size(items);
    Py_DECREF(items);
    if (empty < 0) {
        return -1;
    }
    if (empty > 0) {
        return 0;
    }
    dropped = PyObject_GetAttr(container, str_dropped);
    if (dropped == NULL) {
        return -1;
    }
    empty = PyLong_CheckExact(dropped) && PyLong_AsLong(dropped) == 0;
    Py_DECREF(dropped);
    if (PyErr_Occurred()) {
        PyErr_Clear();
        return 0;
    }
    return empty;
}

/* A float attribute under a str key, encoded here: floats are measurements (an
 * acknowledgement's duration), a new value each time, so the cache would only
 * miss. 0: not encoded here (the caller's path takes it), 1: done, -1: error. */
static int
put_float_attribute(Buffer *buffer, PyObject *key, PyObject *value, const char *tag)
{
    unsigned char head[1 + 10 + 1 + 10];
    Py_ssize_t key_length, head_length = 0, body_length;
    const char *key_data;
    double number;
    unsigned long long bits;

    if (!PyUnicode_CheckExact(key)) {
        return 0;
    }
    key_data = PyUnicode_AsUTF8AndSize(key, &key_length);
    if (key_data == NULL) { /* e.g. a lone surrogate: the Python path decides */
        PyErr_Clear();
        return 0;
    }
    number = PyFloat_AS_DOUBLE(value);
    memcpy(&bits, &number, sizeof bits);
    /* KeyValue: key (field 1, omitted when empty), value (field 2): an AnyValue
     * of 9 bytes, double_value (field 4, fixed64) */
    body_length = (key_length ? 1 + varint_into(head, (unsigned long long)key_length) + key_length
                              : 0)
                  + 2 + 9;
    head[head_length++] = (unsigned char)tag[0];
    head_length += varint_into(head + head_length, (unsigned long long)body_length);
    if (put(buffer, head, head_length) < 0) {
        return -1;
    }
    if (key_length) {
        head[0] = 0x0a;
        head_length = 1 + varint_into(head + 1, (unsigned long long)key_length);
        if (put(buffer, head, head_length) < 0 || put(buffer, key_data, key_length) < 0) {
            return -1;
        }
    }
    head[0] = 0x12;
    head[1] = 9;
    if (put(buffer, head, 2) < 0 || put_fixed64(buffer, 0x21, bits) < 0) {
        return -1;
    }
    return 1;
}

static int
put_attribute(Buffer *buffer, Call *call, PyObject *key, PyObject *value, const char *tag)
{
    PyTypeObject *type = Py_TYPE(value);
    PyObject *encoded;
    PyObject *cache_key;
    size_t slot;
    int status;

    if (type == &PyFloat_Type) {
        status = put_float_attribute(buffer, key, value, tag);
        if (status != 0) {
            return status < 0 ? -1 : 0;
        }
    }
    if (type == &PyUnicode_Type || type == &PyLong_Type || type == &PyBool_Type
        || type == &PyBytes_Type) {
        /* the same two objects: the same encoding (both are held by the memo) */
        slot = (((uintptr_t)key >> 4) * 31 + ((uintptr_t)value >> 4)) & (MEMO_SIZE - 1);
        if (call->memo[slot].key == key && call->memo[slot].value == value) {
            return put(buffer, tag, 1) < 0 ? -1 : put_bytes(buffer, call->memo[slot].encoded);
        }
        cache_key = PyTuple_Pack(3, key, (PyObject *)type, value);
        if (cache_key == NULL) {
            return -1;
        }
        encoded = PyDict_GetItemWithError(call->key_values, cache_key);
        Py_DECREF(cache_key);
        if (encoded != NULL) {
            if (!PyBytes_CheckExact(encoded) || PyBytes_GET_SIZE(encoded) == 0) {
                goto miss;  /* the Python path's ``or`` would ask again */
            }
            Py_INCREF(key);
            Py_INCREF(value);
            Py_INCREF(encoded);
            Py_XSETREF(call->memo[slot].key, key);
            Py_XSETREF(call->memo[slot].value, value);
            Py_XSETREF(call->memo[slot].encoded, encoded);
            if (put(buffer, tag, 1) < 0) {
                return -1;
            }
            return put_bytes(buffer, encoded);
        }
        if (PyErr_Occurred()) {
            return -1;
        }
    miss:
        encoded = PyObject_CallFunctionObjArgs(call->cached_key_value, key, (PyObject *)type,
                                               value, NULL);
    }
    else {
        encoded = PyObject_CallFunctionObjArgs(call->key_value, key, value, NULL);
    }
    if (encoded == NULL) {
        return -1;
    }
    status = 0;
    if (encoded != Py_None) {
        status = put(buffer, tag, 1) < 0 ? -1 : put_bytes(buffer, encoded);
    }
    Py_DECREF(encoded);
    return status;
}

/* The repeated KeyValue field ``tag`` (one byte) of a dict's items. */
static int
put_attributes(Buffer *buffer, Call *call, PyObject *attributes, const char *tag)
{
    PyObject *key, *value;
    Py_ssize_t position = 0;
    int status = 0;

    Py_INCREF(attributes);  /* the helpers run Python code */
    while (PyDict_Next(attributes, &position, &key, &value)) {
        Py_INCREF(key);
        Py_INCREF(value);
        status = put_attribute(buffer, call, key, value, tag);
        Py_DECREF(key);
        Py_DECREF(value);
        if (status < 0) {
            break;
        }
    }
    Py_DECREF(attributes);
    return status;
}

/* An attributes container as the Python path reads it: *items the dict to
 * iterate (new reference, or NULL for none) and *dropped its dropped count.
 * 0, DECLINE or -1. */
static int
plain_attributes(Call *call, PyObject *attributes, PyObject **items,
                 unsigned long long *dropped)
{
    PyObject *count;

    *items = NULL;
    *dropped = 0;
    if (attributes == Py_None) {
        return 0;
    }
    if (PyDict_CheckExact(attributes)) {
        *items = Py_NewRef(attributes);
        return 0;
    }
    if (Py_TYPE(attributes) != (PyTypeObject *)call->bounded_attributes_type) {
        return DECLINE;
    }
    *items = PyObject_GetAttr(attributes, str_dict);
    if (*items == NULL) {
        return -1;
    }
    count = PyObject_GetAttr(attributes, str_dropped);
    if (count == NULL) {
        Py_CLEAR(*items);
        return -1;
    }
    if (!PyDict_CheckExact(*items) || !PyLong_CheckExact(count)) {
        Py_DECREF(count);
        Py_CLEAR(*items);
        return DECLINE;
    }
    *dropped = PyLong_AsUnsignedLongLong(count);
    Py_DECREF(count);
    if (PyErr_Occurred() || *dropped > 0xFFFFFFFFULL) {
        PyErr_Clear();
        Py_CLEAR(*items);
        return DECLINE;
    }
    return 0;
}

/* Span.events (11) of a list or tuple of the SDK's Event objects, as the
 * Python path's _events_field: 0, DECLINE, or -1. */
static int
put_events(Buffer *buffer, Call *call, PyObject *events)
{
    Py_ssize_t i, count = PySequence_Fast_GET_SIZE(events), start, size;
    PyObject *event, *timestamp = NULL, *name = NULL, *attributes = NULL, *items = NULL;
    unsigned long long when, dropped;
    const char *text;
    int result = 0;

    for (i = 0; i < count && result == 0; i++) {
        event = PySequence_Fast_GET_ITEM(events, i);
        if (Py_TYPE(event) != (PyTypeObject *)call->event_type) {
            return DECLINE;
        }
        Py_INCREF(event);  /* the helpers run Python code */
        timestamp = PyObject_GetAttr(event, str_timestamp);
        name = timestamp == NULL ? NULL : PyObject_GetAttr(event, str_name);
        attributes = name == NULL ? NULL : PyObject_GetAttr(event, str_attributes);
        if (attributes == NULL) {
            result = -1;
        }
        else if ((result = unsigned64(timestamp, &when)) == 0
                 && (name == Py_None || PyUnicode_CheckExact(name))
                 && (result = plain_attributes(call, attributes, &items, &dropped)) == 0) {
            start = open_frame(buffer);
            if (start < 0 || (when && put_fixed64(buffer, 0x09, when) < 0)) {
                result = -1;
            }
            else if (name != Py_None && PyUnicode_GET_LENGTH(name) > 0) {
                text = PyUnicode_AsUTF8AndSize(name, &size);
                if (text == NULL) {  /* not encodable: the Python path raises */
                    PyErr_Clear();
                    result = DECLINE;
                }
                else if (put(buffer, "\x12", 1) < 0 || put_varint(buffer, size) < 0
                         || put(buffer, text, size) < 0) {
                    result = -1;
                }
            }
            if (result == 0 && items != NULL && PyDict_GET_SIZE(items) > 0
                && put_attributes(buffer, call, items, "\x1a") < 0) {
                result = -1;
            }
            if (result == 0 && dropped
                && (put(buffer, "\x20", 1) < 0 || put_varint(buffer, dropped) < 0)) {
                result = -1;
            }
            if (result == 0) {
                close_frame(buffer, start, 0x5a);
            }
        }
        else if (result == 0) {
            result = DECLINE;
        }
        Py_XDECREF(timestamp);
        Py_XDECREF(name);
        Py_XDECREF(attributes);
        Py_CLEAR(items);
        Py_DECREF(event);
    }
    return result;
}

enum {
    F_CONTEXT, F_NAME, F_KIND, F_PARENT, F_START, F_END, F_ATTRIBUTES, F_EVENTS, F_LINKS,
    F_STATUS, F_COUNT
};

/* The framed Span of ``span`` appended to ``buffer``: 0, DECLINE (buffer
 * unchanged in length), or -1 on error. */
static int
encode_span(Buffer *buffer, Call *call, PyObject *span)
{
    static PyObject **names[F_COUNT] = {
        &str_context, &str_name, &str_kind, &str_parent, &str_start_time, &str_end_time,
        &str_attributes, &str_events, &str_links, &str_status};
    PyObject *field[F_COUNT] = {NULL};
    PyObject *direct, *item, *attributes = NULL, *status_code = NULL,
                            *description = NULL, *encoded_name,
                            *kind_field, *status_field, *events = NULL;
    unsigned long long start, end, dropped_count = 0;
    Py_ssize_t begin = buffer->len, i, count;
    int result = DECLINE, remote = 0, found;

    direct = PyDict_GetItemWithError(call->direct_types, (PyObject *)Py_TYPE(span));
    if (direct == NULL) {
        /* a type not met yet: the Python helper decides (and fills direct_types),
         * so the first batch of a run is not left to the Python encoder */
        if (PyErr_Occurred()) {
            return -1;
        }
        direct = PyObject_CallOneArg(call->reads_fields_directly, (PyObject *)Py_TYPE(span));
        if (direct == NULL) {
            return -1;
        }
        Py_DECREF(direct);  /* a bool: only its identity is compared below */
    }
    if (direct != Py_True) {
        return DECLINE;
    }
    for (i = 0; i < F_COUNT; i++) {
        field[i] = PyObject_GetAttr(span, *names[i]);
        if (field[i] == NULL) {
            result = -1;
            goto done;
        }
    }
    /* what this path declines, found before anything is written */
    if (Py_TYPE(field[F_CONTEXT]) != (PyTypeObject *)call->span_context_type
        || PyTuple_GET_SIZE(field[F_CONTEXT]) < 6
        || Py_TYPE(field[F_STATUS]) != (PyTypeObject *)call->status_type) {
        goto done;
    }
    if ((found = is_plain_empty(field[F_LINKS], call->bounded_list_type)) != 1
        || (found = is_plain_empty(field[F_EVENTS], call->bounded_list_type)) < 0) {
        result = found < 0 ? -1 : DECLINE;
        goto done;
    }
    if (!found) {  /* events: encoded here when a plain list or tuple of Event */
        if (!PyList_CheckExact(field[F_EVENTS]) && !PyTuple_CheckExact(field[F_EVENTS])) {
            goto done;
        }
        events = PySequence_Fast(field[F_EVENTS], "events");
        if (events == NULL) {
            result = -1;
            goto done;
        }
    }
    kind_field = NULL;
    count = PyTuple_GET_SIZE(call->kinds);
    for (i = 0; i < count; i++) {
        if (PyTuple_GET_ITEM(call->kinds, i) == field[F_KIND]) {
            kind_field = PyTuple_GET_ITEM(call->kind_fields, i);
            break;
        }
    }
    description = PyObject_GetAttr(field[F_STATUS], str_description);
    status_code = description == NULL ? NULL : PyObject_GetAttr(field[F_STATUS], str_status_code);
    if (status_code == NULL) {
        result = -1;
        goto done;
    }
    status_field = NULL;
    count = PyTuple_GET_SIZE(call->status_codes);
    for (i = 0; i < count; i++) {
        if (PyTuple_GET_ITEM(call->status_codes, i) == status_code) {
            status_field = PyTuple_GET_ITEM(call->status_fields, i);
            break;
        }
    }
    if (kind_field == NULL || status_field == NULL || description != Py_None) {
        goto done;
    }
    if (open_frame(buffer) < 0) {
        result = -1;
        goto done;
    }

    /* trace_id, span_id (fields 1, 2); the trace state (3) */
    item = PyTuple_GET_ITEM(field[F_CONTEXT], 0);
    if (!PyLong_CheckExact(item) || !PyLong_CheckExact(PyTuple_GET_ITEM(field[F_CONTEXT], 1))) {
        goto done;
    }
    if (item != call->last_trace_id) {
        Buffer id = {call->last_trace_id_bytes, 0, 16};
        if (put_big_endian(&id, item, 16) < 0) {
            Py_CLEAR(call->last_trace_id);
            result = -1;
            goto done;
        }
        Py_INCREF(item);
        Py_XSETREF(call->last_trace_id, item);
    }
    if (put(buffer, "\x0a\x10", 2) < 0 || put(buffer, call->last_trace_id_bytes, 16) < 0
        || put(buffer, "\x12\x08", 2) < 0
        || put_id64(buffer, PyTuple_GET_ITEM(field[F_CONTEXT], 1)) < 0) {
        result = -1;
        goto done;
    }
    item = PyTuple_GET_ITEM(field[F_CONTEXT], 4);
    if (item != call->last_trace_state || call->last_trace_state_field == NULL) {
        PyObject *encoded = PyObject_CallOneArg(call->trace_state_field, item);
        if (encoded == NULL) {
            result = -1;
            goto done;
        }
        Py_XSETREF(call->last_trace_state_field, encoded);
        Py_INCREF(item);
        Py_XSETREF(call->last_trace_state, item);
    }
    if (put_bytes(buffer, call->last_trace_state_field) < 0) {
        result = -1;
        goto done;
    }

    /* parent_span_id (4) */
    if (field[F_PARENT] != Py_None) {
        if (Py_TYPE(field[F_PARENT]) != (PyTypeObject *)call->span_context_type
            || PyTuple_GET_SIZE(field[F_PARENT]) < 6
            || !PyLong_CheckExact(PyTuple_GET_ITEM(field[F_PARENT], 1))) {
            goto done;
        }
        remote = PyObject_IsTrue(PyTuple_GET_ITEM(field[F_PARENT], 2));
        if (remote < 0 || put(buffer, "\x22\x08", 2) < 0
            || put_id64(buffer, PyTuple_GET_ITEM(field[F_PARENT], 1)) < 0) {
            result = -1;
            goto done;
        }
    }

    /* name (5), scrubbed and cached by the Python helper */
    if (!PyUnicode_CheckExact(field[F_NAME])) {
        goto done;
    }
    encoded_name = PyDict_GetItemWithError(call->names, field[F_NAME]);
    if (encoded_name != NULL && PyBytes_GET_SIZE(encoded_name) > 0) {
        if (put_bytes(buffer, encoded_name) < 0) {
            result = -1;
            goto done;
        }
    }
    else {
        if (PyErr_Occurred()) {
            result = -1;
            goto done;
        }
        encoded_name = PyObject_CallOneArg(call->name_field, field[F_NAME]);
        if (encoded_name == NULL) {
            result = -1;
            goto done;
        }
        found = put_bytes(buffer, encoded_name);
        Py_DECREF(encoded_name);
        if (found < 0) {
            result = -1;
            goto done;
        }
    }

    /* kind (6) */
    if (put_bytes(buffer, kind_field) < 0) {
        result = -1;
        goto done;
    }

    /* start and end times (7, 8): omitted when unset, as protobuf does */
    if ((result = unsigned64(field[F_START], &start)) != 0
        || (result = unsigned64(field[F_END], &end)) != 0) {
        goto done;
    }
    result = DECLINE;
    if ((start && put_fixed64(buffer, 0x39, start) < 0)
        || (end && put_fixed64(buffer, 0x41, end) < 0)) {
        result = -1;
        goto done;
    }

    /* attributes (9), dropped_attributes_count (10) */
    if ((result = plain_attributes(call, field[F_ATTRIBUTES], &attributes, &dropped_count)) != 0) {
        goto done;
    }
    result = DECLINE;
    if (attributes != NULL && put_attributes(buffer, call, attributes, "\x4a") < 0) {
        result = -1;
        goto done;
    }
    if (dropped_count && (put(buffer, "\x50", 1) < 0 || put_varint(buffer, dropped_count) < 0)) {
        result = -1;
        goto done;
    }

    /* events (11); no links (13): checked above */
    if (events != NULL && (result = put_events(buffer, call, events)) != 0) {
        goto done;
    }
    result = DECLINE;

    /* status (15) */
    if (put_bytes(buffer, status_field) < 0) {
        result = -1;
        goto done;
    }

    /* flags (16), fixed32: SPAN_FLAGS_CONTEXT_HAS_IS_REMOTE_MASK, plus IS_REMOTE */
    if (put(buffer, remote ? "\x85\x01\x00\x03\x00\x00" : "\x85\x01\x00\x01\x00\x00", 6) < 0) {
        result = -1;
        goto done;
    }

    close_frame(buffer, begin, 0x12);  /* ScopeSpans.spans (2) */
    result = 0;

done:
    if (result != 0) {
        buffer->len = begin;
    }
    for (i = 0; i < F_COUNT; i++) {
        Py_XDECREF(field[i]);
    }
    Py_XDECREF(attributes);
    Py_XDECREF(events);
    Py_XDECREF(description);
    Py_XDECREF(status_code);
    return result;
}

#define ARG_COUNT 20

/* The helpers and caches of a Call, from encode_pieces's arguments 3-19 (borrowed
 * references); 0, or -1 with TypeError. */
static int
call_bind(Call *call, PyObject *const *args)
{
    call->direct_types = args[3];
    call->names = args[4];
    call->key_values = args[5];
    call->span_context_type = args[6];
    call->bounded_attributes_type = args[7];
    call->bounded_list_type = args[8];
    call->event_type = args[9];
    call->status_type = args[10];
    call->kinds = args[11];
    call->kind_fields = args[12];
    call->status_codes = args[13];
    call->status_fields = args[14];
    call->name_field = args[15];
    call->cached_key_value = args[16];
    call->key_value = args[17];
    call->trace_state_field = args[18];
    call->reads_fields_directly = args[19];
    call->last_trace_state = NULL;
    call->last_trace_state_field = NULL;
    call->last_trace_id = NULL;
    memset(call->memo, 0, sizeof(call->memo));
    if (!PyDict_CheckExact(call->direct_types) || !PyDict_CheckExact(call->names)
        || !PyDict_CheckExact(call->key_values) || !PyType_Check(call->span_context_type)
        || !PyType_IsSubtype((PyTypeObject *)call->span_context_type, &PyTuple_Type)
        || !PyTuple_CheckExact(call->kinds) || !PyTuple_CheckExact(call->kind_fields)
        || PyTuple_GET_SIZE(call->kinds) != PyTuple_GET_SIZE(call->kind_fields)
        || !PyTuple_CheckExact(call->status_codes) || !PyTuple_CheckExact(call->status_fields)
        || PyTuple_GET_SIZE(call->status_codes) != PyTuple_GET_SIZE(call->status_fields)) {
        PyErr_SetString(PyExc_TypeError, "encode_pieces: unexpected argument types");
        return -1;
    }
    return 0;
}

/* Drop what a Call remembers between spans (its own references). */
static void
call_forget(Call *call)
{
    int i;
    Py_CLEAR(call->last_trace_state);
    Py_CLEAR(call->last_trace_state_field);
    Py_CLEAR(call->last_trace_id);
    for (i = 0; i < MEMO_SIZE; i++) {
        Py_CLEAR(call->memo[i].key);
        Py_CLEAR(call->memo[i].value);
        Py_CLEAR(call->memo[i].encoded);
    }
}

/* ---- spans encoded as they end ---------------------------------------------
 *
 * EncodedSpan is what an EndEncoder puts in the batch processor's queue in place
 * of a span: the span's piece (as encode_pieces makes it), its resource and
 * instrumentation scope (read under the span's own field names, so the Python
 * encoder groups it as it groups a span), and the scrub generation the piece was
 * made under. Not tracked by the cyclic GC: it holds bytes and two long-lived
 * objects that never refer back to it. */

typedef struct {
    PyObject_HEAD
    PyObject *piece;
    PyObject *resource;
    PyObject *scope;
    PyObject *generation;
} EncodedSpan;

static void
encoded_span_dealloc(EncodedSpan *self)
{
    Py_XDECREF(self->piece);
    Py_XDECREF(self->resource);
    Py_XDECREF(self->scope);
    Py_XDECREF(self->generation);
    PyObject_Free(self);
}

static PyMemberDef encoded_span_members[] = {
    {"piece", T_OBJECT, offsetof(EncodedSpan, piece), READONLY,
     "The Span message, framed as ScopeSpans field 2 (bytes)."},
    {"_resource", T_OBJECT, offsetof(EncodedSpan, resource), READONLY, "The span's resource."},
    {"_instrumentation_scope", T_OBJECT, offsetof(EncodedSpan, scope), READONLY,
     "The span's instrumentation scope."},
    {"generation", T_OBJECT, offsetof(EncodedSpan, generation), READONLY,
     "scrub.generation when the piece was made (its secrets were the ones known then)."},
    {NULL},
};

static PyTypeObject EncodedSpan_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "discord_otel._otlp_speedups.EncodedSpan",
    .tp_basicsize = sizeof(EncodedSpan),
    .tp_dealloc = (destructor)encoded_span_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "A span encoded as it ended (made by EndEncoder).",
    .tp_members = encoded_span_members,
};

/* The piece of an EncodedSpan made under ``generation`` (a new reference), else NULL. */
static PyObject *
encoded_piece(PyObject *item, PyObject *generation)
{
    EncodedSpan *encoded = (EncodedSpan *)item;
    int same = encoded->generation == generation
               || PyObject_RichCompareBool(encoded->generation, generation, Py_EQ) == 1;

    PyErr_Clear();
    return same ? Py_NewRef(encoded->piece) : NULL;
}

PyDoc_STRVAR(encode_pieces_doc,
"encode_pieces(spans, scrub_module, generation, direct_types, names, key_values,\n"
"              span_context_type, bounded_attributes_type, bounded_list_type,\n"
"              event_type, status_type, kinds,\n"
"              kind_fields, status_codes, status_fields, name_field,\n"
"              cached_key_value, key_value, trace_state_field,\n"
"              reads_fields_directly) -> list\n"
"\n"
"For each span, its Span message framed as ScopeSpans field 2 (bytes), or None\n"
"where the Python encoder must do it (an unusual span; or every span from the\n"
"first one met after scrub_module.generation stopped equalling generation; or\n"
"an EncodedSpan made under another generation). An EncodedSpan's piece is\n"
"taken as it is. kinds/kind_fields and status_codes/status_fields are parallel\n"
"tuples matched by identity; the dicts and helpers are otlp_encoding's own.");

static PyObject *
encode_pieces(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    Call call;
    Buffer buffer = {NULL, 0, 0};
    PyObject *spans, *pieces = NULL, *piece, *generation, *span;
    Py_ssize_t i, count;
    int status, stale = 0;

    if (nargs != ARG_COUNT) {
        PyErr_Format(PyExc_TypeError, "encode_pieces takes %d arguments (%zd given)", ARG_COUNT,
                     nargs);
        return NULL;
    }
    if (call_bind(&call, args) < 0) {
        return NULL;
    }
    spans = PySequence_Fast(args[0], "spans must be a sequence");
    if (spans == NULL) {
        return NULL;
    }
    count = PySequence_Fast_GET_SIZE(spans);
    pieces = PyList_New(count);
    if (pieces == NULL) {
        goto error;
    }
    for (i = 0; i < count; i++) {
        span = PySequence_Fast_GET_ITEM(spans, i);
        if (Py_TYPE(span) == &EncodedSpan_Type) { /* encoded as it ended */
            piece = encoded_piece(span, args[2]);
            PyList_SET_ITEM(pieces, i, piece == NULL ? Py_NewRef(Py_None) : piece);
            continue;
        }
        if (!stale) {
            generation = PyObject_GetAttr(args[1], str_generation);
            if (generation == NULL) {
                goto error;
            }
            status = PyObject_RichCompareBool(generation, args[2], Py_EQ);
            Py_DECREF(generation);
            if (status < 0) {
                goto error;
            }
            stale = !status;  /* a secret was registered: the Python path takes over */
        }
        piece = NULL;
        if (!stale) {
            buffer.len = 0;
            status = encode_span(&buffer, &call, span);
            if (status < 0) {
                goto error;
            }
            if (status == 0) {
                piece = PyBytes_FromStringAndSize((const char *)buffer.data, buffer.len);
                if (piece == NULL) {
                    goto error;
                }
            }
        }
        if (piece == NULL) {
            piece = Py_NewRef(Py_None);
        }
        PyList_SET_ITEM(pieces, i, piece);
    }
    Py_DECREF(spans);
    PyMem_Free(buffer.data);
    call_forget(&call);
    return pieces;

error:
    Py_XDECREF(spans);
    Py_XDECREF(pieces);
    PyMem_Free(buffer.data);
    call_forget(&call);
    return NULL;
}

/* EndEncoder(emit, scrub_module, encoding_module, direct_types, ... ,
 * reads_fields_directly): called with a span as it ends (in place of the batch
 * processor's emit), it encodes the span at once -- while what it reads is still
 * in this core's cache, and so that the span itself is freed when the
 * instrumentation lets go of it rather than when the batch is exported -- and
 * emits an EncodedSpan; a span it declines (or any error) is emitted as it is.
 *
 * The piece is made under encoding_module._scrubbed_generation, brought up to
 * scrub_module.generation first (encoding_module._forget_scrubbed()); what it
 * remembers between spans (the memo, the last trace id and trace state) is
 * dropped whenever that generation moves. ``enabled`` (writable) false: every
 * span emitted as it is. A call made while another is under way (the encoder's
 * helpers run Python code) emits the span as it is too. */

typedef struct {
    PyObject_HEAD
    vectorcallfunc vectorcall;
    PyObject *args[ARG_COUNT]; /* encode_pieces's, 3 to 19 used (owned references) */
    PyObject *emit;
    PyObject *scrub;
    PyObject *encoding;
    PyObject *generation;      /* what call's memo was made under, or NULL */
    Call call;
    Buffer buffer;
    char enabled;
    char busy;
} EndEncoder;

static PyObject *str_scrubbed_generation, *str_forget_scrubbed, *str_resource, *str_scope;

/* The generation pieces are made under now, brought up to date (a new
 * reference), or NULL with an error. */
static PyObject *
end_encoder_generation(EndEncoder *self)
{
    PyObject *current, *made, *done;
    int same;

    current = PyObject_GetAttr(self->scrub, str_generation);
    made = current == NULL ? NULL : PyObject_GetAttr(self->encoding, str_scrubbed_generation);
    if (made == NULL) {
        Py_XDECREF(current);
        return NULL;
    }
    same = current == made || PyObject_RichCompareBool(current, made, Py_EQ) == 1;
    Py_DECREF(current);
    if (!same) {
        Py_DECREF(made);
        done = PyObject_CallMethodNoArgs(self->encoding, str_forget_scrubbed);
        if (done == NULL) {
            return NULL;
        }
        Py_DECREF(done);
        made = PyObject_GetAttr(self->encoding, str_scrubbed_generation);
        if (made == NULL) {
            return NULL;
        }
    }
    if (self->generation != made) {
        call_forget(&self->call);
        Py_XSETREF(self->generation, Py_NewRef(made));
    }
    return made;
}

static PyObject *
end_encoder_encode(EndEncoder *self, PyObject *span)
{
    /* the span's EncodedSpan, Py_None where it is declined, or NULL with an error */
    PyObject *generation = end_encoder_generation(self), *piece;
    EncodedSpan *encoded;
    int status;

    if (generation == NULL) {
        return NULL;
    }
    self->buffer.len = 0;
    status = encode_span(&self->buffer, &self->call, span);
    if (status != 0) {
        Py_DECREF(generation);
        return status < 0 ? NULL : Py_NewRef(Py_None);
    }
    piece = PyBytes_FromStringAndSize((const char *)self->buffer.data, self->buffer.len);
    encoded = piece == NULL ? NULL : PyObject_New(EncodedSpan, &EncodedSpan_Type);
    if (encoded == NULL) {
        Py_XDECREF(piece);
        Py_DECREF(generation);
        return NULL;
    }
    encoded->piece = piece;
    encoded->generation = generation;
    encoded->resource = PyObject_GetAttr(span, str_resource);
    encoded->scope = encoded->resource == NULL ? NULL : PyObject_GetAttr(span, str_scope);
    if (encoded->scope == NULL) {
        Py_DECREF(encoded);
        return NULL;
    }
    return (PyObject *)encoded;
}

static PyObject *
end_encoder_call(EndEncoder *self, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    PyObject *span, *item = NULL, *result;

    if (PyVectorcall_NARGS(nargsf) != 1 || kwnames != NULL) {
        PyErr_SetString(PyExc_TypeError, "EndEncoder takes one span");
        return NULL;
    }
    span = args[0];
    if (self->enabled && !self->busy) {
        self->busy = 1;
        item = end_encoder_encode(self, span);
        self->busy = 0;
        if (item == NULL) { /* the exporter's encoder takes it, and reports what fails */
            PyErr_Clear();
        }
        else if (item == Py_None) {
            Py_CLEAR(item);
        }
    }
    result = PyObject_CallOneArg(self->emit, item == NULL ? span : item);
    Py_XDECREF(item);
    return result;
}

static PyObject *
end_encoder_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    EndEncoder *self;
    Py_ssize_t i;

    if (kwargs != NULL && PyDict_GET_SIZE(kwargs) > 0) {
        PyErr_SetString(PyExc_TypeError, "EndEncoder takes no keyword arguments");
        return NULL;
    }
    if (PyTuple_GET_SIZE(args) != ARG_COUNT) {
        PyErr_Format(PyExc_TypeError,
                     "EndEncoder(emit, scrub_module, encoding_module, ...) takes %d arguments",
                     ARG_COUNT);
        return NULL;
    }
    self = (EndEncoder *)type->tp_alloc(type, 0);
    if (self == NULL) {
        return NULL;
    }
    for (i = 3; i < ARG_COUNT; i++) {
        self->args[i] = Py_NewRef(PyTuple_GET_ITEM(args, i));
    }
    self->emit = Py_NewRef(PyTuple_GET_ITEM(args, 0));
    self->scrub = Py_NewRef(PyTuple_GET_ITEM(args, 1));
    self->encoding = Py_NewRef(PyTuple_GET_ITEM(args, 2));
    self->vectorcall = (vectorcallfunc)end_encoder_call;
    self->enabled = 1;
    if (call_bind(&self->call, self->args) < 0) {
        Py_DECREF(self);
        return NULL;
    }
    return (PyObject *)self;
}

static int
end_encoder_traverse(EndEncoder *self, visitproc visit, void *arg)
{
    Py_ssize_t i;
    for (i = 3; i < ARG_COUNT; i++) {
        Py_VISIT(self->args[i]);
    }
    Py_VISIT(self->emit);
    Py_VISIT(self->scrub);
    Py_VISIT(self->encoding);
    return 0;
}

static int
end_encoder_clear(EndEncoder *self)
{
    Py_ssize_t i;
    call_forget(&self->call);
    Py_CLEAR(self->generation);
    for (i = 3; i < ARG_COUNT; i++) {
        Py_CLEAR(self->args[i]);
    }
    Py_CLEAR(self->emit);
    Py_CLEAR(self->scrub);
    Py_CLEAR(self->encoding);
    self->enabled = 0; /* its helpers are gone */
    return 0;
}

static void
end_encoder_dealloc(EndEncoder *self)
{
    PyObject_GC_UnTrack(self);
    end_encoder_clear(self);
    PyMem_Free(self->buffer.data);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyMemberDef end_encoder_members[] = {
    {"enabled", T_BOOL, offsetof(EndEncoder, enabled), 0,
     "False: every span is emitted as it is."},
    {NULL},
};

static PyTypeObject EndEncoder_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "discord_otel._otlp_speedups.EndEncoder",
    .tp_basicsize = sizeof(EndEncoder),
    .tp_dealloc = (destructor)end_encoder_dealloc,
    .tp_vectorcall_offset = offsetof(EndEncoder, vectorcall),
    .tp_call = PyVectorcall_Call,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_HAVE_VECTORCALL,
    .tp_doc = "Encodes each span as it ends, then emits it (see the module source).",
    .tp_traverse = (traverseproc)end_encoder_traverse,
    .tp_clear = (inquiry)end_encoder_clear,
    .tp_members = end_encoder_members,
    .tp_new = end_encoder_new,
};

/* QueueEmit(batch, queue, max_queue_size, max_export_batch_size): the SDK
 * BatchProcessor's emit for a span queue, without the getpid() system call it
 * makes per item to tell a forked child (~1-2 us on a virtual machine once its
 * side effects are counted, three or four times per traced command). A fork
 * since the last call (pthread_atfork) sends the next item through
 * batch.emit, which does its own checks; so does every item that would fill
 * the queue, or arrive after shutdown. An item that brings the queue to a
 * batch wakes the export thread as emit does. (pipeline.queue_emitter checks
 * the batch is the SDK's before making one.) */

typedef struct {
    PyObject_HEAD
    vectorcallfunc vectorcall;
    PyObject *batch;
    PyObject *queue;
    PyObject *appendleft;     /* queue.appendleft */
    Py_ssize_t max_queue_size;
    Py_ssize_t max_export_batch_size;
    int forks_seen;
} QueueEmit;

static volatile int forks; /* forks of this process (counted in the child) */
static PyObject *str_emit, *str_shutdown, *str_worker_awaken, *str_is_set, *str_set;

#ifdef HAVE_FORK
static void
count_fork_in_child(void)
{
    forks++; /* only a count: no Python object is touched in the handler */
}
#endif

static PyObject *
queue_emit_slow(QueueEmit *self, PyObject *item)
{
    self->forks_seen = forks;
    return PyObject_CallMethodOneArg(self->batch, str_emit, item);
}

static PyObject *
queue_emit_call(QueueEmit *self, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    PyObject *item, *shutdown, *done, *awaken, *is_set;
    Py_ssize_t length;
    int stopped;

    if (PyVectorcall_NARGS(nargsf) != 1 || kwnames != NULL) {
        PyErr_SetString(PyExc_TypeError, "QueueEmit takes one item");
        return NULL;
    }
    item = args[0];
    if (self->forks_seen != forks) {
        return queue_emit_slow(self, item);
    }
    shutdown = PyObject_GetAttr(self->batch, str_shutdown);
    if (shutdown == NULL) {
        return NULL;
    }
    stopped = shutdown != Py_False;
    Py_DECREF(shutdown);
    length = stopped ? -1 : PyObject_Size(self->queue);
    if (stopped || length < 0 || length >= self->max_queue_size) {
        PyErr_Clear();
        return queue_emit_slow(self, item);
    }
    done = PyObject_CallOneArg(self->appendleft, item);
    if (done == NULL) {
        return NULL;
    }
    Py_DECREF(done);
    if (length + 1 >= self->max_export_batch_size) { /* a batch is ready: wake the exporter */
        awaken = PyObject_GetAttr(self->batch, str_worker_awaken);
        is_set = awaken == NULL ? NULL : PyObject_CallMethodNoArgs(awaken, str_is_set);
        done = is_set == NULL              ? NULL
               : PyObject_IsTrue(is_set) ? Py_NewRef(Py_None)
                                         : PyObject_CallMethodNoArgs(awaken, str_set);
        Py_XDECREF(is_set);
        Py_XDECREF(awaken);
        if (done == NULL) {
            return NULL;
        }
        Py_DECREF(done);
    }
    Py_RETURN_NONE;
}

static PyObject *
queue_emit_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    QueueEmit *self;
    PyObject *batch, *queue;
    Py_ssize_t max_queue_size, max_export_batch_size;

    if (kwargs != NULL && PyDict_GET_SIZE(kwargs) > 0) {
        PyErr_SetString(PyExc_TypeError, "QueueEmit takes no keyword arguments");
        return NULL;
    }
    if (!PyArg_ParseTuple(args, "OOnn:QueueEmit", &batch, &queue, &max_queue_size,
                          &max_export_batch_size)) {
        return NULL;
    }
    self = (QueueEmit *)type->tp_alloc(type, 0);
    if (self == NULL) {
        return NULL;
    }
    self->vectorcall = (vectorcallfunc)queue_emit_call;
    self->batch = Py_NewRef(batch);
    self->queue = Py_NewRef(queue);
    self->max_queue_size = max_queue_size;
    self->max_export_batch_size = max_export_batch_size;
    self->forks_seen = forks;
    self->appendleft = PyObject_GetAttrString(queue, "appendleft");
    if (self->appendleft == NULL) {
        Py_DECREF(self);
        return NULL;
    }
    return (PyObject *)self;
}

static int
queue_emit_traverse(QueueEmit *self, visitproc visit, void *arg)
{
    Py_VISIT(self->batch);
    Py_VISIT(self->queue);
    Py_VISIT(self->appendleft);
    return 0;
}

static int
queue_emit_clear(QueueEmit *self)
{
    Py_CLEAR(self->batch);
    Py_CLEAR(self->queue);
    Py_CLEAR(self->appendleft);
    return 0;
}

static void
queue_emit_dealloc(QueueEmit *self)
{
    PyObject_GC_UnTrack(self);
    queue_emit_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyTypeObject QueueEmit_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "discord_otel._otlp_speedups.QueueEmit",
    .tp_basicsize = sizeof(QueueEmit),
    .tp_dealloc = (destructor)queue_emit_dealloc,
    .tp_vectorcall_offset = offsetof(QueueEmit, vectorcall),
    .tp_call = PyVectorcall_Call,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_HAVE_VECTORCALL,
    .tp_doc = "A batch processor's emit without a system call per item (see the module source).",
    .tp_traverse = (traverseproc)queue_emit_traverse,
    .tp_clear = (inquiry)queue_emit_clear,
    .tp_new = queue_emit_new,
};

static PyMethodDef methods[] = {
    {"encode_pieces", (PyCFunction)(void (*)(void))encode_pieces, METH_FASTCALL,
     encode_pieces_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_definition = {
    PyModuleDef_HEAD_INIT,
    "discord_otel._otlp_speedups",
    "The compiled half of discord_otel.otlp_encoding (optional: the Python code "
    "does the same where this is not built).",
    -1,
    methods,
};

#define INTERN(variable, text)                                  \
    if ((variable = PyUnicode_InternFromString(text)) == NULL) { \
        return NULL;                                            \
    }

PyMODINIT_FUNC
PyInit__otlp_speedups(void)
{
    PyObject *module;

    INTERN(str_context, "_context");
    INTERN(str_name, "_name");
    INTERN(str_kind, "_kind");
    INTERN(str_parent, "_parent");
    INTERN(str_start_time, "_start_time");
    INTERN(str_end_time, "_end_time");
    INTERN(str_attributes, "_attributes");
    INTERN(str_events, "_events");
    INTERN(str_links, "_links");
    INTERN(str_status, "_status");
    INTERN(str_dict, "_dict");
    INTERN(str_dropped, "dropped");
    INTERN(str_status_code, "_status_code");
    INTERN(str_description, "_description");
    INTERN(str_generation, "generation");
    INTERN(str_deque, "_dq");
    INTERN(str_timestamp, "_timestamp");
    INTERN(str_scrubbed_generation, "_scrubbed_generation");
    INTERN(str_forget_scrubbed, "_forget_scrubbed");
    INTERN(str_resource, "_resource");
    INTERN(str_scope, "_instrumentation_scope");
    INTERN(str_emit, "emit");
    INTERN(str_shutdown, "_shutdown");
    INTERN(str_worker_awaken, "_worker_awaken");
    INTERN(str_is_set, "is_set");
    INTERN(str_set, "set");
    if (PyType_Ready(&EncodedSpan_Type) < 0 || PyType_Ready(&EndEncoder_Type) < 0
        || PyType_Ready(&QueueEmit_Type) < 0) {
        return NULL;
    }
#ifdef HAVE_FORK
    if (pthread_atfork(NULL, NULL, count_fork_in_child) != 0) {
        PyErr_SetString(PyExc_ImportError, "pthread_atfork failed");
        return NULL;
    }
#endif
    module = PyModule_Create(&module_definition);
    if (module == NULL) {
        return NULL;
    }
    if (PyModule_AddObjectRef(module, "EncodedSpan", (PyObject *)&EncodedSpan_Type) < 0
        || PyModule_AddObjectRef(module, "EndEncoder", (PyObject *)&EndEncoder_Type) < 0
        || PyModule_AddObjectRef(module, "QueueEmit", (PyObject *)&QueueEmit_Type) < 0) {
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
