/*
 * The compiled half of the per-event path (discord_otel.instrumentation.gateway
 * and .listeners): the wrappers of traced and untraced gateway parsers, and the
 * runner of listener runs (see "listener runs" below).
 *
 * Per event, the Python wrapper counts the event, decides the root's sampling
 * on a trace id drawn now and, for a dropped event, makes the stand-in span
 * (SampledOutGatewaySpan) current while discord.py's parser runs; a sampled
 * event gets its GatewaySpan instead, ended when the parse returns. At low
 * sampling rates a dropped event is nearly every event, on the hottest path of
 * the bot; GatewayParser does the same without an interpreter frame, writing the
 * spans' slots directly. The sampler's rule comes from the Python callable it
 * is given (read again whenever the tracer's span processors change), and
 * tests run both parsers side by side. See gateway._traced_parser.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>
#ifdef HAVE_FORK
#include <pthread.h>
#endif

static PyObject *str_span_processors;
static PyObject *str_channel;
static PyObject *str_channel_id;
static PyObject *str_guild_id;
static PyObject *str_id;
static PyObject *str_data;
static PyObject *str_finish;
static PyObject *one;

/* The spans' slots the wrapper writes, by offset (see slot_offset): the first
 * STANDIN_SLOTS for a stand-in (its other fields are class-level defaults),
 * all of them for a sampled event's GatewaySpan. */
enum {
    SLOT_TRACER, SLOT_NAME, SLOT_ATTRIBUTES, SLOT_TRACE_ID, SLOT_GUILD_ID, SLOT_CHANNEL_ID,
    STANDIN_SLOTS,
    SLOT_START_NS = STANDIN_SLOTS, SLOT_REAL, SLOT_END_NS, SLOT_PARENT, SLOT_ERROR, SLOT_DATA,
    SLOTS
};
static const char *slot_names[SLOTS] = {
    "tracer", "name", "attributes", "trace_id", "guild_id", "channel_id",
    "start_ns", "real", "end_ns", "parent", "error", "data",
};

typedef struct {
    PyObject_HEAD
    vectorcallfunc vectorcall;
    PyObject *func;           /* discord.py's parser */
    PyObject *cell;           /* the event's counter: a list holding one int */
    PyObject *rule_for;       /* rule_for(): the root rule now, None when roots are not decided here */
    PyObject *span_processor; /* the tracer's span processor, or None */
    PyObject *current;        /* spans.CURRENT */
    PyTypeObject *span_type;  /* GatewaySpan: a sampled (or undecided) event's */
    PyTypeObject *standin;    /* SampledOutGatewaySpan: a dropped event's */
    PyObject *time_ns;        /* time.time_ns */
    PyObject *tracer;
    PyObject *name;
    PyObject *attributes;
    int keep_data;
    /* The root rule, kept while the span processors are the same object. */
    PyObject *processors_seen; /* NULL: never read */
    PyObject *draw;            /* NULL: no rule (every event is traced) */
    unsigned long long bound;
    Py_ssize_t span_offsets[SLOTS];
    Py_ssize_t standin_offsets[STANDIN_SLOTS];
} GatewayParser;

static PyObject *parser_call(GatewayParser *self, PyObject *const *args, size_t nargsf,
                             PyObject *kwnames);

static int
slot_offset(PyTypeObject *type, const char *name, Py_ssize_t *offset)
{
    /* The member descriptor the type's attribute lookup finds for ``name``: a
     * plain object slot, not shadowed by a class attribute. */
    PyObject *key = PyUnicode_FromString(name);
    PyObject *found;
    PyMemberDef *member;

    if (key == NULL) {
        return -1;
    }
    found = _PyType_Lookup(type, key);
    Py_DECREF(key);
    if (found == NULL || !Py_IS_TYPE(found, &PyMemberDescr_Type)) {
        PyErr_Format(PyExc_TypeError, "%s.%s is not a slot", type->tp_name, name);
        return -1;
    }
    member = ((PyMemberDescrObject *)found)->d_member;
    if (member->type != T_OBJECT_EX || (member->flags & READONLY)) {
        PyErr_Format(PyExc_TypeError, "%s.%s is not a writable object slot", type->tp_name, name);
        return -1;
    }
    *offset = member->offset;
    return 0;
}

static inline void
set_slot(PyObject *object, Py_ssize_t offset, PyObject *value)
{
    /* The slot is empty (a new object): no old value to release. */
    Py_INCREF(value);
    *(PyObject **)((char *)object + offset) = value;
}

static inline PyObject *
get_slot(PyObject *object, Py_ssize_t offset)
{
    /* borrowed; NULL when the slot was deleted */
    return *(PyObject **)((char *)object + offset);
}

static inline void
replace_slot(PyObject *object, Py_ssize_t offset, PyObject *value)
{
    /* steals ``value``; releases what the slot held */
    Py_XSETREF(*(PyObject **)((char *)object + offset), value);
}

static PyObject *
parser_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    static char *keywords[] = {
        "func", "cell", "rule_for", "span_processor", "current", "span_type", "standin",
        "time_ns", "tracer", "name", "attributes", "keep_data", NULL,
    };
    PyObject *func, *cell, *rule_for, *span_processor, *current, *span_type, *standin;
    PyObject *time_ns, *tracer, *name, *attributes;
    int keep_data;
    GatewayParser *self;
    int i;

    if (!PyArg_ParseTupleAndKeywords(
            args, kwargs, "OO!OOOO!O!OOOOp:GatewayParser", keywords, &func, &PyList_Type,
            &cell, &rule_for, &span_processor, &current, &PyType_Type, &span_type, &PyType_Type,
            &standin, &time_ns, &tracer, &name, &attributes, &keep_data)) {
        return NULL;
    }
    if (PyList_GET_SIZE(cell) != 1) {
        PyErr_SetString(PyExc_ValueError, "cell must be a list of one int");
        return NULL;
    }
    self = (GatewayParser *)type->tp_alloc(type, 0);
    if (self == NULL) {
        return NULL;
    }
    for (i = 0; i < SLOTS; i++) {
        if (slot_offset((PyTypeObject *)span_type, slot_names[i], &self->span_offsets[i]) < 0
            || (i < STANDIN_SLOTS
                && slot_offset((PyTypeObject *)standin, slot_names[i], &self->standin_offsets[i])
                       < 0)) {
            Py_DECREF(self);
            return NULL;
        }
    }
    self->vectorcall = (vectorcallfunc)parser_call;
    Py_INCREF(func);
    self->func = func;
    Py_INCREF(cell);
    self->cell = cell;
    Py_INCREF(rule_for);
    self->rule_for = rule_for;
    Py_INCREF(span_processor);
    self->span_processor = span_processor;
    Py_INCREF(current);
    self->current = current;
    Py_INCREF(span_type);
    self->span_type = (PyTypeObject *)span_type;
    Py_INCREF(standin);
    self->standin = (PyTypeObject *)standin;
    Py_INCREF(time_ns);
    self->time_ns = time_ns;
    Py_INCREF(tracer);
    self->tracer = tracer;
    Py_INCREF(name);
    self->name = name;
    Py_INCREF(attributes);
    self->attributes = attributes;
    self->keep_data = keep_data;
    self->processors_seen = NULL;
    self->draw = NULL;
    self->bound = 0;
    return (PyObject *)self;
}

static int
parser_traverse(GatewayParser *self, visitproc visit, void *arg)
{
    Py_VISIT(self->func);
    Py_VISIT(self->cell);
    Py_VISIT(self->rule_for);
    Py_VISIT(self->span_processor);
    Py_VISIT(self->current);
    Py_VISIT(self->span_type);
    Py_VISIT(self->standin);
    Py_VISIT(self->time_ns);
    Py_VISIT(self->tracer);
    Py_VISIT(self->name);
    Py_VISIT(self->attributes);
    Py_VISIT(self->processors_seen);
    Py_VISIT(self->draw);
    return 0;
}

static int
parser_clear(GatewayParser *self)
{
    Py_CLEAR(self->func);
    Py_CLEAR(self->cell);
    Py_CLEAR(self->rule_for);
    Py_CLEAR(self->span_processor);
    Py_CLEAR(self->current);
    Py_CLEAR(self->span_type);
    Py_CLEAR(self->standin);
    Py_CLEAR(self->time_ns);
    Py_CLEAR(self->tracer);
    Py_CLEAR(self->name);
    Py_CLEAR(self->attributes);
    Py_CLEAR(self->processors_seen);
    Py_CLEAR(self->draw);
    return 0;
}

static void
parser_dealloc(GatewayParser *self)
{
    PyObject_GC_UnTrack(self);
    parser_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* The root rule for now: from the cache while the span processors are the same
 * object, else asked of rule_for(). 0 and self->draw NULL: no rule. */
static int
refresh_rule(GatewayParser *self)
{
    PyObject *processors = NULL;
    PyObject *rule;

    if (self->span_processor != Py_None) {
        processors = PyObject_GetAttr(self->span_processor, str_span_processors);
        if (processors == NULL) {
            PyErr_Clear();
        }
        else if (processors == self->processors_seen) {
            Py_DECREF(processors);
            return 0;
        }
    }
    rule = PyObject_CallNoArgs(self->rule_for);
    if (rule == NULL) {
        Py_XDECREF(processors);
        return -1;
    }
    Py_CLEAR(self->draw);
    if (rule != Py_None) {
        unsigned long long bound;
        if (!PyTuple_Check(rule) || PyTuple_GET_SIZE(rule) != 2) {
            PyErr_SetString(PyExc_TypeError, "a root rule is a (draw, bound) tuple");
            goto failed;
        }
        bound = PyLong_AsUnsignedLongLong(PyTuple_GET_ITEM(rule, 1));
        if (bound == (unsigned long long)-1 && PyErr_Occurred()) {
            goto failed;
        }
        self->bound = bound;
        self->draw = PyTuple_GET_ITEM(rule, 0);
        Py_INCREF(self->draw);
    }
    Py_DECREF(rule);
    /* With no span processor to watch (or none readable) the rule is asked
     * again next time, as the Python wrapper does. */
    Py_XSETREF(self->processors_seen, processors);
    return 0;
failed:
    Py_DECREF(rule);
    Py_XDECREF(processors);
    return -1;
}

static PyObject *
channel_id_of(PyObject *data)
{
    /* data.get("channel_id") or (data.get("channel") or {}).get("id") for a
     * channel object; a new reference (None when there is none). */
    PyObject *found = PyDict_GetItemWithError(data, str_channel_id);
    PyObject *channel;
    int truth;

    if (found == NULL && PyErr_Occurred()) {
        return NULL;
    }
    if (found != NULL) {
        truth = PyObject_IsTrue(found);
        if (truth < 0) {
            return NULL;
        }
        if (truth) {
            Py_INCREF(found);
            return found;
        }
    }
    channel = PyDict_GetItemWithError(data, str_channel);
    if (channel == NULL && PyErr_Occurred()) {
        return NULL;
    }
    if (channel != NULL && PyDict_CheckExact(channel)) {
        found = PyDict_GetItemWithError(channel, str_id);
        if (found == NULL && PyErr_Occurred()) {
            return NULL;
        }
        if (found != NULL) {
            Py_INCREF(found);
            return found;
        }
    }
    Py_RETURN_NONE;
}

/* The event's span (a new reference), or NULL with an error: a stand-in (the
 * slots it has), or for a ``sampled`` event its GatewaySpan, which also gets its
 * start time and every other field GatewaySpan.__init__ sets. */
static PyObject *
new_span(GatewayParser *self, PyObject *data, PyObject *trace_id, int sampled)
{
    PyTypeObject *type = sampled ? self->span_type : self->standin;
    const Py_ssize_t *offsets = sampled ? self->span_offsets : self->standin_offsets;
    PyObject *span, *start_ns = NULL, *guild_id, *channel_id;
    int is_dict = PyDict_CheckExact(data);

    if (sampled && (start_ns = PyObject_CallNoArgs(self->time_ns)) == NULL) {
        return NULL;
    }
    span = type->tp_alloc(type, 0);
    if (span == NULL) {
        Py_XDECREF(start_ns);
        return NULL;
    }
    set_slot(span, offsets[SLOT_TRACER], self->tracer);
    set_slot(span, offsets[SLOT_NAME], self->name);
    set_slot(span, offsets[SLOT_ATTRIBUTES], self->attributes);
    set_slot(span, offsets[SLOT_TRACE_ID], trace_id);
    if (sampled) {
        set_slot(span, offsets[SLOT_START_NS], start_ns);
        Py_DECREF(start_ns);
        set_slot(span, offsets[SLOT_REAL], Py_None);
        set_slot(span, offsets[SLOT_END_NS], Py_None);
        set_slot(span, offsets[SLOT_PARENT], Py_None);
        set_slot(span, offsets[SLOT_ERROR], Py_None);
        set_slot(span, offsets[SLOT_DATA], is_dict && self->keep_data ? data : Py_None);
    }
    if (is_dict) {
        guild_id = PyDict_GetItemWithError(data, str_guild_id);
        if (guild_id == NULL && PyErr_Occurred()) {
            goto failed;
        }
        set_slot(span, offsets[SLOT_GUILD_ID], guild_id ? guild_id : Py_None);
        channel_id = channel_id_of(data);
        if (channel_id == NULL) {
            goto failed;
        }
        set_slot(span, offsets[SLOT_CHANNEL_ID], channel_id);
        Py_DECREF(channel_id);
        /* a stand-in's data is a class-level default: set only when kept */
        if (!sampled && self->keep_data && PyObject_SetAttr(span, str_data, data) < 0) {
            goto failed;
        }
    }
    else {
        set_slot(span, offsets[SLOT_GUILD_ID], Py_None);
        set_slot(span, offsets[SLOT_CHANNEL_ID], Py_None);
    }
    return span;
failed:
    Py_DECREF(span);
    return NULL;
}

static int
count_event(PyObject *cell)
{
    PyObject *count;

    if (PyList_GET_SIZE(cell) < 1) {
        PyErr_SetString(PyExc_IndexError, "the event's counter is an empty list");
        return -1;
    }
    count = PyNumber_Add(PyList_GET_ITEM(cell, 0), one);
    if (count == NULL) {
        return -1;
    }
    return PyList_SetItem(cell, 0, count);
}

/* func(data) in a copy of the current context with ``span`` set in it, as
 * contextvars.copy_context().run() would run it -- the tasks discord.py starts
 * during the parse copy that context, and the connection task's own is left as
 * it was, where a set and a reset of the variable in it would each build a new
 * mapping -- then the span's end for a sampled event (as the Python parser does:
 * a span never needed stays a timestamp). An error in that epilogue replaces
 * the parser's outcome, as in a Python ``finally``. */
static PyObject *
parse_under(GatewayParser *self, PyObject *const *args, PyObject *span, int sampled)
{
    PyObject *context, *token, *result, *real, *end;
    PyObject *type, *value, *traceback;

    context = PyContext_CopyCurrent();
    if (context == NULL) {
        return NULL;
    }
    if (PyContext_Enter(context) < 0) {
        Py_DECREF(context);
        return NULL;
    }
    token = PyContextVar_Set(self->current, span);
    if (token == NULL) {
        PyErr_Fetch(&type, &value, &traceback);
        (void)PyContext_Exit(context);
        Py_DECREF(context);
        PyErr_Restore(type, value, traceback);
        return NULL;
    }
    Py_DECREF(token); /* never reset: the whole context is left behind */
    result = PyObject_Vectorcall(self->func, args, 1, NULL);
    PyErr_Fetch(&type, &value, &traceback);
    if (PyContext_Exit(context) < 0) {
        Py_DECREF(context);
        goto epilogue_failed;
    }
    Py_DECREF(context);
    if (sampled) {
        real = get_slot(span, self->span_offsets[SLOT_REAL]);
        if (real == NULL || real == Py_None) {
            end = PyObject_CallNoArgs(self->time_ns);
            if (end == NULL) {
                goto epilogue_failed;
            }
            replace_slot(span, self->span_offsets[SLOT_END_NS], end);
        }
        else {
            end = PyObject_CallMethodNoArgs(span, str_finish);
            if (end == NULL) {
                goto epilogue_failed;
            }
            Py_DECREF(end);
        }
    }
    PyErr_Restore(type, value, traceback);
    return result;
epilogue_failed:
    Py_XDECREF(result);
    Py_XDECREF(type);
    Py_XDECREF(value);
    Py_XDECREF(traceback);
    return NULL;
}

static PyObject *
parser_call(GatewayParser *self, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    PyObject *data, *draw, *trace_id, *span, *result;
    int sampled;

    if (PyVectorcall_NARGS(nargsf) != 1 || kwnames != NULL) {
        PyErr_SetString(PyExc_TypeError, "a gateway parser takes one argument: the payload");
        return NULL;
    }
    data = args[0];
    if (count_event(self->cell) < 0) {
        return NULL;
    }
    if (refresh_rule(self) < 0) {
        return NULL;
    }
    if (self->draw == NULL) {  /* no rule: every event is traced */
        Py_INCREF(Py_None);
        trace_id = Py_None;
        sampled = 1;
    }
    else {
        draw = self->draw;
        Py_INCREF(draw); /* held while it runs, whatever it does */
        trace_id = PyObject_CallNoArgs(draw);
        Py_DECREF(draw);
        if (trace_id == NULL) {
            return NULL;
        }
        if (!PyLong_Check(trace_id)) {
            Py_DECREF(trace_id);
            PyErr_SetString(PyExc_TypeError, "a trace id is an int");
            return NULL;
        }
        sampled = PyLong_AsUnsignedLongLongMask(trace_id) < self->bound;
    }
    span = new_span(self, data, trace_id, sampled);
    Py_DECREF(trace_id);
    if (span == NULL) {
        return NULL;
    }
    result = parse_under(self, args, span, sampled);
    Py_DECREF(span);
    return result;
}

static PyTypeObject GatewayParser_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "discord_otel._gateway_speedups.GatewayParser",
    .tp_doc = PyDoc_STR(
        "GatewayParser(func, cell, rule_for, span_processor, current, span_type, standin, "
        "time_ns, tracer, name, attributes, keep_data)\n\n"
        "A traced gateway parser: counts the event in cell[0], decides the root's sampling "
        "on a trace id drawn by the rule rule_for() returns, and runs func(data) under a "
        "new span in current: a span_type one (sampled, or no rule), ended when func "
        "returns, or a standin (dropped)."),
    .tp_basicsize = sizeof(GatewayParser),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_HAVE_VECTORCALL,
    .tp_new = parser_new,
    .tp_dealloc = (destructor)parser_dealloc,
    .tp_traverse = (traverseproc)parser_traverse,
    .tp_clear = (inquiry)parser_clear,
    .tp_vectorcall_offset = offsetof(GatewayParser, vectorcall),
    .tp_call = PyVectorcall_Call,
};

