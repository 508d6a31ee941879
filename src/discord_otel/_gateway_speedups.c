/*
 * The compiled half of discord_otel.instrumentation.gateway: the per-event
 * wrapper of a traced gateway parser.
 *
 * Per event, the Python wrapper counts the event, decides the root's sampling
 * on a trace id drawn now and, for a dropped event, makes the stand-in span
 * (SampledOutGatewaySpan) current while discord.py's parser runs; a sampled
 * event gets its GatewaySpan instead, ended when the parse returns. At low
 * sampling rates a dropped event is nearly every event, on the hottest path of
 * the bot; this type does the same without an interpreter frame, writing the
 * spans' slots directly. The sampler's rule comes from the Python callable it
 * is given (read again whenever the tracer's span processors change), and
 * tests run both parsers side by side. See gateway._traced_parser.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>

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
            Py_XSETREF(*(PyObject **)((char *)span + self->span_offsets[SLOT_END_NS]), end);
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

static struct PyModuleDef module_definition = {
    PyModuleDef_HEAD_INIT,
    "discord_otel._gateway_speedups",
    "The compiled half of discord_otel.instrumentation.gateway (optional: the Python "
    "code does the same where this is not built).",
    -1,
    NULL,
};

#define INTERN(variable, text)                                  \
    if ((variable = PyUnicode_InternFromString(text)) == NULL) { \
        return NULL;                                            \
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
    if ((one = PyLong_FromLong(1)) == NULL) {
        return NULL;
    }
    if (PyType_Ready(&GatewayParser_Type) < 0) {
        return NULL;
    }
    module = PyModule_Create(&module_definition);
    if (module == NULL) {
        return NULL;
    }
    Py_INCREF(&GatewayParser_Type);
    if (PyModule_AddObject(module, "GatewayParser", (PyObject *)&GatewayParser_Type) < 0) {
        Py_DECREF(&GatewayParser_Type);
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