/* ---- counting parsers ---------------------------------------------------- */

/* An untraced gateway parser: counts the event in cell[0] and returns
 * func(data) -- gateway._counting_parser without an interpreter frame. */
typedef struct {
    PyObject_HEAD
    vectorcallfunc vectorcall;
    PyObject *func;
    PyObject *cell;
} CountingParser;

static PyObject *
counting_call(CountingParser *self, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    if (count_event(self->cell) < 0) {
        return NULL;
    }
    return PyObject_Vectorcall(self->func, args, nargsf, kwnames);
}

static PyObject *
counting_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    static char *keywords[] = {"func", "cell", NULL};
    PyObject *func, *cell;
    CountingParser *self;

    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OO!:CountingParser", keywords, &func,
                                     &PyList_Type, &cell)) {
        return NULL;
    }
    if (PyList_GET_SIZE(cell) != 1) {
        PyErr_SetString(PyExc_ValueError, "cell must be a list of one int");
        return NULL;
    }
    self = (CountingParser *)type->tp_alloc(type, 0);
    if (self == NULL) {
        return NULL;
    }
    self->vectorcall = (vectorcallfunc)counting_call;
    Py_INCREF(func);
    self->func = func;
    Py_INCREF(cell);
    self->cell = cell;
    return (PyObject *)self;
}

static int
counting_traverse(CountingParser *self, visitproc visit, void *arg)
{
    Py_VISIT(self->func);
    Py_VISIT(self->cell);
    return 0;
}

static int
counting_clear(CountingParser *self)
{
    Py_CLEAR(self->func);
    Py_CLEAR(self->cell);
    return 0;
}

static void
counting_dealloc(CountingParser *self)
{
    PyObject_GC_UnTrack(self);
    counting_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyTypeObject CountingParser_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "discord_otel._gateway_speedups.CountingParser",
    .tp_doc = PyDoc_STR("CountingParser(func, cell)\n\n"
                        "An untraced gateway parser: counts the event in cell[0], then "
                        "returns func(data)."),
    .tp_basicsize = sizeof(CountingParser),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_HAVE_VECTORCALL,
    .tp_new = counting_new,
    .tp_dealloc = (destructor)counting_dealloc,
    .tp_traverse = (traverseproc)counting_traverse,
    .tp_clear = (inquiry)counting_clear,
    .tp_vectorcall_offset = offsetof(CountingParser, vectorcall),
    .tp_call = PyVectorcall_Call,
};

/* ---- timed runs -----------------------------------------------------------
 *
 * A TimedRun is a coroutine object written in C that awaits one thing and times
 * it, with no interpreter frame: a listener run (ListenerRunner, standing in for
 * discord.Client._run_event) or a REST call (RestHook, standing in for
 * HTTPClient.request). It speaks the coroutine protocol (send, throw, close,
 * am_send); its RunKind says what it awaits, what the awaited thing's end means
 * and what it lets go when done. Durations go straight into a FastHistogram's
 * _Series (counts, total, low, high), as FastHistogram.record does. */

static PyObject *str_on_error;
static PyObject *str_sampled_out;
static PyObject *str_throw;
static PyObject *str_close;
static PyObject *cancelled_error; /* asyncio.CancelledError */

enum { SERIES_COUNTS, SERIES_TOTAL, SERIES_LOW, SERIES_HIGH, SERIES_SLOTS };
static const char *series_slot_names[SERIES_SLOTS] = {"counts", "total", "low", "high"};

/* A histogram's bucket bounds and its series' slots, for records written here. */
typedef struct {
    double *bounds; /* ascending */
    Py_ssize_t bounds_count;
    Py_ssize_t offsets[SERIES_SLOTS];
} SeriesLayout;

static int
layout_init(SeriesLayout *layout, PyObject *bounds, PyObject *series_type)
{
    /* ``bounds``: a tuple of floats; ``series_type``: the _Series class */
    Py_ssize_t i;
    PyObject *bound;

    for (i = 0; i < SERIES_SLOTS; i++) {
        if (slot_offset((PyTypeObject *)series_type, series_slot_names[i], &layout->offsets[i])
            < 0) {
            return -1;
        }
    }
    layout->bounds_count = PyTuple_GET_SIZE(bounds);
    layout->bounds = PyMem_Calloc(layout->bounds_count + 1, sizeof(double));
    if (layout->bounds == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    for (i = 0; i < layout->bounds_count; i++) {
        bound = PyTuple_GET_ITEM(bounds, i);
        layout->bounds[i] = PyFloat_AsDouble(bound);
        if (layout->bounds[i] == -1.0 && PyErr_Occurred()) {
            return -1;
        }
        if (i > 0 && !(layout->bounds[i - 1] < layout->bounds[i])) {
            PyErr_SetString(PyExc_ValueError, "bounds must be ascending");
            return -1;
        }
    }
    return 0;
}

static double
perf_counter(void)
{
#if PY_VERSION_HEX >= 0x030D0000
    PyTime_t now;
    if (PyTime_PerfCounterRaw(&now) < 0) {
        return 0.0;
    }
    return PyTime_AsSecondsDouble(now);
#else
    return _PyTime_AsSecondsDouble(_PyTime_GetPerfCounter());
#endif
}

static int
set_float_slot(PyObject *object, Py_ssize_t offset, double value)
{
    /* 0, or -1 with the error cleared (a record never fails) */
    PyObject *number = PyFloat_FromDouble(value);

    if (number == NULL) {
        PyErr_Clear();
        return -1;
    }
    replace_slot(object, offset, number);
    return 0;
}

static void
record_in_series(const SeriesLayout *layout, PyObject *series, double duration)
{
    /* FastHistogram.record without an exemplar, inlined; never fails */
    const Py_ssize_t *offsets = layout->offsets;
    PyObject *counts, *count, *number;
    Py_ssize_t low = 0, high = layout->bounds_count, middle;

    if (series == NULL) {
        return;
    }
    while (low < high) { /* bisect_left: the first bound >= duration */
        middle = (low + high) / 2;
        if (layout->bounds[middle] < duration) {
            low = middle + 1;
        }
        else {
            high = middle;
        }
    }
    counts = get_slot(series, offsets[SERIES_COUNTS]);
    if (counts == NULL || !PyList_CheckExact(counts) || PyList_GET_SIZE(counts) <= low) {
        return;
    }
    count = PyNumber_Add(PyList_GET_ITEM(counts, low), one);
    if (count == NULL) {
        PyErr_Clear();
        return;
    }
    PyList_SetItem(counts, low, count);
    number = get_slot(series, offsets[SERIES_TOTAL]);
    if (number != NULL && PyFloat_CheckExact(number)) {
        (void)set_float_slot(series, offsets[SERIES_TOTAL], PyFloat_AS_DOUBLE(number) + duration);
    }
    number = get_slot(series, offsets[SERIES_LOW]);
    if (number != NULL && PyFloat_CheckExact(number) && duration < PyFloat_AS_DOUBLE(number)) {
        (void)set_float_slot(series, offsets[SERIES_LOW], duration);
    }
    number = get_slot(series, offsets[SERIES_HIGH]);
    if (number != NULL && PyFloat_CheckExact(number) && duration > PyFloat_AS_DOUBLE(number)) {
        (void)set_float_slot(series, offsets[SERIES_HIGH], duration);
    }
}

static PyObject *
cached_answer(PyObject *cache, PyObject *key, PyObject *make, PyObject *const *make_args,
              size_t make_nargs, Py_ssize_t bound)
{
    /* cache[key], else make(*make_args) kept while the cache holds fewer than
     * ``bound`` (a histogram series, a listener span's parts): a new reference,
     * or NULL without an error when there is none (None is not kept) */
    PyObject *series = PyDict_GetItemWithError(cache, key);

    if (series != NULL) {
        Py_INCREF(series);
        return series;
    }
    PyErr_Clear();
    series = PyObject_Vectorcall(make, make_args, make_nargs, NULL);
    if (series == NULL || series == Py_None) {
        PyErr_Clear(); /* the maker reports its own errors */
        Py_XDECREF(series);
        return NULL;
    }
    if (PyDict_GET_SIZE(cache) < bound && PyDict_SetItem(cache, key, series) < 0) {
        PyErr_Clear();
    }
    return series;
}

enum { RUN_NEW, RUN_AWAITING, RUN_ON_ERROR, RUN_DONE };

typedef struct TimedRun TimedRun;

typedef struct {
    const char *name; /* the run's __name__ and __qualname__ */
    /* RUN_NEW -> RUN_AWAITING: what the run awaits (a new iterator), or NULL
     * with an error (raised as the awaited call's would be) */
    PyObject *(*begin)(TimedRun *self);
    /* the awaited iterator's step ``status`` (``*result``) as the run's */
    PySendResult (*stepped)(TimedRun *self, PySendResult status, PyObject **result);
    void (*release)(TimedRun *self); /* done: drop what the kind held */
} RunKind;

struct TimedRun {
    PyObject_HEAD
    const RunKind *kind;
    PyObject *awaiting; /* the iterator of what is being awaited */
    PyObject *failure;  /* the exception being handled while awaiting, or NULL */
    double start;
    int state;
    int running;
};

static void
timed_init(TimedRun *self, const RunKind *kind)
{
    self->kind = kind;
    self->awaiting = self->failure = NULL;
    self->start = 0.0;
    self->state = RUN_NEW;
    self->running = 0;
}

static PyObject *
handled_exception(void)
{
    /* a new reference, or NULL for none */
#if PY_VERSION_HEX >= 0x030B0000
    PyObject *handled = PyErr_GetHandledException();
    if (handled == Py_None) {
        Py_DECREF(handled);
        return NULL;
    }
    return handled;
#else
    PyObject *type, *value, *traceback;
    PyErr_GetExcInfo(&type, &value, &traceback);
    Py_XDECREF(type);
    Py_XDECREF(traceback);
    if (value == Py_None) {
        Py_DECREF(value);
        return NULL;
    }
    return value;
#endif
}

static void
set_handled_exception(PyObject *exception)
{
    /* borrows ``exception`` (NULL: none) */
#if PY_VERSION_HEX >= 0x030B0000
    PyErr_SetHandledException(exception);
#else
    if (exception == NULL) {
        PyErr_SetExcInfo(NULL, NULL, NULL);
    }
    else {
        Py_INCREF(Py_TYPE(exception));
        Py_INCREF(exception);
        PyErr_SetExcInfo((PyObject *)Py_TYPE(exception), exception,
                         PyException_GetTraceback(exception));
    }
#endif
}

static void
take_raised(PyObject **type, PyObject **error, PyObject **traceback)
{
    /* the exception being raised, taken (for PyErr_Restore once the run has
     * recorded it) with its traceback set on it */
    PyErr_Fetch(type, error, traceback);
    PyErr_NormalizeException(type, error, traceback);
    if (*traceback != NULL && *error != NULL) {
        PyException_SetTraceback(*error, *traceback);
    }
}

/* While a run awaits with a failure being handled (a listener's on_error), that
 * failure is the exception being handled, as in an ``except`` block: set before
 * each step, and what was handled before given back after. */
static PyObject *
enter_failure(TimedRun *self)
{
    PyObject *saved;

    if (self->failure == NULL) {
        return NULL;
    }
    saved = handled_exception();
    set_handled_exception(self->failure);
    return saved;
}

static void
leave_failure(TimedRun *self, PyObject *saved)
{
    if (self->failure != NULL) {
        set_handled_exception(saved);
        Py_XDECREF(saved);
    }
}

static int
is_iterable_coroutine(PyObject *object)
{
    /* a generator of a @types.coroutine function (CO_ITERABLE_COROUTINE), which
     * ``await`` takes as it is */
    PyObject *code, *flags;
    long value = 0;

    if (!PyGen_CheckExact(object)) {
        return 0;
    }
    code = PyObject_GetAttrString(object, "gi_code");
    flags = code == NULL ? NULL : PyObject_GetAttrString(code, "co_flags");
    if (flags != NULL) {
        value = PyLong_AsLong(flags);
    }
    Py_XDECREF(code);
    Py_XDECREF(flags);
    PyErr_Clear();
    return value > 0 && (value & CO_ITERABLE_COROUTINE) != 0;
}

static PyObject *
await_iterator(PyObject *awaitable)
{
    /* What ``await awaitable`` iterates (a new reference), as the interpreter's
     * GET_AWAITABLE finds it. */
    PyObject *iterator;
    unaryfunc getter = NULL;

    if (PyCoro_CheckExact(awaitable) || is_iterable_coroutine(awaitable)) {
        Py_INCREF(awaitable);
        return awaitable;
    }
    if (Py_TYPE(awaitable)->tp_as_async != NULL) {
        getter = Py_TYPE(awaitable)->tp_as_async->am_await;
    }
    if (getter == NULL) {
        PyErr_Format(PyExc_TypeError, "object %.100s can't be used in 'await' expression",
                     Py_TYPE(awaitable)->tp_name);
        return NULL;
    }
    iterator = getter(awaitable);
    if (iterator == NULL) {
        return NULL;
    }
    if (PyCoro_CheckExact(iterator) || !PyIter_Check(iterator)) {
        PyErr_Format(PyExc_TypeError, "__await__() returned %s %.100s",
                     PyCoro_CheckExact(iterator) ? "a coroutine" : "non-iterator of type",
                     Py_TYPE(iterator)->tp_name);
        Py_DECREF(iterator);
        return NULL;
    }
    return iterator;
}

static void
run_done(TimedRun *self)
{
    /* done: drop what the run held (a task keeps its coroutine until it is
     * collected) */
    self->state = RUN_DONE;
    Py_CLEAR(self->awaiting);
    Py_CLEAR(self->failure);
    self->kind->release(self);
}

static PySendResult
run_drive(TimedRun *self, PyObject *value, PyObject **result)
{
    PySendResult status;
    PyObject *saved;

    self->running = 1;
    saved = enter_failure(self);
    status = PyIter_Send(self->awaiting, value, result);
    leave_failure(self, saved);
    self->running = 0;
    return self->kind->stepped(self, status, result);
}

static PySendResult
run_send(TimedRun *self, PyObject *value, PyObject **result)
{
    if (self->running) {
        PyErr_SetString(PyExc_ValueError, "coroutine already executing");
        *result = NULL;
        return PYGEN_ERROR;
    }
    if (self->state == RUN_DONE) {
        PyErr_SetString(PyExc_RuntimeError, "cannot reuse already awaited coroutine");
        *result = NULL;
        return PYGEN_ERROR;
    }
    if (self->state == RUN_NEW) {
        self->state = RUN_AWAITING;
        self->start = perf_counter();
        self->running = 1;
        self->awaiting = self->kind->begin(self);
        self->running = 0;
        if (self->awaiting == NULL) { /* raised as ``await call(...)`` would, in the try */
            *result = NULL;
            return self->kind->stepped(self, PYGEN_ERROR, result);
        }
        value = Py_None;
    }
    return run_drive(self, value, result);
}

static void
set_stop_iteration(PyObject *value)
{
    /* StopIteration carrying ``value`` (borrowed), as a returning generator raises it */
    PyObject *stop;

    if (value == Py_None) {
        PyErr_SetNone(PyExc_StopIteration);
        return;
    }
    stop = PyObject_CallOneArg(PyExc_StopIteration, value);
    if (stop != NULL) {
        PyErr_SetObject(PyExc_StopIteration, stop);
        Py_DECREF(stop);
    }
}

static PyObject *
returned(PySendResult status, PyObject *result)
{
    /* send()'s and throw()'s answer: a return is a StopIteration carrying the value */
    if (status == PYGEN_RETURN) {
        set_stop_iteration(result);
        Py_DECREF(result);
        return NULL;
    }
    return result;
}

static PyObject *
run_iternext(TimedRun *self)
{
    PyObject *result;
    PySendResult status = run_send(self, Py_None, &result);

    if (status == PYGEN_RETURN && result == Py_None) {
        Py_DECREF(result); /* a bare StopIteration */
        return NULL;
    }
    return returned(status, result);
}

static PyObject *
stop_iteration_value(void)
{
    /* the value of the StopIteration being raised (cleared): a new reference */
    PyObject *type, *value, *traceback, *result;

    PyErr_Fetch(&type, &value, &traceback);
    PyErr_NormalizeException(&type, &value, &traceback);
    result = value == NULL ? NULL : PyObject_GetAttrString(value, "value");
    Py_XDECREF(type);
    Py_XDECREF(value);
    Py_XDECREF(traceback);
    if (result == NULL) {
        PyErr_Clear();
        Py_INCREF(Py_None);
        result = Py_None;
    }
    return result;
}

static PyObject *
run_send_method(TimedRun *self, PyObject *value)
{
    PyObject *result;
    PySendResult status = run_send(self, value, &result);

    return returned(status, result);
}

static int
raise_thrown(PyObject *const *args, Py_ssize_t nargs)
{
    /* throw(type[, value[, traceback]]) or throw(exception), raised here */
    PyObject *type = args[0], *value = nargs > 1 ? args[1] : NULL;
    PyObject *traceback = nargs > 2 ? args[2] : NULL;

    if (traceback == Py_None) {
        traceback = NULL;
    }
    if (PyExceptionInstance_Check(type)) {
        PyErr_SetObject(PyExceptionInstance_Class(type), type);
    }
    else if (PyExceptionClass_Check(type)) {
        PyErr_SetObject(type, value == Py_None ? NULL : value);
    }
    else {
        PyErr_SetString(PyExc_TypeError,
                        "exceptions must be classes or instances deriving from BaseException");
        return -1;
    }
    if (traceback != NULL) {
        PyObject *raised_type, *raised, *raised_traceback;
        PyErr_Fetch(&raised_type, &raised, &raised_traceback);
        PyErr_NormalizeException(&raised_type, &raised, &raised_traceback);
        PyException_SetTraceback(raised, traceback);
        Py_XDECREF(raised_traceback);
        Py_INCREF(traceback);
        PyErr_Restore(raised_type, raised, traceback);
    }
    return -1;
}

static PyObject *
run_throw(TimedRun *self, PyObject *const *args, Py_ssize_t nargs)
{
    PyObject *throw, *result, *saved;
    PySendResult status;

    if (nargs < 1 || nargs > 3) {
        PyErr_SetString(PyExc_TypeError, "throw expected 1 to 3 arguments");
        return NULL;
    }
    if (self->running) {
        PyErr_SetString(PyExc_ValueError, "coroutine already executing");
        return NULL;
    }
    if (self->state == RUN_NEW || self->state == RUN_DONE) {
        /* not started (raised before the try, as in an unstarted coroutine) or over */
        run_done(self);
        raise_thrown(args, nargs);
        return NULL;
    }
    throw = PyObject_GetAttr(self->awaiting, str_throw);
    if (throw == NULL) {
        /* an iterator without throw(): raised here, as ``await`` does */
        PyErr_Clear();
        Py_CLEAR(self->awaiting);
        raise_thrown(args, nargs);
        status = PYGEN_ERROR;
        result = NULL;
    }
    else {
        self->running = 1;
        saved = enter_failure(self);
        result = PyObject_Vectorcall(throw, args, nargs, NULL);
        leave_failure(self, saved);
        self->running = 0;
        Py_DECREF(throw);
        status = PYGEN_NEXT;
        if (result == NULL) {
            status = PYGEN_ERROR;
            if (PyErr_ExceptionMatches(PyExc_StopIteration)) { /* it returned */
                result = stop_iteration_value();
                status = PYGEN_RETURN;
            }
        }
    }
    status = self->kind->stepped(self, status, &result);
    return returned(status, result);
}

static PyObject *
run_close(TimedRun *self, PyObject *unused)
{
    /* As a coroutine's close(): what it awaits is closed, then GeneratorExit is
     * raised where it waited (its kind sees the interruption). */
    PyObject *awaiting = self->awaiting, *outcome, *result = NULL;

    if (self->running) {
        PyErr_SetString(PyExc_ValueError, "coroutine already executing");
        return NULL;
    }
    self->awaiting = NULL;
    if (awaiting != NULL) {
        outcome = PyObject_CallMethodNoArgs(awaiting, str_close);
        Py_DECREF(awaiting);
        if (outcome == NULL) {
            if (!PyErr_ExceptionMatches(PyExc_AttributeError)) {
                run_done(self);
                return NULL;
            }
            PyErr_Clear(); /* nothing to close */
        }
        Py_XDECREF(outcome);
    }
    if (self->state == RUN_AWAITING) {
        PyErr_SetNone(PyExc_GeneratorExit);
        (void)self->kind->stepped(self, PYGEN_ERROR, &result);
        Py_XDECREF(result);
        if (self->state != RUN_DONE) { /* it went on to await something else */
            run_done(self);
        }
        if (PyErr_ExceptionMatches(PyExc_GeneratorExit)) {
            PyErr_Clear();
        }
        if (PyErr_Occurred()) {
            return NULL;
        }
    }
    else {
        run_done(self);
    }
    Py_RETURN_NONE;
}

static PyObject *
run_await(TimedRun *self)
{
    Py_INCREF(self);
    return (PyObject *)self;
}

static PyObject *
run_name(TimedRun *self, void *closure)
{
    return PyUnicode_FromString(self->kind->name);
}

static PyAsyncMethods run_as_async = {
    .am_await = (unaryfunc)run_await,
    .am_send = (sendfunc)run_send,
};

static PyMethodDef run_methods[] = {
    {"send", (PyCFunction)run_send_method, METH_O, "send(value): resume the run."},
    {"throw", (PyCFunction)(void (*)(void))run_throw, METH_FASTCALL,
     "throw(exception): raise it where the run is suspended."},
    {"close", (PyCFunction)run_close, METH_NOARGS, "close(): stop the run."},
    {NULL},
};

static PyGetSetDef run_getset[] = {
    {"__name__", (getter)run_name, NULL, NULL, NULL},
    {"__qualname__", (getter)run_name, NULL, NULL, NULL},
    {NULL},
};

static PyObject *
dropped_parent(PyObject *current)
{
    /* current.get() when it is a sampled-out stand-in (a dropped event's, or a
     * handler's under one): a new reference, else NULL without an error */
    PyObject *parent, *flag;
    int dropped;

    if (PyContextVar_Get(current, NULL, &parent) < 0) {
        PyErr_Clear();
        return NULL;
    }
    if (parent == NULL || parent == Py_None) {
        Py_XDECREF(parent);
        return NULL;
    }
    flag = PyObject_GetAttr(parent, str_sampled_out);
    dropped = flag != NULL && PyObject_IsTrue(flag) == 1;
    Py_XDECREF(flag);
    PyErr_Clear();
    if (!dropped) {
        Py_DECREF(parent);
        return NULL;
    }
    return parent;
}

static int
proxied(PyObject *otel_current, PyObject *proxy_context)
{
    /* whether the OpenTelemetry context is the proxy's (the usual case): else a
     * span of the bot's own is current; never an error */
    PyObject *context = PyObject_CallNoArgs(otel_current);
    int found = context != NULL && context == proxy_context;

    Py_XDECREF(context);
    PyErr_Clear();
    return found;
}

static void
timed_run_dealloc(PyObject *self)
{
    PyObject_GC_UnTrack(self);
    Py_TYPE(self)->tp_clear(self);
    Py_TYPE(self)->tp_free(self);
}

/* The type of a kind of TimedRun: its struct, doc, traverse, clear and members. */
#define TIMED_RUN_TYPE(struct_name, type_name, doc, traverse, clear, members) \
    {                                                                        \
        PyVarObject_HEAD_INIT(NULL, 0)                                       \
        .tp_name = "discord_otel._gateway_speedups." type_name,              \
        .tp_doc = PyDoc_STR(doc),                                            \
        .tp_basicsize = sizeof(struct_name),                                 \
        .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,                 \
        .tp_dealloc = timed_run_dealloc,                                     \
        .tp_traverse = (traverseproc)traverse,                               \
        .tp_clear = (inquiry)clear,                                          \
        .tp_as_async = &run_as_async,                                        \
        .tp_iter = PyObject_SelfIter,                                        \
        .tp_iternext = (iternextfunc)run_iternext,                           \
        .tp_methods = run_methods,                                           \
        .tp_members = members,                                               \
        .tp_getset = run_getset,                                             \
    }

static PyObject *
method_get(PyObject *self, PyObject *instance, PyObject *owner)
{
    /* a method, like the function it stands in for */
    if (instance == NULL || instance == Py_None) {
        Py_INCREF(self);
        return self;
    }
    return PyMethod_New(self, instance);
}

/* ---- listener runs --------------------------------------------------------
 *
 * ListenerRunner stands in for discord.Client._run_event (a method: it binds
 * like a function). Called as discord.py's _schedule_event calls _run_event, it
 * returns the coroutine the task will run: a ListenerRun, which does what
 * discord.py's _run_event coroutine does -- await the listener, ignore
 * CancelledError, hand any other Exception to self.on_error, itself awaited
 * with that exception as the one being handled (sys.exc_info() in on_error is
 * the listener's) -- and records the run's duration in the listener's histogram
 * series. A failed run is given to failed(event_name, exception, duration),
 * which records it.
 *
 * While tracing, a run whose parent (current.get() as the listener is
 * scheduled, i.e. the event's span the task's context copies) is not a
 * sampled-out stand-in gets a span: a deferred one (a span_type, which is
 * spans.DiscordSpan) made here as the run starts and held in ``current`` while
 * it runs, as the Python _run_event does. Its end, where nothing materialised
 * it, is a timestamp and the variable's reset; otherwise, and when the run
 * failed, leave(span, token, None) -- the Python _run_event's own end -- ends
 * it. Where there is no span_for (or the OpenTelemetry context holds a span of
 * the bot's own, not the proxy) such a run goes to traced(client, coro,
 * event_name, ...) instead: the Python _run_event with its span. */

enum { LSLOT_TRACER, LSLOT_NAME, LSLOT_ATTRIBUTES, LSLOT_START_NS, LSLOT_REAL, LSLOT_END_NS,
       LSLOT_ERROR, LSLOT_PARENT, LSLOTS };
static const char *listener_slot_names[LSLOTS] = {
    "tracer", "name", "attributes", "start_ns", "real", "end_ns", "error", "parent",
};

typedef struct {
    PyObject_HEAD
    vectorcallfunc vectorcall;
    PyObject *series_for; /* series_for(event_name): the listener's series, or None */
    PyObject *failed;     /* failed(event_name, exception, duration, span or None) */
    PyObject *traced;     /* the traced _run_event, or None when nothing is traced */
    PyObject *current;    /* spans.CURRENT */
    PyObject *series;     /* dict: event name -> series */
    /* spans made here (NULL: traced runs go to ``traced``) */
    PyObject *span_for;      /* span_for(event_name): (tracer, name, attributes), or None */
    PyTypeObject *span_type; /* spans.DiscordSpan */
    PyObject *otel_current;  /* the current OpenTelemetry context */
    PyObject *proxy_context; /* spans.PROXY_CONTEXT */
    PyObject *leave;         /* leave(span, token, None) */
    PyObject *time_ns;       /* time.time_ns */
    PyObject *parts;         /* dict: event name -> span_for's answer (None not kept) */
    Py_ssize_t span_offsets[LSLOTS];
    SeriesLayout layout;
} ListenerRunner;

typedef struct {
    TimedRun run;
    ListenerRunner *runner;
    PyObject *client;
    PyObject *func;       /* the listener (a coroutine function) */
    PyObject *event_name;
    PyObject *args;       /* tuple */
    PyObject *kwargs;     /* dict, or NULL */
    PyObject *series;     /* the listener's series, or NULL */
    PyObject *parts;      /* (tracer, name, attributes) of its span, or NULL: no span */
    PyObject *parent;     /* the span's parent (None: a root) */
    PyObject *span;       /* the span while it is open, or NULL */
    PyObject *token;      /* current's token for it */
} ListenerRun;

static PyTypeObject ListenerRun_Type;

#define MAX_LISTENER_SERIES 10000 /* event names come from code, but stay bounded */

static void
listener_open_span(ListenerRun *self)
{
    /* The run's deferred span, current in the task's context (this runs as the
     * task first steps the run). A span that cannot be made leaves the run
     * untraced: the listener runs all the same. */
    ListenerRunner *runner = self->runner;
    const Py_ssize_t *offsets = runner->span_offsets;
    PyObject *span, *start_ns;

    start_ns = PyObject_CallNoArgs(runner->time_ns);
    span = start_ns == NULL ? NULL : runner->span_type->tp_alloc(runner->span_type, 0);
    if (span == NULL) {
        Py_XDECREF(start_ns);
        PyErr_Clear();
        return;
    }
    set_slot(span, offsets[LSLOT_TRACER], PyTuple_GET_ITEM(self->parts, 0));
    set_slot(span, offsets[LSLOT_NAME], PyTuple_GET_ITEM(self->parts, 1));
    set_slot(span, offsets[LSLOT_ATTRIBUTES], PyTuple_GET_ITEM(self->parts, 2));
    set_slot(span, offsets[LSLOT_START_NS], start_ns);
    Py_DECREF(start_ns);
    set_slot(span, offsets[LSLOT_REAL], Py_None);
    set_slot(span, offsets[LSLOT_END_NS], Py_None);
    set_slot(span, offsets[LSLOT_ERROR], Py_None);
    set_slot(span, offsets[LSLOT_PARENT], self->parent);
    self->token = PyContextVar_Set(runner->current, span);
    if (self->token == NULL) {
        PyErr_Clear();
        Py_DECREF(span);
        return;
    }
    self->span = span;
}

static void
listener_close_span(ListenerRun *self)
{
    /* The run's span, if open, ended: where nothing materialised it and the run
     * did not fail, a timestamp and current reset (the usual case); else by
     * leave(span, token, None). Keeps the exception being raised, if any. */
    ListenerRunner *runner = self->runner;
    PyObject *span = self->span, *token = self->token, *real, *error, *end, *outcome;
    PyObject *type, *value, *traceback;

    if (span == NULL) {
        return;
    }
    self->span = self->token = NULL;
    PyErr_Fetch(&type, &value, &traceback);
    real = get_slot(span, runner->span_offsets[LSLOT_REAL]);
    error = get_slot(span, runner->span_offsets[LSLOT_ERROR]);
    if ((real == NULL || real == Py_None) && (error == NULL || error == Py_None)) {
        if (PyContextVar_Reset(runner->current, token) == 0
            && (end = PyObject_CallNoArgs(runner->time_ns)) != NULL) {
            replace_slot(span, runner->span_offsets[LSLOT_END_NS], end);
        }
    }
    else {
        outcome = PyObject_CallFunctionObjArgs(runner->leave, span, token, Py_None, NULL);
        Py_XDECREF(outcome);
    }
    PyErr_Clear(); /* leave() reports its own errors */
    Py_DECREF(span);
    Py_DECREF(token);
    PyErr_Restore(type, value, traceback);
}

static PyObject *
listener_begin(TimedRun *base)
{
    ListenerRun *self = (ListenerRun *)base;
    PyObject *awaitable, *iterator;

    if (self->parts != NULL) {
        listener_open_span(self);
    }
    awaitable = PyObject_Call(self->func, self->args, self->kwargs);

    iterator = awaitable == NULL ? NULL : await_iterator(awaitable);
    Py_XDECREF(awaitable);
    return iterator;
}

static void
listener_release(TimedRun *base)
{
    ListenerRun *self = (ListenerRun *)base;

    Py_CLEAR(self->client);
    Py_CLEAR(self->func);
    Py_CLEAR(self->args);
    Py_CLEAR(self->kwargs);
    Py_CLEAR(self->series);
    Py_CLEAR(self->parts);
    Py_CLEAR(self->parent);
    Py_CLEAR(self->span); /* still open: left as a Python run leaves it (never ended) */
    Py_CLEAR(self->token);
}

static PySendResult
listener_returned(ListenerRun *self, PyObject **result)
{
    run_done(&self->run);
    Py_INCREF(Py_None);
    *result = Py_None;
    return PYGEN_RETURN;
}

/* The listener raised an Exception (set): record the failure, then await
 * self.on_error(event_name, *args, **kwargs) with it as the handled exception. */
static PySendResult
listener_failed(ListenerRun *self, PyObject **result)
{
    PyObject *type, *value, *traceback, *on_error, *arguments, *awaitable, *iterator, *outcome;
    Py_ssize_t i;
    double duration = perf_counter() - self->run.start;

    take_raised(&type, &value, &traceback);
    Py_XDECREF(type);
    Py_XDECREF(traceback);
    self->run.failure = value; /* owned */
    if (self->series != NULL) {
        outcome = PyObject_CallFunction(self->runner->failed, "OOdO", self->event_name, value,
                                        duration, self->span != NULL ? self->span : Py_None);
        if (outcome == NULL) {
            PyErr_Clear(); /* failed() reports its own errors */
        }
        Py_XDECREF(outcome);
    }
    self->run.state = RUN_ON_ERROR;
    self->run.running = 1;
    {
        PyObject *saved = enter_failure(&self->run);
        awaitable = NULL;
        on_error = PyObject_GetAttr(self->client, str_on_error);
        arguments = on_error == NULL ? NULL : PyTuple_New(PyTuple_GET_SIZE(self->args) + 1);
        if (arguments != NULL) { /* (event_name, *args) */
            Py_INCREF(self->event_name);
            PyTuple_SET_ITEM(arguments, 0, self->event_name);
            for (i = 0; i < PyTuple_GET_SIZE(self->args); i++) {
                Py_INCREF(PyTuple_GET_ITEM(self->args, i));
                PyTuple_SET_ITEM(arguments, i + 1, PyTuple_GET_ITEM(self->args, i));
            }
            awaitable = PyObject_Call(on_error, arguments, self->kwargs);
            Py_DECREF(arguments);
        }
        Py_XDECREF(on_error);
        iterator = awaitable == NULL ? NULL : await_iterator(awaitable);
        Py_XDECREF(awaitable);
        leave_failure(&self->run, saved);
    }
    self->run.running = 0;
    if (iterator == NULL) {
        listener_close_span(self);
        if (PyErr_ExceptionMatches(cancelled_error)) {
            PyErr_Clear();
            return listener_returned(self, result);
        }
        run_done(&self->run);
        *result = NULL;
        return PYGEN_ERROR;
    }
    self->run.awaiting = iterator;
    return run_drive(&self->run, Py_None, result);
}

static PySendResult
listener_stepped(TimedRun *base, PySendResult status, PyObject **result)
{
    ListenerRun *self = (ListenerRun *)base;

    if (status == PYGEN_NEXT) {
        return PYGEN_NEXT;
    }
    Py_CLEAR(base->awaiting);
    if (status == PYGEN_RETURN || PyErr_ExceptionMatches(cancelled_error)) {
        /* returned (whatever it returned: _run_event returns None), or cancelled
         * (ignored, as _run_event does): a run, measured if it was the listener's */
        Py_CLEAR(*result);
        PyErr_Clear();
        if (base->state == RUN_AWAITING) {
            record_in_series(&self->runner->layout, self->series, perf_counter() - base->start);
        }
        listener_close_span(self);
        return listener_returned(self, result);
    }
    *result = NULL;
    if (base->state == RUN_AWAITING && PyErr_ExceptionMatches(PyExc_Exception)) {
        return listener_failed(self, result);
    }
    if (base->state == RUN_ON_ERROR) { /* on_error raised: the span ends all the same */
        listener_close_span(self);
    }
    run_done(base);
    return PYGEN_ERROR;
}

static const RunKind listener_kind = {
    .name = "Client._run_event",
    .begin = listener_begin,
    .stepped = listener_stepped,
    .release = listener_release,
};

static int
listener_run_traverse(ListenerRun *self, visitproc visit, void *arg)
{
    Py_VISIT(self->runner);
    Py_VISIT(self->client);
    Py_VISIT(self->func);
    Py_VISIT(self->event_name);
    Py_VISIT(self->args);
    Py_VISIT(self->kwargs);
    Py_VISIT(self->series);
    Py_VISIT(self->parts);
    Py_VISIT(self->parent);
    Py_VISIT(self->span);
    Py_VISIT(self->token);
    Py_VISIT(self->run.awaiting);
    Py_VISIT(self->run.failure);
    return 0;
}

static int
listener_run_clear(ListenerRun *self)
{
    run_done(&self->run);
    Py_CLEAR(self->runner);
    Py_CLEAR(self->event_name);
    return 0;
}

static PyTypeObject ListenerRun_Type = TIMED_RUN_TYPE(
    ListenerRun, "ListenerRun", "One listener run: the coroutine a ListenerRunner call returns.",
    listener_run_traverse, listener_run_clear, NULL);

static PyObject *
runner_call(ListenerRunner *self, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf), nkwargs, i;
    ListenerRun *run;
    int traced = 0;

    if (nargs < 3) {
        PyErr_SetString(PyExc_TypeError,
                        "_run_event(self, coro, event_name, *args, **kwargs) takes at least "
                        "3 arguments");
        return NULL;
    }
    if (self->traced != Py_None) {
        PyObject *dropped = dropped_parent(self->current);
        if (dropped == NULL) {
            if (self->span_for == NULL || !proxied(self->otel_current, self->proxy_context)) {
                return PyObject_Vectorcall(self->traced, args, nargsf, kwnames);
            }
            traced = 1; /* a span made here, with the task's context */
        }
        Py_XDECREF(dropped);
    }
    run = PyObject_GC_New(ListenerRun, &ListenerRun_Type);
    if (run == NULL) {
        return NULL;
    }
    timed_init(&run->run, &listener_kind);
    run->kwargs = run->series = run->parts = run->parent = run->span = run->token = NULL;
    Py_INCREF(self);
    run->runner = self;
    Py_INCREF(args[0]);
    run->client = args[0];
    Py_INCREF(args[1]);
    run->func = args[1];
    Py_INCREF(args[2]);
    run->event_name = args[2];
    run->args = PyTuple_New(nargs - 3);
    if (run->args == NULL) {
        goto failed;
    }
    for (i = 3; i < nargs; i++) {
        Py_INCREF(args[i]);
        PyTuple_SET_ITEM(run->args, i - 3, args[i]);
    }
    nkwargs = kwnames == NULL ? 0 : PyTuple_GET_SIZE(kwnames);
    if (nkwargs > 0) {
        if ((run->kwargs = PyDict_New()) == NULL) {
            goto failed;
        }
        for (i = 0; i < nkwargs; i++) {
            if (PyDict_SetItem(run->kwargs, PyTuple_GET_ITEM(kwnames, i), args[nargs + i]) < 0) {
                goto failed;
            }
        }
    }
    run->series = cached_answer(self->series, args[2], self->series_for, &args[2], 1,
                                MAX_LISTENER_SERIES);
    if (traced) { /* span_for's (tracer, name, attributes), kept per event name */
        run->parts = cached_answer(self->parts, args[2], self->span_for, &args[2], 1,
                                   MAX_LISTENER_SERIES);
        if (run->parts != NULL
            && !(PyTuple_CheckExact(run->parts) && PyTuple_GET_SIZE(run->parts) == 3)) {
            Py_CLEAR(run->parts); /* not a span's parts: no span */
        }
        /* the parent as the task will find it: its context is a copy of this one */
        if (run->parts != NULL && PyContextVar_Get(self->current, Py_None, &run->parent) < 0) {
            PyErr_Clear();
            Py_CLEAR(run->parts);
        }
    }
    PyObject_GC_Track(run);
    return (PyObject *)run;
failed:
    PyObject_GC_Track(run);
    Py_DECREF(run);
    return NULL;
}

static PyObject *
runner_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    static char *keywords[] = {
        "series_for", "failed", "traced", "current", "bounds", "series_type", "span_for",
        "span_type", "otel_current", "proxy_context", "leave", "time_ns", NULL,
    };
    PyObject *series_for, *failed, *traced, *current, *bounds, *series_type;
    PyObject *span_for = Py_None, *span_type = NULL, *otel_current = NULL;
    PyObject *proxy_context = NULL, *leave = NULL, *time_ns = NULL;
    ListenerRunner *self;
    int i;

    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OOOOO!O!|$OO!OOOO:ListenerRunner", keywords,
                                     &series_for, &failed, &traced, &current, &PyTuple_Type,
                                     &bounds, &PyType_Type, &series_type, &span_for,
                                     &PyType_Type, &span_type, &otel_current, &proxy_context,
                                     &leave, &time_ns)) {
        return NULL;
    }
    if (span_for != Py_None
        && (span_type == NULL || otel_current == NULL || proxy_context == NULL || leave == NULL
            || time_ns == NULL)) {
        PyErr_SetString(PyExc_TypeError, "span_for needs span_type, otel_current, "
                                         "proxy_context, leave and time_ns");
        return NULL;
    }
    self = (ListenerRunner *)type->tp_alloc(type, 0);
    if (self == NULL) {
        return NULL;
    }
    self->vectorcall = (vectorcallfunc)runner_call;
    if (layout_init(&self->layout, bounds, series_type) < 0
        || (self->series = PyDict_New()) == NULL) {
        Py_DECREF(self);
        return NULL;
    }
    if (span_for != Py_None) {
        for (i = 0; i < LSLOTS; i++) {
            if (slot_offset((PyTypeObject *)span_type, listener_slot_names[i],
                            &self->span_offsets[i]) < 0) {
                Py_DECREF(self);
                return NULL;
            }
        }
        if ((self->parts = PyDict_New()) == NULL) {
            Py_DECREF(self);
            return NULL;
        }
        Py_INCREF(span_for);
        self->span_for = span_for;
        Py_INCREF(span_type);
        self->span_type = (PyTypeObject *)span_type;
        Py_INCREF(otel_current);
        self->otel_current = otel_current;
        Py_INCREF(proxy_context);
        self->proxy_context = proxy_context;
        Py_INCREF(leave);
        self->leave = leave;
        Py_INCREF(time_ns);
        self->time_ns = time_ns;
    }
    Py_INCREF(series_for);
    self->series_for = series_for;
    Py_INCREF(failed);
    self->failed = failed;
    Py_INCREF(traced);
    self->traced = traced;
    Py_INCREF(current);
    self->current = current;
    return (PyObject *)self;
}

static int
runner_traverse(ListenerRunner *self, visitproc visit, void *arg)
{
    Py_VISIT(self->series_for);
    Py_VISIT(self->failed);
    Py_VISIT(self->traced);
    Py_VISIT(self->current);
    Py_VISIT(self->series);
    Py_VISIT(self->span_for);
    Py_VISIT(self->span_type);
    Py_VISIT(self->otel_current);
    Py_VISIT(self->proxy_context);
    Py_VISIT(self->leave);
    Py_VISIT(self->time_ns);
    Py_VISIT(self->parts);
    return 0;
}

static int
runner_clear(ListenerRunner *self)
{
    Py_CLEAR(self->series_for);
    Py_CLEAR(self->failed);
    Py_CLEAR(self->traced);
    Py_CLEAR(self->current);
    Py_CLEAR(self->series);
    Py_CLEAR(self->span_for);
    Py_CLEAR(self->span_type);
    Py_CLEAR(self->otel_current);
    Py_CLEAR(self->proxy_context);
    Py_CLEAR(self->leave);
    Py_CLEAR(self->time_ns);
    Py_CLEAR(self->parts);
    return 0;
}

static void
runner_dealloc(ListenerRunner *self)
{
    PyObject_GC_UnTrack(self);
    runner_clear(self);
    PyMem_Free(self->layout.bounds);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyTypeObject ListenerRunner_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "discord_otel._gateway_speedups.ListenerRunner",
    .tp_doc = PyDoc_STR(
        "ListenerRunner(series_for, failed, traced, current, bounds, series_type, *, "
        "span_for=None, span_type=None, otel_current=None, proxy_context=None, leave=None, "
        "time_ns=None)\n\n"
        "discord.Client._run_event without an interpreter frame: returns the coroutine "
        "that runs one listener, times it into series_for(event_name)'s histogram series "
        "(a series_type with counts, total, low and high slots; buckets by bounds) and "
        "hands an Exception to failed(event_name, exception, duration, span) and then "
        "client.on_error. While tracing (traced is not None), a run whose parent in "
        "current is not sampled out gets a deferred span_type span built from "
        "span_for(event_name) = (tracer, name, attributes), current while it runs and "
        "ended by leave(span, token, None) unless it stays a timestamp; with no span_for, "
        "or a span of the bot's own current, it is traced(...)'s instead."),
    .tp_basicsize = sizeof(ListenerRunner),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_HAVE_VECTORCALL
                | Py_TPFLAGS_METHOD_DESCRIPTOR,
    .tp_new = runner_new,
    .tp_dealloc = (destructor)runner_dealloc,
    .tp_traverse = (traverseproc)runner_traverse,
    .tp_clear = (inquiry)runner_clear,
    .tp_descr_get = method_get,
    .tp_vectorcall_offset = offsetof(ListenerRunner, vectorcall),
    .tp_call = PyVectorcall_Call,
};

/* ---- listener scheduling --------------------------------------------------
 *
 * ListenerScheduler stands in for discord.Client._schedule_event (a method: it
 * binds like a function) and does what discord.py's does --
 *
 *     wrapped = self._run_event(coro, event_name, *args, **kwargs)
 *     return self.loop.create_task(wrapped, name=f'discord.py: {event_name}')
 *
 * -- without its interpreter frame, the two copies of the star arguments and
 * the f-string per listener: the task names are kept per event name. The
 * ``_run_event`` called is the client's own (ListenerRunner, or whatever a
 * subclass put there), looked up per call as discord.py does. A call not as
 * dispatch makes it (fewer than three positional arguments) goes to the
 * original. */

typedef struct {
    PyObject_HEAD
    vectorcallfunc vectorcall;
    PyObject *original; /* discord.py's _schedule_event */
    PyObject *names;    /* dict: event name (str) -> task name */
} ListenerScheduler;

static PyObject *str_run_event;
static PyObject *str_loop;
static PyObject *str_create_task;
static PyObject *task_name_prefix; /* "discord.py: " */
static PyObject *name_keyword;     /* ("name",) */

#define MAX_TASK_NAMES 10000 /* event names come from code, but stay bounded */

static PyObject *
cached_task_name(ListenerScheduler *self, PyObject *event_name)
{
    /* f'discord.py: {event_name}' for a str (a new reference), kept per name */
    PyObject *name = PyDict_GetItemWithError(self->names, event_name);

    if (name != NULL) {
        Py_INCREF(name);
        return name;
    }
    if (PyErr_Occurred()) {
        return NULL;
    }
    name = PyUnicode_Concat(task_name_prefix, event_name);
    if (name != NULL && PyDict_GET_SIZE(self->names) < MAX_TASK_NAMES
        && PyDict_SetItem(self->names, event_name, name) < 0) {
        Py_CLEAR(name);
    }
    return name;
}

static PyObject *
schedule_task(ListenerScheduler *self, PyObject *client, PyObject *event_name,
              PyObject *wrapped)
{
    /* client.loop.create_task(wrapped, name=f'discord.py: {event_name}'), in
     * the f-string's order: the loop and its method before the name */
    PyObject *loop, *create_task, *name, *task, *call[3];

    loop = PyObject_GetAttr(client, str_loop);
    if (loop == NULL) {
        return NULL;
    }
    if (PyUnicode_CheckExact(event_name)) { /* formatting a str cannot fail */
        name = cached_task_name(self, event_name);
        call[0] = loop;
        call[1] = wrapped;
        call[2] = name;
        task = name == NULL ? NULL
                            : PyObject_VectorcallMethod(str_create_task, call, 2, name_keyword);
        Py_XDECREF(name);
        Py_DECREF(loop);
        return task;
    }
    create_task = PyObject_GetAttr(loop, str_create_task);
    Py_DECREF(loop);
    if (create_task == NULL) {
        return NULL;
    }
    name = PyObject_Format(event_name, NULL);
    if (name != NULL) {
        Py_SETREF(name, PyUnicode_Concat(task_name_prefix, name));
    }
    call[1] = wrapped;
    call[2] = name;
    task = name == NULL ? NULL
                        : PyObject_Vectorcall(create_task, &call[1], 1, name_keyword);
    Py_XDECREF(name);
    Py_DECREF(create_task);
    return task;
}

static PyObject *
scheduler_call(ListenerScheduler *self, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    PyObject *wrapped, *task;

    if (PyVectorcall_NARGS(nargsf) < 3) {
        return PyObject_Vectorcall(self->original, args, nargsf, kwnames);
    }
    /* self._run_event(coro, event_name, *args, **kwargs): args[0] is self */
    wrapped = PyObject_VectorcallMethod(str_run_event, args, nargsf, kwnames);
    if (wrapped == NULL) {
        return NULL;
    }
    task = schedule_task(self, args[0], args[2], wrapped);
    Py_DECREF(wrapped);
    return task;
}

static PyObject *
scheduler_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    static char *keywords[] = {"original", NULL};
    PyObject *original;
    ListenerScheduler *self;

    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O:ListenerScheduler", keywords, &original)) {
        return NULL;
    }
    self = (ListenerScheduler *)type->tp_alloc(type, 0);
    if (self == NULL) {
        return NULL;
    }
    self->vectorcall = (vectorcallfunc)scheduler_call;
    if ((self->names = PyDict_New()) == NULL) {
        Py_DECREF(self);
        return NULL;
    }
    Py_INCREF(original);
    self->original = original;
    return (PyObject *)self;
}

static int
scheduler_traverse(ListenerScheduler *self, visitproc visit, void *arg)
{
    Py_VISIT(self->original);
    Py_VISIT(self->names);
    return 0;
}

static int
scheduler_clear(ListenerScheduler *self)
{
    Py_CLEAR(self->original);
    Py_CLEAR(self->names);
    return 0;
}

static void
scheduler_dealloc(ListenerScheduler *self)
{
    PyObject_GC_UnTrack(self);
    scheduler_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyTypeObject ListenerScheduler_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "discord_otel._gateway_speedups.ListenerScheduler",
    .tp_doc = PyDoc_STR(
        "ListenerScheduler(original)\n\n"
        "discord.Client._schedule_event without an interpreter frame: "
        "self.loop.create_task(self._run_event(coro, event_name, *args, **kwargs), "
        "name=f'discord.py: {event_name}'), the task names kept per event name. A call "
        "with fewer than three positional arguments goes to original."),
    .tp_basicsize = sizeof(ListenerScheduler),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_HAVE_VECTORCALL
                | Py_TPFLAGS_METHOD_DESCRIPTOR,
    .tp_new = scheduler_new,
    .tp_dealloc = (destructor)scheduler_dealloc,
    .tp_traverse = (traverseproc)scheduler_traverse,
    .tp_clear = (inquiry)scheduler_clear,
    .tp_descr_get = method_get,
    .tp_vectorcall_offset = offsetof(ListenerScheduler, vectorcall),
    .tp_call = PyVectorcall_Call,
};

/* ---- REST calls -----------------------------------------------------------
 *
 * RestHook stands in for HTTPClient.request and AsyncWebhookAdapter.request (a
 * method: it binds like a function). Called as
 * discord.py calls request(route, ...), it calls the original (an ``async
 * def``: that only makes its coroutine) and returns a RestRun awaiting it,
 * which does what rest._request_hook's coroutine does:
 *
 * - while it runs it is the task's call in ``calls`` (a dict: task -> call),
 *   where rest's json_or_text hook counts each attempt and keeps its status
 *   (RestRun has its ``attempts``, ``status``, ``template`` and ``span``);
 * - it returns what the original returns and raises what it raises;
 * - a success (a status below 400) goes into the series
 *   series_for(method, template, status) of discord.rest.request.duration,
 *   and an interaction callback to acknowledged(route); anything else to
 *   finished(route, call, error, duration), the Python record.
 *
 * While tracing, a call under a dropped event with the Discord span current
 * (current holds a sampled-out span, otel_current() is proxy_context) is an
 * untraced one: it would make no span. Any other call while tracing is still
 * the hook's own coroutine, with the span made and ended in Python:
 * traced_begin(rt, route, template) as the run begins gives (span, token) --
 * the span current for the call -- and traced_end(rt, route, call, error,
 * result, duration, token) as it ends records it all (rest._finish) and resets
 * the token. No Python coroutine, frame or call record per traced call. A call
 * with another runtime than the one it was made for goes to traced(self,
 * *args, **kwargs): the Python hook. */

/* The running asyncio task: asyncio's own C current_task where it has one
 * (3.12+), else its _current_tasks by running loop, which is what Python's
 * asyncio.current_task reads (without a frame of its own). */
static PyObject *asyncio_current_task;  /* _asyncio.current_task, or NULL */
static PyObject *asyncio_current_tasks; /* _asyncio._current_tasks, or NULL */
static PyObject *asyncio_running_loop;  /* _asyncio.get_running_loop */

/* The running loop, remembered. On 3.11 asyncio's get_running_loop makes a
 * getpid() system call each time (to tell a forked child), which costs ~1-2 us
 * on a virtual machine once its side effects are counted, several times per
 * command. The loop found last is taken to be running while its _thread_id
 * (set by BaseEventLoop.run_forever as it starts, cleared as it stops; only
 * one loop runs in a thread) is this thread and no fork happened since. A loop
 * without an int _thread_id (uvloop) is asked for every time. */
static PyObject *remembered_loop;    /* a weak reference, or NULL */
static PyObject *str_thread_id;
static volatile int forked_since;    /* set in a forked child */

#ifdef HAVE_FORK
static void
forget_loop_in_child(void)
{
    forked_since = 1; /* only a flag: no Python object is touched in the handler */
}
#endif

static int
running_here(PyObject *loop)
{
    /* 1: loop runs in this thread (per its _thread_id); 0: unknown; never fails */
    PyObject *thread_id = PyObject_GetAttr(loop, str_thread_id);
    int here = 0;

    if (thread_id == NULL) {
        PyErr_Clear();
        return 0;
    }
    if (PyLong_CheckExact(thread_id)) {
        unsigned long ident = PyLong_AsUnsignedLong(thread_id);
        here = ident == PyThread_get_thread_ident() && !PyErr_Occurred();
        PyErr_Clear();
    }
    Py_DECREF(thread_id);
    return here;
}

static PyObject *
running_loop(void)
{
    /* a new reference to the running loop, or NULL with an error */
    PyObject *loop;

    if (forked_since) {
        forked_since = 0;
        Py_CLEAR(remembered_loop);
    }
    if (remembered_loop != NULL) {
        loop = PyWeakref_GET_OBJECT(remembered_loop); /* borrowed: held while asked */
        if (loop != Py_None) {
            Py_INCREF(loop);
            if (running_here(loop)) {
                return loop;
            }
            Py_DECREF(loop);
        }
    }
    loop = PyObject_CallNoArgs(asyncio_running_loop);
    if (loop != NULL && running_here(loop)) {
        PyObject *reference = PyWeakref_NewRef(loop, NULL);
        if (reference == NULL) {
            PyErr_Clear();
        }
        Py_XSETREF(remembered_loop, reference);
    }
    return loop;
}

static PyObject *
current_task_or_none(void)
{
    /* a new reference: the task, or None (no running loop, or not in a task);
     * never an error */
    PyObject *loop, *task;

    if (asyncio_current_task != NULL) {
        task = PyObject_CallNoArgs(asyncio_current_task);
    }
    else {
        loop = running_loop();
        task = loop == NULL ? NULL : PyDict_GetItemWithError(asyncio_current_tasks, loop);
        Py_XINCREF(task);
        Py_XDECREF(loop);
    }
    if (task == NULL) {
        PyErr_Clear();
        Py_INCREF(Py_None);
        task = Py_None;
    }
    return task;
}

static PyObject *str_active;
static PyObject *str_tracing;

/* What a run puts in a dict by task while it runs (rest's open calls, handlers'
 * untraced spans): the task, and what the dict held for it before. */
typedef struct {
    PyObject *task;  /* NULL: nothing put (not in a task) */
    PyObject *outer; /* NULL: nothing held before */
} TaskEntry;

static void
task_entry_open(TaskEntry *entry, PyObject *dict, PyObject *value)
{
    /* dict[current task] = value; never fails */
    PyObject *task = current_task_or_none();

    if (task == Py_None) {
        Py_DECREF(task);
        return;
    }
    entry->outer = PyDict_GetItemWithError(dict, task);
    Py_XINCREF(entry->outer);
    if (PyDict_SetItem(dict, task, value) < 0) {
        Py_CLEAR(entry->outer);
        Py_DECREF(task);
        PyErr_Clear();
        return;
    }
    PyErr_Clear();
    entry->task = task;
}

static void
task_entry_close(TaskEntry *entry, PyObject *dict)
{
    /* the task's entry is the outer one again; keeps any error being raised */
    PyObject *type, *value, *traceback;

    if (entry->task == NULL) {
        return;
    }
    PyErr_Fetch(&type, &value, &traceback);
    if (entry->outer == NULL) {
        if (PyDict_DelItem(dict, entry->task) < 0) {
            PyErr_Clear();
        }
    }
    else if (PyDict_SetItem(dict, entry->task, entry->outer) < 0) {
        PyErr_Clear();
    }
    Py_CLEAR(entry->task);
    Py_CLEAR(entry->outer);
    PyErr_Restore(type, value, traceback);
}

static void
close_unstarted(PyObject **coro)
{
    /* a coroutine never awaited, closed (no "never awaited" warning) and
     * dropped; keeps any error being raised */
    PyObject *type, *value, *traceback, *outcome;

    if (*coro == NULL) {
        return;
    }
    PyErr_Fetch(&type, &value, &traceback);
    outcome = PyObject_CallMethodNoArgs(*coro, str_close);
    Py_XDECREF(outcome);
    PyErr_Clear();
    PyErr_Restore(type, value, traceback);
    Py_CLEAR(*coro);
}

enum { HOOK_ERROR = -1, HOOK_OURS, HOOK_ORIGINAL, HOOK_PYTHON, HOOK_TRACING };

static int
delegated(PyObject *runtime, PyObject *rt, PyObject **active)
{
    /* Who takes a call of a hook made for ``rt``: HOOK_ORIGINAL (``*active`` is
     * None: no instrumentation), HOOK_PYTHON (another runtime: the Python
     * hook), HOOK_TRACING (tracing: the Python hook, but under a dropped event
     * the hook's own), HOOK_OURS (untraced), or HOOK_ERROR with an error. */
    PyObject *tracing;
    int traced;

    *active = PyObject_GetAttr(runtime, str_active);
    if (*active == NULL) {
        return HOOK_ERROR;
    }
    Py_DECREF(*active); /* only compared: the module holds it */
    if (*active != rt) {
        return *active == Py_None ? HOOK_ORIGINAL : HOOK_PYTHON;
    }
    tracing = PyObject_GetAttr(rt, str_tracing);
    traced = tracing == NULL ? -1 : PyObject_IsTrue(tracing);
    Py_XDECREF(tracing);
    if (traced != 0) {
        PyErr_Clear();
        return traced == 1 ? HOOK_TRACING : HOOK_PYTHON;
    }
    return HOOK_OURS;
}

static PyObject *str_path;
static PyObject *str_method;
static PyObject *str_route;

#define MAX_REST_SERIES 5000 /* route templates are bounded; statuses almost */

typedef struct {
    PyObject_HEAD
    vectorcallfunc vectorcall;
    PyObject *original;     /* the original request (an async def) */
    PyObject *traced;       /* the Python hook */
    PyObject *runtime;      /* the runtime module: its ``active`` */
    PyObject *rt;           /* the Runtime this hook was made for */
    PyObject *calls;        /* dict: task -> its open call */
    PyObject *series_for;   /* series_for(method, template, status) */
    PyObject *finished;     /* finished(route, call, error, duration) */
    PyObject *acknowledged; /* acknowledged(route) */
    PyObject *session_seen; /* session_seen(session), or None: not the bot's own session */
    PyObject *callback;     /* the interaction callback's route template */
    PyObject *session_attribute; /* the attribute holding the session */
    PyObject *current;      /* spans.CURRENT */
    PyObject *otel_current; /* the OpenTelemetry context's getter */
    PyObject *proxy_context; /* spans.PROXY_CONTEXT */
    PyObject *traced_begin; /* traced_begin(rt, route, template): (span, token) */
    PyObject *traced_end;   /* traced_end(rt, route, call, error, result, duration, token) */
    PyObject *last_session; /* a weak reference to the last session seen, or NULL */
    PyObject *series;       /* dict: (method, template, status) -> series */
    PyObject *dict;         /* __dict__: functools.update_wrapper's attributes */
    SeriesLayout layout;
} RestHook;

typedef struct {
    TimedRun run;
    RestHook *hook;
    PyObject *coro;     /* the original's coroutine, until the run begins */
    PyObject *route;
    PyObject *method;
    PyObject *template;
    PyObject *status;   /* the last attempt's HTTP status (json_or_text's), or None */
    PyObject *span;     /* a traced call's span (from traced_begin), else NULL (reads None) */
    PyObject *token;    /* a traced call's token for traced_end, or NULL */
    TaskEntry open;     /* the call in ``calls`` while it runs */
    int attempts;       /* counted by json_or_text */
    int traced;         /* begun and ended by traced_begin / traced_end */
} RestRun;

static PyTypeObject RestRun_Type;

static void
rest_traced_begin(RestRun *self)
{
    /* the call's span and token, from traced_begin (which reports its own errors):
     * a call it could not trace goes on untraced */
    RestHook *hook = self->hook;
    PyObject *args[3] = {hook->rt, self->route, self->template};
    PyObject *begun = PyObject_Vectorcall(hook->traced_begin, args, 3, NULL);

    if (begun != NULL && PyTuple_CheckExact(begun) && PyTuple_GET_SIZE(begun) == 2) {
        PyObject *span = PyTuple_GET_ITEM(begun, 0), *token = PyTuple_GET_ITEM(begun, 1);
        if (span != Py_None) {
            Py_INCREF(span);
            self->span = span;
        }
        if (token != Py_None) {
            Py_INCREF(token);
            self->token = token;
        }
    }
    Py_XDECREF(begun);
    PyErr_Clear();
}

static void
rest_traced_end(RestRun *self, PyObject *error, PyObject *result, double duration)
{
    /* traced_end: the span ended, the call recorded, the token reset; never fails */
    RestHook *hook = self->hook;
    PyObject *number = PyFloat_FromDouble(duration), *outcome;
    PyObject *args[7] = {hook->rt, self->route, (PyObject *)self, error, result, number,
                         self->token == NULL ? Py_None : self->token};

    if (number == NULL) {
        PyErr_Clear();
        Py_INCREF(Py_None);
        number = args[5] = Py_None;
    }
    outcome = PyObject_Vectorcall(hook->traced_end, args, 7, NULL);
    Py_XDECREF(outcome);
    Py_DECREF(number);
    Py_CLEAR(self->token);
    PyErr_Clear(); /* traced_end() reports its own errors */
}

static PyObject *
rest_begin(TimedRun *base)
{
    /* open in its task (for json_or_text), then await the original's coroutine */
    RestRun *self = (RestRun *)base;
    PyObject *iterator;

    if (self->traced) {
        rest_traced_begin(self);
    }
    task_entry_open(&self->open, self->hook->calls, (PyObject *)self);
    iterator = await_iterator(self->coro);
    Py_CLEAR(self->coro);
    return iterator;
}

static int
rest_record_success(RestRun *self, PySendResult status, double duration)
{
    /* an untraced call that succeeded (a status below 400): recorded in its
     * series, found here, and an interaction callback acknowledged; 1, else 0
     * (nothing done); never fails */
    RestHook *hook = self->hook;
    PyObject *outcome, *key, *series;
    long code = -1;

    if (status == PYGEN_RETURN && PyLong_CheckExact(self->status)) {
        code = PyLong_AsLong(self->status);
        if (code == -1) {
            PyErr_Clear();
        }
    }
    if (code < 0 || code >= 400) {
        return 0;
    }
    {
        PyObject *make_args[3] = {self->method, self->template, self->status};
        key = PyTuple_Pack(3, self->method, self->template, self->status);
        if (key == NULL) {
            PyErr_Clear();
            return 1;
        }
        series = cached_answer(hook->series, key, hook->series_for, make_args, 3,
                               MAX_REST_SERIES);
        Py_DECREF(key);
    }
    record_in_series(&hook->layout, series, duration);
    Py_XDECREF(series);
    if (self->template == hook->callback
        || PyObject_RichCompareBool(self->template, hook->callback, Py_EQ) == 1) {
        outcome = PyObject_CallOneArg(hook->acknowledged, self->route);
        Py_XDECREF(outcome);
    }
    PyErr_Clear(); /* acknowledged() reports its own errors */
    return 1;
}

static void
rest_record(RestRun *self, PySendResult status, PyObject *result)
{
    /* the call is over (``status``: PYGEN_RETURN with ``result``, or PYGEN_ERROR
     * with its exception set, kept as it is): traced, traced_end's; untraced, a
     * success recorded here and anything else finished()'s; never fails */
    RestHook *hook = self->hook;
    double duration = perf_counter() - self->run.start;
    PyObject *outcome, *type = NULL, *error = NULL, *traceback = NULL;

    task_entry_close(&self->open, hook->calls);
    if (status == PYGEN_ERROR) {
        take_raised(&type, &error, &traceback);
    }
    if (self->traced) {
        rest_traced_end(self, error == NULL ? Py_None : error,
                        status == PYGEN_RETURN && result != NULL ? result : Py_None, duration);
    }
    else if (!rest_record_success(self, status, duration)) {
        outcome = PyObject_CallFunction(hook->finished, "OOOd", self->route, (PyObject *)self,
                                        error == NULL ? Py_None : error, duration);
        Py_XDECREF(outcome);
        PyErr_Clear(); /* finished() reports its own errors */
    }
    if (status == PYGEN_ERROR) {
        PyErr_Restore(type, error, traceback);
    }
}

static PySendResult
rest_stepped(TimedRun *base, PySendResult status, PyObject **result)
{
    if (status == PYGEN_NEXT) {
        return PYGEN_NEXT;
    }
    Py_CLEAR(base->awaiting);
    if (base->state == RUN_AWAITING) {
        rest_record((RestRun *)base, status, *result);
    }
    run_done(base);
    return status;
}

static void
rest_release(TimedRun *base)
{
    RestRun *self = (RestRun *)base;

    task_entry_close(&self->open, self->hook->calls);
    close_unstarted(&self->coro);
    /* a traced call dropped without being closed (its task collected): its span is
     * never ended, so never exported, and its context is gone with the task */
    Py_CLEAR(self->token);
}

static const RunKind rest_kind = {
    .name = "HTTPClient.request",
    .begin = rest_begin,
    .stepped = rest_stepped,
    .release = rest_release,
};

static int
rest_run_traverse(RestRun *self, visitproc visit, void *arg)
{
    Py_VISIT(self->hook);
    Py_VISIT(self->coro);
    Py_VISIT(self->route);
    Py_VISIT(self->method);
    Py_VISIT(self->template);
    Py_VISIT(self->status);
    Py_VISIT(self->span);
    Py_VISIT(self->token);
    Py_VISIT(self->open.task);
    Py_VISIT(self->open.outer);
    Py_VISIT(self->run.awaiting);
    Py_VISIT(self->run.failure);
    return 0;
}

static int
rest_run_clear(RestRun *self)
{
    if (self->hook != NULL) { /* once: its release needs the hook */
        run_done(&self->run);
    }
    Py_CLEAR(self->hook);
    Py_CLEAR(self->route);
    Py_CLEAR(self->method);
    Py_CLEAR(self->template);
    Py_CLEAR(self->status);
    Py_CLEAR(self->span);
    Py_CLEAR(self->token);
    return 0;
}

static PyMemberDef rest_run_members[] = {
    {"template", T_OBJECT, offsetof(RestRun, template), READONLY, "The route's template."},
    {"status", T_OBJECT, offsetof(RestRun, status), 0, "The last attempt's HTTP status."},
    {"attempts", T_INT, offsetof(RestRun, attempts), 0, "Attempts answered so far."},
    {"span", T_OBJECT, offsetof(RestRun, span), READONLY,
     "The call's span while traced, else None."},
    {NULL},
};

static PyTypeObject RestRun_Type = TIMED_RUN_TYPE(
    RestRun, "RestRun", "One REST call: the coroutine a RestHook call returns.",
    rest_run_traverse, rest_run_clear, rest_run_members);

static PyObject *
string_attribute(PyObject *object, PyObject *name)
{
    /* str(object.name): a new reference, or NULL with an error */
    PyObject *value = PyObject_GetAttr(object, name), *text;

    if (value == NULL || PyUnicode_CheckExact(value)) {
        return value;
    }
    text = PyObject_Str(value);
    Py_DECREF(value);
    return text;
}

static void
rest_see_session(RestHook *self, PyObject *client)
{
    /* the bot's own HTTP session, when it is not the last one seen, goes to
     * session_seen (which takes it out of aiohttp-client's instrumentation) */
    PyObject *session = PyObject_GetAttr(client, self->session_attribute), *outcome;
    PyObject *last = self->last_session == NULL ? NULL : PyWeakref_GET_OBJECT(self->last_session);

    if (session == NULL) {
        PyErr_Clear();
        return;
    }
    if (session != Py_None && session != last) {
        outcome = PyObject_CallOneArg(self->session_seen, session);
        Py_XDECREF(outcome);
        Py_XSETREF(self->last_session, PyWeakref_NewRef(session, NULL));
        PyErr_Clear(); /* session_seen() reports its own errors; a session without weak
                        * references is seen again next time */
    }
    Py_DECREF(session);
}

static PyObject *
rest_hook_call(RestHook *self, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf), i;
    PyObject *active, *route = NULL, *coro, *template, *method;
    RestRun *run;
    int traced = 0;

    switch (delegated(self->runtime, self->rt, &active)) {
    case HOOK_ERROR:
        return NULL;
    case HOOK_ORIGINAL:
        return PyObject_Vectorcall(self->original, args, nargsf, kwnames);
    case HOOK_PYTHON:
        return PyObject_Vectorcall(self->traced, args, nargsf, kwnames);
    case HOOK_TRACING: {
        /* under a dropped event with the Discord span current (no span of the
         * bot's own) the call makes no span, as rest._begin finds: untraced */
        PyObject *dropped = dropped_parent(self->current);
        traced = !(dropped != NULL && proxied(self->otel_current, self->proxy_context));
        Py_XDECREF(dropped);
    }
    }
    if (nargs >= 2) {
        route = args[1];
    }
    else if (kwnames != NULL) {
        for (i = 0; i < PyTuple_GET_SIZE(kwnames); i++) {
            if (PyUnicode_Compare(PyTuple_GET_ITEM(kwnames, i), str_route) == 0) {
                route = args[nargs + i];
            }
        }
        PyErr_Clear();
    }
    if (route == NULL || route == Py_None || nargs < 1) {
        return PyObject_Vectorcall(traced ? self->traced : self->original, args, nargsf,
                                   kwnames);
    }
    if (self->session_seen != Py_None) {
        rest_see_session(self, args[0]);
    }
    coro = PyObject_Vectorcall(self->original, args, nargsf, kwnames);
    if (coro == NULL) {
        return NULL;
    }
    template = string_attribute(route, str_path);
    method = template == NULL ? NULL : string_attribute(route, str_method);
    run = method == NULL ? NULL : PyObject_GC_New(RestRun, &RestRun_Type);
    if (run == NULL) { /* not measured: the original's coroutine as it is */
        PyErr_Clear();
        Py_XDECREF(template);
        Py_XDECREF(method);
        if (traced) { /* the Python hook's, then (it makes its own coroutine) */
            close_unstarted(&coro);
            return PyObject_Vectorcall(self->traced, args, nargsf, kwnames);
        }
        return coro;
    }
    timed_init(&run->run, &rest_kind);
    Py_INCREF(self);
    run->hook = self;
    run->coro = coro;
    Py_INCREF(route);
    run->route = route;
    run->method = method;
    run->template = template;
    Py_INCREF(Py_None);
    run->status = Py_None;
    run->span = run->token = run->open.task = run->open.outer = NULL;
    run->attempts = 0;
    run->traced = traced;
    PyObject_GC_Track(run);
    return (PyObject *)run;
}

static PyObject *
rest_hook_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    static char *keywords[] = {
        "original", "traced", "runtime", "rt", "calls", "series_for", "finished",
        "acknowledged", "session_seen", "callback", "session_attribute", "current",
        "otel_current", "proxy_context", "traced_begin", "traced_end", "bounds", "series_type",
        NULL,
    };
    PyObject *values[16], *bounds, *series_type;
    RestHook *self;

    if (!PyArg_ParseTupleAndKeywords(
            args, kwargs, "OOOOO!OOOOUUOOOOOO!O!:RestHook", keywords, &values[0], &values[1],
            &values[2], &values[3], &PyDict_Type, &values[4], &values[5], &values[6], &values[7],
            &values[8], &values[9], &values[10], &values[11], &values[12], &values[13],
            &values[14], &values[15], &PyTuple_Type, &bounds, &PyType_Type, &series_type)) {
        return NULL;
    }
    self = (RestHook *)type->tp_alloc(type, 0);
    if (self == NULL) {
        return NULL;
    }
    self->vectorcall = (vectorcallfunc)rest_hook_call;
    if (layout_init(&self->layout, bounds, series_type) < 0
        || (self->series = PyDict_New()) == NULL) {
        Py_DECREF(self);
        return NULL;
    }
    {
        PyObject **fields[16] = {
            &self->original, &self->traced, &self->runtime, &self->rt,
            &self->calls, &self->series_for, &self->finished, &self->acknowledged,
            &self->session_seen, &self->callback, &self->session_attribute, &self->current,
            &self->otel_current, &self->proxy_context, &self->traced_begin, &self->traced_end,
        };
        Py_ssize_t i;
        for (i = 0; i < 16; i++) {
            Py_INCREF(values[i]);
            *fields[i] = values[i];
        }
    }
    return (PyObject *)self;
}

static int
rest_hook_traverse(RestHook *self, visitproc visit, void *arg)
{
    Py_VISIT(self->original);
    Py_VISIT(self->traced);
    Py_VISIT(self->runtime);
    Py_VISIT(self->rt);
    Py_VISIT(self->calls);
    Py_VISIT(self->series_for);
    Py_VISIT(self->finished);
    Py_VISIT(self->acknowledged);
    Py_VISIT(self->session_seen);
    Py_VISIT(self->current);
    Py_VISIT(self->otel_current);
    Py_VISIT(self->proxy_context);
    Py_VISIT(self->traced_begin);
    Py_VISIT(self->traced_end);
    Py_VISIT(self->series);
    Py_VISIT(self->dict);
    return 0;
}

static int
rest_hook_clear(RestHook *self)
{
    Py_CLEAR(self->original);
    Py_CLEAR(self->traced);
    Py_CLEAR(self->runtime);
    Py_CLEAR(self->rt);
    Py_CLEAR(self->calls);
    Py_CLEAR(self->series_for);
    Py_CLEAR(self->finished);
    Py_CLEAR(self->acknowledged);
    Py_CLEAR(self->session_seen);
    Py_CLEAR(self->callback);
    Py_CLEAR(self->session_attribute);
    Py_CLEAR(self->current);
    Py_CLEAR(self->otel_current);
    Py_CLEAR(self->proxy_context);
    Py_CLEAR(self->traced_begin);
    Py_CLEAR(self->traced_end);
    Py_CLEAR(self->last_session);
    Py_CLEAR(self->series);
    Py_CLEAR(self->dict);
    return 0;
}

static void
rest_hook_dealloc(RestHook *self)
{
    PyObject_GC_UnTrack(self);
    rest_hook_clear(self);
    PyMem_Free(self->layout.bounds);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyGetSetDef dict_getset[] = {
    {"__dict__", PyObject_GenericGetDict, PyObject_GenericSetDict, NULL, NULL},
    {NULL},
};

static PyTypeObject RestHook_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "discord_otel._gateway_speedups.RestHook",
    .tp_doc = PyDoc_STR(
        "RestHook(original, traced, runtime, rt, calls, series_for, finished, acknowledged, "
        "session_seen, callback, session_attribute, current, otel_current, proxy_context, "
        "traced_begin, traced_end, bounds, series_type)\n\n"
        "HTTPClient.request (or the webhook adapter's): the original's coroutine awaited "
        "and timed by a coroutine written in C, open in calls[current_task()] while it "
        "runs. Untraced, a success goes into series_for(method, template, status), "
        "anything else to finished(route, call, error, duration). While rt.tracing "
        "(unless current holds a sampled-out span and otel_current() is proxy_context) "
        "the call begins with traced_begin(rt, route, template) -> (span, token) and ends "
        "with traced_end(rt, route, call, error, result, duration, token). When "
        "runtime.active is not rt, the call is traced(...)'s (the Python hook)."),
    .tp_basicsize = sizeof(RestHook),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_HAVE_VECTORCALL
                | Py_TPFLAGS_METHOD_DESCRIPTOR,
    .tp_new = rest_hook_new,
    .tp_dealloc = (destructor)rest_hook_dealloc,
    .tp_traverse = (traverseproc)rest_hook_traverse,
    .tp_clear = (inquiry)rest_hook_clear,
    .tp_descr_get = method_get,
    .tp_getset = dict_getset,
    .tp_dictoffset = offsetof(RestHook, dict),
    .tp_vectorcall_offset = offsetof(RestHook, vectorcall),
    .tp_call = PyVectorcall_Call,
};


/* ---- command runs ---------------------------------------------------------
 *
 * CommandHook stands in for BotBase.invoke(ctx) (``interaction`` false) or
 * CommandTree._call(interaction) (true) (a method: it binds like a function).
 * Called as discord.py calls it, it calls the original (an ``async def``: that
 * only makes its coroutine) and returns a CommandRun awaiting it, which does
 * what commands._invoke_command / app_commands._call do untraced:
 *
 * - as it begins, the handler's span (a HandlerSpan with tracer, name,
 *   attributes, start_ns and None for real, end_ns, parent and error) is the
 *   task's in ``untraced`` (where discord.py's error dispatchers record the
 *   failure), and command.active counts it by kind;
 * - the command is described by described[command] or describe(command):
 *   (name, kind, attributes). A prefix invocation's command is ctx.command, as it
 *   begins and again as it ends (a group settles on its subcommand) -- its kind
 *   stays the first one; an interaction's is described as it ends
 *   (interaction._cs_command), and begins as kinds[data["type"]] (else
 *   default_kind) describes it;
 * - it returns what the original returns and raises what it raises;
 * - a success goes into series_for(name, kind)'s series of
 *   discord.command.duration; a failure (an Exception raised, the span's error
 *   set, or the subject's command_failed) to failed(span, name, kind, error,
 *   duration), the Python record.
 *
 * While tracing, a command under a dropped event (current holds a sampled-out
 * span) is still an untraced one: its span is then a ``standin`` under that
 * span, never exported. Any other command while tracing is a CommandRun too,
 * begun by traced_begin(rt, subject) and ended by traced_end(rt, subject,
 * begun, error) -- the Python hook's own halves around its await, so no Python
 * coroutine or frame per traced command. A message that invokes no command
 * gets the original's own coroutine, as from the Python hook. Untraced, an
 * unknown command and an autocomplete interaction, and any call with another
 * runtime, go to traced(self, subject): the Python hook. */

static PyObject *str_command;
static PyObject *str_cs_command;
static PyObject *str_command_failed;
static PyObject *str_invoked_with;
static PyObject *str_type;

#define MAX_DESCRIBED 10000 /* commands come from code: bounded anyway */

enum {
    HSLOT_TRACER, HSLOT_NAME, HSLOT_ATTRIBUTES, HSLOT_START_NS, HSLOT_REAL, HSLOT_END_NS,
    HSLOT_PARENT, HSLOT_ERROR, HSLOTS
};
static const char *handler_slot_names[HSLOTS] = {
    "tracer", "name", "attributes", "start_ns", "real", "end_ns", "parent", "error",
};

typedef struct {
    PyObject_HEAD
    vectorcallfunc vectorcall;
    PyObject *original;
    PyObject *traced;       /* the Python hook */
    PyObject *runtime;      /* the runtime module: its ``active`` */
    PyObject *rt;           /* the Runtime this hook was made for */
    PyObject *described;    /* dict: command -> (name, kind, attributes) */
    PyObject *describe;     /* describe(command) -> (name, kind, attributes) */
    PyObject *kinds;        /* interactions: dict data type -> description as it begins */
    PyObject *default_kind; /* interactions: the description without a known type */
    PyObject *autocomplete; /* interactions: the autocomplete InteractionType */
    PyTypeObject *span_type; /* HandlerSpan */
    PyTypeObject *standin;  /* SampledOutHandlerSpan: a handler's under a dropped event */
    PyObject *current;      /* spans.CURRENT */
    PyObject *tracer;
    PyObject *time_ns;
    PyObject *untraced;     /* dict: task -> its untraced handler span */
    PyObject *forget;       /* forget(): drop the spans of finished tasks from untraced */
    Py_ssize_t untraced_limit; /* untraced's size at which forget() is called */
    PyObject *active;       /* dict: kind -> commands running */
    PyObject *series_for;   /* series_for(name, kind) */
    PyObject *failed;       /* failed(span, name, kind, error, duration) */
    PyObject *traced_begin; /* traced_begin(rt, subject): what traced_end is given */
    PyObject *traced_end;   /* traced_end(rt, subject, begun, error) */
    PyObject *series;       /* dict: (name, kind) -> series */
    PyObject *dict;         /* __dict__ */
    int interaction;
    Py_ssize_t span_offsets[HSLOTS];
    SeriesLayout layout;
} CommandHook;

typedef struct {
    TimedRun run;
    CommandHook *hook;
    PyObject *coro;    /* the original's coroutine, until the run begins */
    PyObject *subject; /* ctx, or the interaction */
    PyObject *begun;   /* the description it began with: (name, kind, attributes) */
    PyObject *parent;  /* the dropped event's span it runs under while tracing, or NULL */
    PyObject *span;    /* the handler's span, once begun */
    TaskEntry open;    /* the span in ``untraced`` while it runs */
    int traced;        /* begun and ended by traced_begin / traced_end (``begun`` is
                        * what traced_begin gave, ``span`` unused) */
} CommandRun;

static PyTypeObject CommandRun_Type;

static PyObject *
command_description(CommandHook *hook, PyObject *command)
{
    /* (name, kind, attributes) of ``command`` (borrowed), a new reference, or
     * NULL with an error */
    PyObject *found = PyDict_GetItemWithError(hook->described, command);

    if (found != NULL) {
        Py_INCREF(found);
        return found;
    }
    if (PyErr_Occurred()) {
        return NULL;
    }
    found = PyObject_CallOneArg(hook->describe, command);
    if (found == NULL) {
        return NULL;
    }
    if (!PyTuple_CheckExact(found) || PyTuple_GET_SIZE(found) != 3) {
        Py_DECREF(found);
        PyErr_SetString(PyExc_TypeError, "describe() must return (name, kind, attributes)");
        return NULL;
    }
    if (PyDict_GET_SIZE(hook->described) < MAX_DESCRIBED
        && PyDict_SetItem(hook->described, command, found) < 0) {
        PyErr_Clear();
    }
    return found;
}

static PyObject *
subject_description(CommandHook *hook, PyObject *subject, PyObject *attribute)
{
    /* the description of subject.attribute (None when missing): a new reference,
     * or NULL with an error */
    PyObject *command = PyObject_GetAttr(subject, attribute), *found;

    if (command == NULL) {
        if (!PyErr_ExceptionMatches(PyExc_AttributeError)) {
            return NULL;
        }
        PyErr_Clear();
        Py_INCREF(Py_None);
        command = Py_None;
    }
    found = command_description(hook, command);
    Py_DECREF(command);
    return found;
}

static int
count_active(CommandHook *hook, PyObject *kind, long change)
{
    /* active[kind] += change (from 0 when absent): 0, or -1 with an error */
    PyObject *count = PyDict_GetItemWithError(hook->active, kind), *changed, *step;
    int done;

    if (count == NULL && PyErr_Occurred()) {
        return -1;
    }
    step = PyLong_FromLong(change);
    if (step == NULL) {
        return -1;
    }
    if (count == NULL) {
        changed = step;
        Py_INCREF(changed);
    }
    else {
        changed = PyNumber_Add(count, step);
    }
    Py_DECREF(step);
    if (changed == NULL) {
        return -1;
    }
    done = PyDict_SetItem(hook->active, kind, changed);
    Py_DECREF(changed);
    return done;
}

static PyObject *
new_handler_span(CommandHook *hook, PyObject *description, PyObject *parent)
{
    /* the untraced handler's span (a sampled-out one under ``parent``, if not
     * NULL): a new reference, or NULL with an error */
    const Py_ssize_t *offsets = hook->span_offsets;
    PyTypeObject *type = parent == NULL ? hook->span_type : hook->standin;
    PyObject *start_ns = PyObject_CallNoArgs(hook->time_ns), *span;

    if (start_ns == NULL) {
        return NULL;
    }
    span = type->tp_alloc(type, 0);
    if (span == NULL) {
        Py_DECREF(start_ns);
        return NULL;
    }
    set_slot(span, offsets[HSLOT_TRACER], hook->tracer);
    set_slot(span, offsets[HSLOT_NAME], PyTuple_GET_ITEM(description, 0));
    set_slot(span, offsets[HSLOT_ATTRIBUTES], PyTuple_GET_ITEM(description, 2));
    set_slot(span, offsets[HSLOT_START_NS], start_ns);
    Py_DECREF(start_ns);
    set_slot(span, offsets[HSLOT_REAL], Py_None);
    set_slot(span, offsets[HSLOT_END_NS], Py_None);
    set_slot(span, offsets[HSLOT_PARENT], parent == NULL ? Py_None : parent);
    set_slot(span, offsets[HSLOT_ERROR], Py_None);
    return span;
}

static PyObject *
command_begin(TimedRun *base)
{
    /* the handler's span in ``untraced`` and counted as active (a failure there
     * leaves the command unmeasured, never stopped), then the original awaited */
    CommandRun *self = (CommandRun *)base;
    CommandHook *hook = self->hook;
    PyObject *iterator, *outcome;

    if (self->traced) { /* traced_begin reports its own errors */
        PyObject *begin_args[2] = {hook->rt, self->subject};
        self->begun = PyObject_Vectorcall(hook->traced_begin, begin_args, 2, NULL);
        PyErr_Clear();
        iterator = await_iterator(self->coro);
        Py_CLEAR(self->coro);
        return iterator;
    }
    self->span = new_handler_span(hook, self->begun, self->parent);
    if (self->span != NULL && count_active(hook, PyTuple_GET_ITEM(self->begun, 1), 1) == 0) {
        if (PyDict_GET_SIZE(hook->untraced) >= hook->untraced_limit) {
            outcome = PyObject_CallNoArgs(hook->forget);
            Py_XDECREF(outcome);
        }
        task_entry_open(&self->open, hook->untraced, self->span);
    }
    else {
        Py_CLEAR(self->span);
    }
    PyErr_Clear();
    base->start = perf_counter(); /* after the bookkeeping, as the Python hook's */
    iterator = await_iterator(self->coro);
    Py_CLEAR(self->coro);
    return iterator;
}

static void
command_record(CommandRun *self, PySendResult status)
{
    /* the command is over (``status``: PYGEN_RETURN, or PYGEN_ERROR with its
     * exception set, kept as it is); never fails */
    CommandHook *hook = self->hook;
    double duration = perf_counter() - self->run.start;
    PyObject *type = NULL, *error = NULL, *traceback = NULL, *ended = NULL, *outcome;
    PyObject *name, *kind, *flag, *key, *series, *span_error;
    int failed = 0;

    task_entry_close(&self->open, hook->untraced);
    if (status == PYGEN_ERROR) {
        take_raised(&type, &error, &traceback);
        failed = error != NULL && PyObject_IsInstance(error, PyExc_Exception) == 1;
    }
    ended = subject_description(hook, self->subject,
                                hook->interaction ? str_cs_command : str_command);
    if (ended == NULL) {
        goto done;
    }
    name = PyTuple_GET_ITEM(ended, 0);
    kind = PyTuple_GET_ITEM(self->hook->interaction ? ended : self->begun, 1);
    /* command.active: back down for the kind it began with */
    if (count_active(hook, PyTuple_GET_ITEM(self->begun, 1), -1) < 0) {
        goto done;
    }
    span_error = get_slot(self->span, hook->span_offsets[HSLOT_ERROR]);
    if (!failed && span_error != NULL && span_error != Py_None) {
        failed = 1;
    }
    if (!failed) {
        flag = PyObject_GetAttr(self->subject, str_command_failed);
        if (flag == NULL) {
            PyErr_Clear();
        }
        else {
            failed = PyObject_IsTrue(flag) == 1;
            Py_DECREF(flag);
        }
    }
    if (failed) {
        PyObject *failed_args[5] = {self->span, name, kind,
                                    error != NULL && PyObject_IsInstance(error, PyExc_Exception)
                                        ? error
                                        : Py_None,
                                    NULL};
        failed_args[4] = PyFloat_FromDouble(duration);
        if (failed_args[4] != NULL) {
            outcome = PyObject_Vectorcall(hook->failed, failed_args, 5, NULL);
            Py_XDECREF(outcome);
            Py_DECREF(failed_args[4]);
        }
        goto done;
    }
    {
        PyObject *make_args[2] = {name, kind};
        key = PyTuple_Pack(2, name, kind);
        if (key == NULL) {
            goto done;
        }
        series = cached_answer(hook->series, key, hook->series_for, make_args, 2,
                               MAX_DESCRIBED);
        Py_DECREF(key);
        record_in_series(&hook->layout, series, duration);
        Py_XDECREF(series);
    }
done:
    Py_XDECREF(ended);
    PyErr_Clear(); /* the callbacks report their own errors */
    if (status == PYGEN_ERROR) {
        PyErr_Restore(type, error, traceback);
    }
}

static void
command_traced_end(CommandRun *self, PySendResult status)
{
    /* a traced command is over: traced_end(rt, subject, begun, error); keeps the
     * exception being raised, never fails */
    CommandHook *hook = self->hook;
    PyObject *type = NULL, *error = NULL, *traceback = NULL, *outcome;

    if (status == PYGEN_ERROR) {
        take_raised(&type, &error, &traceback);
    }
    {
        PyObject *end_args[4] = {hook->rt, self->subject,
                                 self->begun == NULL ? Py_None : self->begun,
                                 error == NULL ? Py_None : error};
        outcome = PyObject_Vectorcall(hook->traced_end, end_args, 4, NULL);
    }
    Py_XDECREF(outcome);
    PyErr_Clear(); /* traced_end() reports its own errors */
    if (status == PYGEN_ERROR) {
        PyErr_Restore(type, error, traceback);
    }
}

static PySendResult
command_stepped(TimedRun *base, PySendResult status, PyObject **result)
{
    CommandRun *self = (CommandRun *)base;

    if (status == PYGEN_NEXT) {
        return PYGEN_NEXT;
    }
    Py_CLEAR(base->awaiting);
    if (base->state == RUN_AWAITING && self->traced) {
        command_traced_end(self, status);
    }
    else if (base->state == RUN_AWAITING && self->span != NULL) {
        command_record(self, status);
    }
    run_done(base);
    return status;
}

static void
command_release(TimedRun *base)
{
    CommandRun *self = (CommandRun *)base;

    task_entry_close(&self->open, self->hook->untraced);
    close_unstarted(&self->coro);
    Py_CLEAR(self->subject);
    Py_CLEAR(self->begun);
    Py_CLEAR(self->parent);
    Py_CLEAR(self->span);
}

static const RunKind command_kind = {
    .name = "command",
    .begin = command_begin,
    .stepped = command_stepped,
    .release = command_release,
};

static int
command_run_traverse(CommandRun *self, visitproc visit, void *arg)
{
    Py_VISIT(self->hook);
    Py_VISIT(self->coro);
    Py_VISIT(self->subject);
    Py_VISIT(self->begun);
    Py_VISIT(self->parent);
    Py_VISIT(self->span);
    Py_VISIT(self->open.task);
    Py_VISIT(self->open.outer);
    Py_VISIT(self->run.awaiting);
    Py_VISIT(self->run.failure);
    return 0;
}

static int
command_run_clear(CommandRun *self)
{
    if (self->hook != NULL) { /* once: its release needs the hook */
        run_done(&self->run);
    }
    Py_CLEAR(self->hook);
    return 0;
}

static PyTypeObject CommandRun_Type = TIMED_RUN_TYPE(
    CommandRun, "CommandRun", "One command: the coroutine a CommandHook call returns.",
    command_run_traverse, command_run_clear, NULL);

static PyObject *
interaction_description(CommandHook *self, PyObject *interaction)
{
    /* how an interaction's command begins: kinds[data["type"]] (1 when data has
     * no type), else default_kind; None for an autocomplete (the Python hook's);
     * a new reference, or NULL with an error */
    PyObject *type = PyObject_GetAttr(interaction, str_type), *data, *command_type, *found;
    int autocomplete;

    if (type == NULL) {
        return NULL;
    }
    autocomplete = type == self->autocomplete;
    Py_DECREF(type);
    if (autocomplete) {
        Py_RETURN_NONE;
    }
    data = PyObject_GetAttr(interaction, str_data);
    if (data == NULL) {
        return NULL;
    }
    found = NULL;
    if (PyDict_Check(data) && PyDict_GET_SIZE(data) > 0) {
        command_type = PyDict_GetItemWithError(data, str_type);
        if (command_type == NULL && PyErr_Occurred()) {
            Py_DECREF(data);
            return NULL;
        }
        if (command_type != NULL) {
            found = PyDict_GetItemWithError(self->kinds, command_type);
            if (found == NULL && PyErr_Occurred()) {
                PyErr_Clear(); /* unhashable: not a known type */
            }
        }
    }
    Py_DECREF(data);
    if (found == NULL) {
        found = self->default_kind;
    }
    Py_INCREF(found);
    return found;
}

static int
is_no_command(CommandHook *self, PyObject *subject)
{
    /* 1 for a prefix invocation of no command at all (a plain message: the
     * original's own coroutine, nothing to measure), else 0; never an error */
    PyObject *command, *invoked_with;
    int none;

    if (self->interaction) {
        return 0;
    }
    command = PyObject_GetAttr(subject, str_command);
    none = command == Py_None;
    Py_XDECREF(command);
    if (!none) {
        PyErr_Clear();
        return 0;
    }
    invoked_with = PyObject_GetAttr(subject, str_invoked_with);
    none = invoked_with != NULL && PyObject_Not(invoked_with) == 1;
    Py_XDECREF(invoked_with);
    PyErr_Clear();
    return none;
}

static PyObject *
command_hook_call(CommandHook *self, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    PyObject *active, *subject, *begun, *coro, *parent = NULL;
    CommandRun *run;
    int handing, traced = 0;

    /* first: a plain message, on every message of a bot, is the original's in
     * every mode */
    if (nargs == 2 && kwnames == NULL && is_no_command(self, args[1])) {
        return PyObject_Vectorcall(self->original, args, nargsf, kwnames);
    }
    handing = delegated(self->runtime, self->rt, &active);
    if (handing == HOOK_ERROR) {
        return NULL;
    }
    if (handing == HOOK_ORIGINAL) {
        return PyObject_Vectorcall(self->original, args, nargsf, kwnames);
    }
    if (handing == HOOK_TRACING) { /* ours only under a dropped event: never exported */
        parent = dropped_parent(self->current);
    }
    if (handing == HOOK_PYTHON || nargs != 2
        || kwnames != NULL) { /* the last two: not as discord.py calls it */
        Py_XDECREF(parent);
        return PyObject_Vectorcall(self->traced, args, nargsf, kwnames);
    }
    subject = args[1];
    if (handing == HOOK_TRACING && parent == NULL) { /* traced: begun and ended in Python */
        traced = 1;
        Py_INCREF(Py_None);
        begun = Py_None;
    }
    else if (self->interaction) {
        begun = interaction_description(self, subject);
    }
    else {
        PyObject *command = PyObject_GetAttr(subject, str_command);
        begun = command == NULL || command == Py_None ? NULL : command_description(self, command);
        Py_XDECREF(command);
    }
    if (begun == NULL || (begun == Py_None && !traced)) {
        /* not ours to measure (an unknown command, an autocomplete): the Python hook's */
        PyErr_Clear();
        Py_XDECREF(begun);
        Py_XDECREF(parent);
        return PyObject_Vectorcall(self->traced, args, nargsf, kwnames);
    }
    coro = PyObject_Vectorcall(self->original, args, nargsf, kwnames);
    if (coro == NULL) {
        Py_DECREF(begun);
        Py_XDECREF(parent);
        return NULL;
    }
    run = PyObject_GC_New(CommandRun, &CommandRun_Type);
    if (run == NULL) { /* not measured: the original's coroutine as it is */
        PyErr_Clear();
        Py_DECREF(begun);
        Py_XDECREF(parent);
        if (traced) { /* the Python hook's, then (it makes its own coroutine) */
            close_unstarted(&coro);
            return PyObject_Vectorcall(self->traced, args, nargsf, kwnames);
        }
        return coro;
    }
    timed_init(&run->run, &command_kind);
    Py_INCREF(self);
    run->hook = self;
    run->coro = coro;
    Py_INCREF(subject);
    run->subject = subject;
    run->traced = traced;
    if (traced) { /* set by traced_begin as the run begins */
        Py_DECREF(begun);
        begun = NULL;
    }
    run->begun = begun;
    run->parent = parent;
    run->span = run->open.task = run->open.outer = NULL;
    PyObject_GC_Track(run);
    return (PyObject *)run;
}

static PyObject *
command_hook_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    static char *keywords[] = {
        "original", "traced", "runtime", "rt", "interaction", "describe", "kinds",
        "default_kind", "autocomplete", "span_type", "standin", "current", "tracer", "time_ns",
        "untraced", "forget", "untraced_limit", "active", "series_for", "failed",
        "traced_begin", "traced_end", "bounds", "series_type", NULL,
    };
    PyObject *original, *traced, *runtime, *rt, *describe, *kinds, *default_kind, *autocomplete;
    PyObject *span_type, *standin, *current, *tracer, *time_ns, *untraced, *forget, *active;
    PyObject *series_for, *failed, *traced_begin, *traced_end;
    PyObject *bounds, *series_type;
    int interaction;
    Py_ssize_t untraced_limit, i;
    CommandHook *self;

    if (!PyArg_ParseTupleAndKeywords(
            args, kwargs, "OOOOpOO!O!OO!O!OOOO!OnO!OOOOO!O!:CommandHook", keywords, &original,
            &traced, &runtime, &rt, &interaction, &describe, &PyDict_Type, &kinds, &PyTuple_Type,
            &default_kind, &autocomplete, &PyType_Type, &span_type, &PyType_Type, &standin,
            &current, &tracer, &time_ns, &PyDict_Type, &untraced, &forget, &untraced_limit,
            &PyDict_Type, &active, &series_for, &failed, &traced_begin, &traced_end,
            &PyTuple_Type, &bounds, &PyType_Type, &series_type)) {
        return NULL;
    }
    if (!PyType_IsSubtype((PyTypeObject *)standin, (PyTypeObject *)span_type)) {
        PyErr_SetString(PyExc_TypeError, "standin must be a subclass of span_type");
        return NULL;
    }
    if (PyTuple_GET_SIZE(default_kind) != 3) {
        PyErr_SetString(PyExc_TypeError, "default_kind must be (name, kind, attributes)");
        return NULL;
    }
    self = (CommandHook *)type->tp_alloc(type, 0);
    if (self == NULL) {
        return NULL;
    }
    self->vectorcall = (vectorcallfunc)command_hook_call;
    self->interaction = interaction;
    self->untraced_limit = untraced_limit;
    for (i = 0; i < HSLOTS; i++) {
        if (slot_offset((PyTypeObject *)span_type, handler_slot_names[i], &self->span_offsets[i])
            < 0) {
            Py_DECREF(self);
            return NULL;
        }
    }
    if (layout_init(&self->layout, bounds, series_type) < 0
        || (self->series = PyDict_New()) == NULL || (self->described = PyDict_New()) == NULL) {
        Py_DECREF(self);
        return NULL;
    }
    {
        PyObject *values[20] = {
            original, traced, runtime, rt, describe, kinds, default_kind, autocomplete,
            span_type, standin, current, tracer, time_ns, untraced, forget, active, series_for,
            failed, traced_begin, traced_end,
        };
        PyObject **fields[20] = {
            &self->original, &self->traced, &self->runtime, &self->rt, &self->describe,
            &self->kinds, &self->default_kind, &self->autocomplete,
            (PyObject **)&self->span_type, (PyObject **)&self->standin, &self->current,
            &self->tracer, &self->time_ns, &self->untraced, &self->forget, &self->active,
            &self->series_for, &self->failed, &self->traced_begin, &self->traced_end,
        };
        for (i = 0; i < 20; i++) {
            Py_INCREF(values[i]);
            *fields[i] = values[i];
        }
    }
    return (PyObject *)self;
}

static int
command_hook_traverse(CommandHook *self, visitproc visit, void *arg)
{
    Py_VISIT(self->original);
    Py_VISIT(self->traced);
    Py_VISIT(self->runtime);
    Py_VISIT(self->rt);
    Py_VISIT(self->described);
    Py_VISIT(self->describe);
    Py_VISIT(self->kinds);
    Py_VISIT(self->default_kind);
    Py_VISIT(self->autocomplete);
    Py_VISIT(self->span_type);
    Py_VISIT(self->standin);
    Py_VISIT(self->current);
    Py_VISIT(self->tracer);
    Py_VISIT(self->time_ns);
    Py_VISIT(self->untraced);
    Py_VISIT(self->forget);
    Py_VISIT(self->active);
    Py_VISIT(self->series_for);
    Py_VISIT(self->failed);
    Py_VISIT(self->traced_begin);
    Py_VISIT(self->traced_end);
    Py_VISIT(self->series);
    Py_VISIT(self->dict);
    return 0;
}

static int
command_hook_clear(CommandHook *self)
{
    Py_CLEAR(self->original);
    Py_CLEAR(self->traced);
    Py_CLEAR(self->runtime);
    Py_CLEAR(self->rt);
    Py_CLEAR(self->described);
    Py_CLEAR(self->describe);
    Py_CLEAR(self->kinds);
    Py_CLEAR(self->default_kind);
    Py_CLEAR(self->autocomplete);
    Py_CLEAR(self->span_type);
    Py_CLEAR(self->standin);
    Py_CLEAR(self->current);
    Py_CLEAR(self->tracer);
    Py_CLEAR(self->time_ns);
    Py_CLEAR(self->untraced);
    Py_CLEAR(self->forget);
    Py_CLEAR(self->active);
    Py_CLEAR(self->series_for);
    Py_CLEAR(self->failed);
    Py_CLEAR(self->traced_begin);
    Py_CLEAR(self->traced_end);
    Py_CLEAR(self->series);
    Py_CLEAR(self->dict);
    return 0;
}

static void
command_hook_dealloc(CommandHook *self)
{
    PyObject_GC_UnTrack(self);
    command_hook_clear(self);
    PyMem_Free(self->layout.bounds);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyTypeObject CommandHook_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "discord_otel._gateway_speedups.CommandHook",
    .tp_doc = PyDoc_STR(
        "CommandHook(original, traced, runtime, rt, interaction, describe, kinds, "
        "default_kind, autocomplete, span_type, standin, current, tracer, time_ns, untraced, "
        "forget, untraced_limit, active, series_for, failed, traced_begin, traced_end, bounds, "
        "series_type)\n\n"
        "BotBase.invoke (or CommandTree._call, with interaction): the original's coroutine "
        "awaited by a coroutine written in C. Untraced, it is timed here, its handler span "
        "in untraced[current task] while it runs and counted in active by kind; a success "
        "goes into series_for(name, kind), a failure to failed(span, name, kind, error, "
        "duration). While rt.tracing (unless current holds a sampled-out span: the "
        "handler's is then an untraced standin under it) the command begins with "
        "traced_begin(rt, subject) and ends with traced_end(rt, subject, begun, error). "
        "When runtime.active is not rt, the call is traced(...)'s (the Python hook)."),
    .tp_basicsize = sizeof(CommandHook),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_HAVE_VECTORCALL
                | Py_TPFLAGS_METHOD_DESCRIPTOR,
    .tp_new = command_hook_new,
    .tp_dealloc = (destructor)command_hook_dealloc,
    .tp_traverse = (traverseproc)command_hook_traverse,
    .tp_clear = (inquiry)command_hook_clear,
    .tp_descr_get = method_get,
    .tp_getset = dict_getset,
    .tp_dictoffset = offsetof(CommandHook, dict),
    .tp_vectorcall_offset = offsetof(CommandHook, vectorcall),
    .tp_call = PyVectorcall_Call,
};

/* ---- REST attempts --------------------------------------------------------
 *
 * AttemptObserver stands in for json_or_text(response), which both of
 * discord.py's request loops await once per attempt. When the task's open call
 * is a RestRun it counts the attempt, keeps its status and the route's
 * X-Ratelimit-Remaining header (in ``remaining``, bounded), and returns the
 * original's coroutine -- or rate_limited(original, call, response) for a 429;
 * a traced call's attempt is python(response)'s, the Python observer. */

static PyObject *str_status;
static PyObject *str_headers;
static PyObject *str_get;
static PyObject *str_remaining_header;

#define MAX_REMAINING_ROUTES 1000

typedef struct {
    PyObject_HEAD
    vectorcallfunc vectorcall;
    PyObject *original;     /* discord.py's json_or_text */
    PyObject *python;       /* the Python observer */
    PyObject *calls;        /* dict: task -> its open call */
    PyObject *remaining;    /* dict: route template -> the last X-Ratelimit-Remaining */
    PyObject *rate_limited; /* rate_limited(original, call, response) */
    PyObject *dict;         /* __dict__: functools.update_wrapper's attributes */
} AttemptObserver;

static int
observe_attempt(AttemptObserver *self, RestRun *call, PyObject *response)
{
    /* the attempt counted, its status and headroom kept: 1 for a 429, 0 for
     * another status, -1 with an error */
    PyObject *status, *headers, *remaining;
    long code;
    int kept = 0;

    call->attempts++;
    status = PyObject_GetAttr(response, str_status);
    if (status == NULL) {
        return -1;
    }
    Py_SETREF(status, PyNumber_Long(status));
    if (status == NULL) {
        return -1;
    }
    code = PyLong_AsLong(status);
    Py_SETREF(call->status, status);
    if (code == -1 && PyErr_Occurred()) {
        return -1;
    }
    headers = PyObject_GetAttr(response, str_headers);
    remaining = headers == NULL ? NULL
                                : PyObject_CallMethodOneArg(headers, str_get, str_remaining_header);
    Py_XDECREF(headers);
    if (remaining == NULL) {
        return -1;
    }
    if (remaining != Py_None) { /* parsed when the gauge is read, not per response */
        kept = PyDict_Contains(self->remaining, call->template);
        if (kept == 1 || (kept == 0 && PyDict_GET_SIZE(self->remaining) < MAX_REMAINING_ROUTES)) {
            kept = PyDict_SetItem(self->remaining, call->template, remaining);
        }
    }
    Py_DECREF(remaining);
    if (kept < 0) {
        return -1;
    }
    return code == 429;
}

static PyObject *
observer_call(AttemptObserver *self, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    PyObject *task, *call;
    int limited;

    if (PyVectorcall_NARGS(nargsf) != 1 || kwnames != NULL || PyDict_GET_SIZE(self->calls) == 0) {
        return PyObject_Vectorcall(self->original, args, nargsf, kwnames);
    }
    task = current_task_or_none();
    call = PyDict_GetItemWithError(self->calls, task); /* borrowed */
    Py_DECREF(task);
    if (call == NULL) {
        PyErr_Clear();
    }
    else if (!Py_IS_TYPE(call, &RestRun_Type)) { /* a traced call's */
        return PyObject_Vectorcall(self->python, args, nargsf, NULL);
    }
    else {
        Py_INCREF(call);
        limited = observe_attempt(self, (RestRun *)call, args[0]);
        if (limited == 1) {
            PyObject *limited_args[3] = {self->original, call, args[0]};
            PyObject *awaitable = PyObject_Vectorcall(self->rate_limited, limited_args, 3, NULL);
            Py_DECREF(call);
            return awaitable;
        }
        Py_DECREF(call);
        PyErr_Clear(); /* an attempt that could not be observed still runs */
    }
    return PyObject_Vectorcall(self->original, args, nargsf, NULL);
}

static PyObject *
observer_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    static char *keywords[] = {"original", "python", "calls", "remaining", "rate_limited", NULL};
    PyObject *original, *python, *calls, *remaining, *rate_limited;
    AttemptObserver *self;

    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OOO!O!O:AttemptObserver", keywords, &original,
                                     &python, &PyDict_Type, &calls, &PyDict_Type, &remaining,
                                     &rate_limited)) {
        return NULL;
    }
    self = (AttemptObserver *)type->tp_alloc(type, 0);
    if (self == NULL) {
        return NULL;
    }
    self->vectorcall = (vectorcallfunc)observer_call;
    Py_INCREF(original);
    self->original = original;
    Py_INCREF(python);
    self->python = python;
    Py_INCREF(calls);
    self->calls = calls;
    Py_INCREF(remaining);
    self->remaining = remaining;
    Py_INCREF(rate_limited);
    self->rate_limited = rate_limited;
    return (PyObject *)self;
}

static int
observer_traverse(AttemptObserver *self, visitproc visit, void *arg)
{
    Py_VISIT(self->original);
    Py_VISIT(self->python);
    Py_VISIT(self->calls);
    Py_VISIT(self->remaining);
    Py_VISIT(self->rate_limited);
    Py_VISIT(self->dict);
    return 0;
}

static int
observer_clear(AttemptObserver *self)
{
    Py_CLEAR(self->original);
    Py_CLEAR(self->python);
    Py_CLEAR(self->calls);
    Py_CLEAR(self->remaining);
    Py_CLEAR(self->rate_limited);
    Py_CLEAR(self->dict);
    return 0;
}

static void
observer_dealloc(AttemptObserver *self)
{
    PyObject_GC_UnTrack(self);
    observer_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyTypeObject AttemptObserver_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "discord_otel._gateway_speedups.AttemptObserver",
    .tp_doc = PyDoc_STR(
        "AttemptObserver(original, python, calls, remaining, rate_limited)\n\n"
        "json_or_text(response) observed for the task's open RestRun in calls: the attempt "
        "counted, its status kept and the route's X-Ratelimit-Remaining header put in "
        "remaining; returns original(response), or rate_limited(original, call, response) "
        "for a 429. A traced call's attempt is python(response)'s."),
    .tp_basicsize = sizeof(AttemptObserver),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_HAVE_VECTORCALL,
    .tp_new = observer_new,
    .tp_dealloc = (destructor)observer_dealloc,
    .tp_traverse = (traverseproc)observer_traverse,
    .tp_clear = (inquiry)observer_clear,
    .tp_getset = dict_getset,
    .tp_dictoffset = offsetof(AttemptObserver, dict),
    .tp_vectorcall_offset = offsetof(AttemptObserver, vectorcall),
    .tp_call = PyVectorcall_Call,
};

static PyObject *
current_task_function(PyObject *module, PyObject *unused)
{
    return current_task_or_none();
}

static PyMethodDef module_functions[] = {
    {"current_task", current_task_function, METH_NOARGS,
     "current_task(): the running asyncio task, or None (no running loop, or not in a "
     "task)."},
    {NULL},
};

static struct PyModuleDef module_definition = {
    PyModuleDef_HEAD_INIT,
    "discord_otel._gateway_speedups",
    "The compiled half of discord_otel.instrumentation.gateway (optional: the Python "
    "code does the same where this is not built).",
    -1,
    module_functions,
};

#define INTERN(variable, text)                                  \
    if ((variable = PyUnicode_InternFromString(text)) == NULL) { \
        return NULL;                                            \
    }

static int
add_type(PyObject *module, const char *name, PyTypeObject *type)
{
    if (PyType_Ready(type) < 0) {
        return -1;
    }
    Py_INCREF(type);
    if (PyModule_AddObject(module, name, (PyObject *)type) < 0) {
        Py_DECREF(type);
        return -1;
    }
    return 0;
}

PyMODINIT_FUNC
PyInit__gateway_speedups(void)
{
    PyObject *module;

    INTERN(str_span_processors, "_span_processors");
    INTERN(str_channel, "channel");
    INTERN(str_channel_id, "channel_id");
    INTERN(str_guild_id, "guild_id");
    INTERN(str_id, "id");
    INTERN(str_data, "data");
    INTERN(str_finish, "finish");
    INTERN(str_on_error, "on_error");
    INTERN(str_sampled_out, "sampled_out");
    INTERN(str_throw, "throw");
    INTERN(str_close, "close");
    INTERN(str_active, "active");
    INTERN(str_tracing, "tracing");
    INTERN(str_path, "path");
    INTERN(str_method, "method");
    INTERN(str_route, "route");
    INTERN(str_status, "status");
    INTERN(str_command, "command");
    INTERN(str_cs_command, "_cs_command");
    INTERN(str_command_failed, "command_failed");
    INTERN(str_invoked_with, "invoked_with");
    INTERN(str_type, "type");
    INTERN(str_headers, "headers");
    INTERN(str_get, "get");
    INTERN(str_remaining_header, "X-Ratelimit-Remaining");
    INTERN(str_run_event, "_run_event");
    INTERN(str_loop, "loop");
    INTERN(str_create_task, "create_task");
    INTERN(task_name_prefix, "discord.py: ");
    {
        PyObject *name = PyUnicode_InternFromString("name");
        name_keyword = name == NULL ? NULL : PyTuple_Pack(1, name);
        Py_XDECREF(name);
        if (name_keyword == NULL) {
            return NULL;
        }
    }
    {
        PyObject *asyncio = PyImport_ImportModule("_asyncio");
        if (asyncio == NULL) {
            return NULL;
        }
        asyncio_current_task = PyObject_GetAttrString(asyncio, "current_task");
        if (asyncio_current_task == NULL) {
            PyErr_Clear();
            asyncio_current_tasks = PyObject_GetAttrString(asyncio, "_current_tasks");
            asyncio_running_loop = asyncio_current_tasks == NULL
                                       ? NULL
                                       : PyObject_GetAttrString(asyncio, "get_running_loop");
        }
        Py_DECREF(asyncio);
        if (asyncio_current_task == NULL
            && (asyncio_running_loop == NULL || !PyDict_Check(asyncio_current_tasks))) {
            PyErr_Clear();
            PyErr_SetString(PyExc_ImportError, "asyncio's current task is out of reach");
            return NULL;
        }
        if ((str_thread_id = PyUnicode_InternFromString("_thread_id")) == NULL) {
            return NULL;
        }
#ifdef HAVE_FORK
        if (pthread_atfork(NULL, NULL, forget_loop_in_child) != 0) {
            PyErr_SetString(PyExc_ImportError, "pthread_atfork failed");
            return NULL;
        }
#endif
    }
    if ((one = PyLong_FromLong(1)) == NULL) {
        return NULL;
    }
    {
        PyObject *exceptions = PyImport_ImportModule("asyncio.exceptions");
        if (exceptions == NULL) {
            return NULL;
        }
        cancelled_error = PyObject_GetAttrString(exceptions, "CancelledError");
        Py_DECREF(exceptions);
        if (cancelled_error == NULL) {
            return NULL;
        }
    }
    module = PyModule_Create(&module_definition);
    if (module == NULL) {
        return NULL;
    }
    if (add_type(module, "GatewayParser", &GatewayParser_Type) < 0
        || add_type(module, "CountingParser", &CountingParser_Type) < 0
        || add_type(module, "ListenerRunner", &ListenerRunner_Type) < 0
        || add_type(module, "ListenerScheduler", &ListenerScheduler_Type) < 0
        || add_type(module, "RestHook", &RestHook_Type) < 0
        || add_type(module, "AttemptObserver", &AttemptObserver_Type) < 0
        || add_type(module, "CommandHook", &CommandHook_Type) < 0
        || PyType_Ready(&CommandRun_Type) < 0
        || PyType_Ready(&ListenerRun_Type) < 0 || PyType_Ready(&RestRun_Type) < 0) {
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
