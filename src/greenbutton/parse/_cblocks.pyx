# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False
"""IntervalBlock -> ReadingColumns in C: the optional accelerator of ``_blocks._fast``.

Why hand-written C-level code: a 3-year 15-minute file has 105,216 IntervalReadings of about
eight elements each, and walking them through lxml's Python element proxies costs ~4 us a
reading, most of the parse time (DESIGN 6 allows 1.6x of ``lxml.etree.parse``). This module
walks the libxml2 node tree that lxml already built, through lxml's public C API
(``_Element._c_node``), reading struct fields only (type, name, ns->href, children, next and
the content of text nodes), so it needs libxml2's headers but never links against it.

It accepts exactly the shape ``_blocks._fast`` accepts, and nothing more: every tag in the
ESPI namespace; IntervalReading = timePeriod{start, duration}, value, optional cost, optional
single ReadingQuality{quality}, optional tou; interval = {start, duration}; each number the
lone text node of its element, in ASCII whitespace, with an optional sign and at most 19
digits. Anything else (a comment, CDATA, split text, a foreign or extra element, an int64 or
int32 overflow, a start outside ``models._bounds``' time range, a duration negative or above
UInt32, a missing start/duration/value, a value equal to the
ABSENT sentinels, more readings than the limit) returns None and the caller redoes the block
in Python, which reports errors with their line. The columns are filled only on success.
"""

from cpython cimport array
from libc.stdint cimport INT32_MAX, INT32_MIN, INT64_MIN, int32_t, int64_t, uint64_t
from libc.string cimport strcmp, strlen, strncmp
from lxml.includes cimport tree
from lxml.includes.etreepublic cimport _Element, import_lxml__etree

from greenbutton.models._bounds import DURATION_MAX, TIME_MAX, TIME_MIN

import_lxml__etree()

# The parser's bounds (SECURITY R37, issue 9), read from the one place that defines them.
cdef int64_t _TIME_MIN = TIME_MIN
cdef int64_t _TIME_MAX = TIME_MAX  # exclusive
cdef int64_t _DURATION_MAX = DURATION_MAX

cdef const char* _ESPI = b"http://naesb.org/espi"
cdef uint64_t _I64_LIMIT = 9223372036854775808ULL  # 2**63: -2**63 is ABSENT, refused too
cdef int64_t _ABSENT = INT64_MIN
cdef int32_t _ABSENT32 = INT32_MIN
cdef int _MAX_DIGITS = 19  # int64 needs 19; longer (leading zeros) is left to Python's int()


cdef inline bint _is_space(unsigned char c) noexcept nogil:
    # The whitespace XML text can hold; Python's int() strips it (and more, left to it).
    return c == 32 or c == 9 or c == 10 or c == 13


cdef bint _parse_i64(const unsigned char* s, int64_t* out) noexcept nogil:
    """``int(text)`` for the plain ASCII case; False for anything else, or out of range."""
    cdef bint negative = False
    cdef uint64_t acc = 0
    cdef int digits = 0
    if s == NULL:
        return False
    while _is_space(s[0]):
        s += 1
    if s[0] == 45:  # '-'
        negative = True
        s += 1
    elif s[0] == 43:  # '+'
        s += 1
    while 48 <= s[0] <= 57:
        if digits == _MAX_DIGITS:
            return False
        acc = acc * 10 + (s[0] - 48)
        digits += 1
        s += 1
    if digits == 0:
        return False
    while _is_space(s[0]):
        s += 1
    if s[0] != 0 or acc >= _I64_LIMIT:
        return False
    out[0] = -<int64_t>acc if negative else <int64_t>acc
    return True


cdef inline bint _leaf_i64(tree.xmlNode* el, int64_t* out) noexcept nogil:
    """An element whose only child is one text node holding an integer."""
    cdef tree.xmlNode* t = el.children
    if t == NULL or t.type != tree.XML_TEXT_NODE or t.next != NULL:
        return False
    return _parse_i64(<const unsigned char*>t.content, out)


cdef inline bint _leaf_i32(tree.xmlNode* el, int32_t* out) noexcept nogil:
    cdef int64_t v
    if not _leaf_i64(el, &v) or v <= _ABSENT32 or v > INT32_MAX:
        return False
    out[0] = <int32_t>v
    return True


cdef inline tree.xmlNode* _element(tree.xmlNode* n, bint* bad) noexcept nogil:
    """``n`` or its first following sibling that is an element, skipping text nodes.

    Sets ``bad`` at anything else (comment, CDATA, PI, entity reference ...).
    """
    while n != NULL:
        if n.type == tree.XML_ELEMENT_NODE:
            return n
        if n.type != tree.XML_TEXT_NODE:
            bad[0] = True
            return NULL
        n = n.next
    return NULL


cdef enum:
    _OTHER = 0  # outside the ESPI namespace, or a name the fast path does not take
    _READING
    _INTERVAL
    _TIME_PERIOD
    _START
    _DURATION
    _VALUE
    _COST
    _QUALITY_WRAP
    _QUALITY
    _TOU
    _CACHED = 12


cdef struct _Tags:
    # libxml2 interns element names in the document's dictionary, so one name is one
    # pointer: after the first strcmp a name is recognised by pointer. Namespace hrefs are
    # copied per declaration (files re-declare ns0 on every reading): the last one matched
    # is kept, the others cost one strcmp.
    const char* href
    int n
    const char* names[_CACHED]
    int codes[_CACHED]


cdef int _classify(const char* name) noexcept nogil:
    if strcmp(name, "IntervalReading") == 0:
        return _READING
    if strcmp(name, "timePeriod") == 0:
        return _TIME_PERIOD
    if strcmp(name, "start") == 0:
        return _START
    if strcmp(name, "duration") == 0:
        return _DURATION
    if strcmp(name, "value") == 0:
        return _VALUE
    if strcmp(name, "cost") == 0:
        return _COST
    if strcmp(name, "ReadingQuality") == 0:
        return _QUALITY_WRAP
    if strcmp(name, "quality") == 0:
        return _QUALITY
    if strcmp(name, "tou") == 0:
        return _TOU
    if strcmp(name, "interval") == 0:
        return _INTERVAL
    return _OTHER


cdef inline int _tag(tree.xmlNode* el, _Tags* tags) noexcept nogil:
    """What an element is to the fast path: one of the codes above, ``_OTHER`` if nothing."""
    cdef const char* href
    cdef const char* name
    cdef int i, code
    if el.ns == NULL or el.ns.href == NULL or el.name == NULL:
        return _OTHER
    href = <const char*>el.ns.href
    if href != tags.href:
        if strcmp(href, _ESPI) != 0:
            return _OTHER
        tags.href = href
    name = <const char*>el.name
    for i in range(tags.n):
        if tags.names[i] == name:
            return tags.codes[i]
    code = _classify(name)
    if tags.n < _CACHED:
        tags.names[tags.n] = name
        tags.codes[tags.n] = code
        tags.n += 1
    return code


cdef struct _Columns:
    int64_t* start
    int64_t* duration
    int64_t* value
    int64_t* cost
    int32_t* quality
    int32_t* tou


cdef bint _reading(tree.xmlNode* reading, _Columns* c, Py_ssize_t i, _Tags* tags) noexcept nogil:
    """One IntervalReading into row ``i`` of the columns; False to leave it to Python."""
    cdef bint bad = False, has_start = False, has_duration = False, has_value = False
    cdef bint has_quality = False
    cdef int64_t start = 0, duration = 0, value = 0, cost = _ABSENT
    cdef int32_t quality = _ABSENT32, tou = _ABSENT32
    cdef tree.xmlNode* f = _element(reading.children, &bad)
    cdef tree.xmlNode* g
    cdef int code
    while f != NULL:
        code = _tag(f, tags)
        if code == _VALUE:
            if not _leaf_i64(f, &value):
                return False
            has_value = True
        elif code == _TIME_PERIOD:
            g = _element(f.children, &bad)
            if g == NULL:  # no child element: _fast leaves it too
                return False
            while g != NULL:
                code = _tag(g, tags)
                if code == _START:
                    if not _leaf_i64(g, &start):
                        return False
                    has_start = True
                elif code == _DURATION:
                    if not _leaf_i64(g, &duration):
                        return False
                    has_duration = True
                else:
                    return False
                g = _element(g.next, &bad)
            if bad:
                return False
        elif code == _QUALITY_WRAP:
            if has_quality:
                return False
            g = _element(f.children, &bad)
            if g == NULL or bad or _element(g.next, &bad) != NULL or bad:
                return False
            if _tag(g, tags) != _QUALITY or not _leaf_i32(g, &quality):
                return False
            has_quality = True
        elif code == _COST:
            if not _leaf_i64(f, &cost):
                return False
        elif code == _TOU:
            if not _leaf_i32(f, &tou):
                return False
        else:
            return False
        f = _element(f.next, &bad)
    if bad or not (has_start and has_duration and has_value):
        return False
    if duration < 0 or duration > _DURATION_MAX or start < _TIME_MIN or start >= _TIME_MAX:
        return False
    c.start[i] = start
    c.duration[i] = duration
    c.value[i] = value
    c.cost[i] = cost
    c.quality[i] = quality
    c.tou[i] = tou
    return True


cdef bint _interval(
    tree.xmlNode* el, int64_t* start, bint* has_start, int64_t* duration, bint* has_duration,
    _Tags* tags,
) noexcept nogil:
    cdef bint bad = False
    cdef int code
    cdef tree.xmlNode* g = _element(el.children, &bad)
    has_start[0] = has_duration[0] = False
    while g != NULL:
        code = _tag(g, tags)
        if code == _START:
            if not _leaf_i64(g, start):
                return False
            has_start[0] = True
        elif code == _DURATION:
            if not _leaf_i64(g, duration):
                return False
            has_duration[0] = True
        else:
            return False
        g = _element(g.next, &bad)
    if has_duration[0] and (duration[0] < 0 or duration[0] > _DURATION_MAX):
        return False
    if has_start[0] and (start[0] < _TIME_MIN or start[0] >= _TIME_MAX):
        return False
    return not bad


cdef Py_ssize_t _walk(
    tree.xmlNode* block, _Columns* c, Py_ssize_t capacity, Py_ssize_t max_readings,
    int64_t* istart, bint* has_istart, int64_t* iduration, bint* has_iduration,
) noexcept nogil:
    """Rows written, or -1 to leave the block to Python."""
    cdef bint bad = False
    cdef Py_ssize_t n = 0
    cdef _Tags tags
    cdef int code
    cdef tree.xmlNode* child = _element(block.children, &bad)
    tags.href = NULL
    tags.n = 0
    while child != NULL:
        code = _tag(child, &tags)
        if code == _READING:
            if n >= max_readings or n >= capacity or not _reading(child, c, n, &tags):
                return -1
            n += 1
        elif code == _INTERVAL:
            if not _interval(child, istart, has_istart, iduration, has_iduration, &tags):
                return -1
        else:
            return -1
        child = _element(child.next, &bad)
    return -1 if bad else n


cdef inline bint _grow(array.array arr, char typecode, Py_ssize_t n) except -1:
    """Resize ``arr`` to ``n`` items if it holds ``typecode`` items; False if it does not."""
    if arr.ob_descr.typecode != typecode:
        return False
    array.resize(arr, n)
    return True


def read_block(_Element block not None, Py_ssize_t max_readings, object cols):
    """Append the block's readings to ``cols`` and return ``(interval start, duration)``.

    None (and ``cols`` as it was) when the block is anything but the plain shape. Rows are
    written straight into the column arrays, grown to the number of child elements first
    and cut to the number of readings after.
    """
    cdef tree.xmlNode* c_block = block._c_node
    cdef tree.xmlNode* n
    cdef Py_ssize_t capacity = 0, rows = -1, base, size
    cdef int64_t istart = 0, iduration = 0
    cdef bint has_istart = False, has_iduration = False
    cdef _Columns c
    cdef array.array start = cols.start, duration = cols.duration, value = cols.value
    cdef array.array cost = cols.cost, quality = cols.quality, tou = cols.tou
    if c_block == NULL or c_block.type != tree.XML_ELEMENT_NODE or max_readings < 0:
        return None
    base = len(start)
    if (len(duration) != base or len(value) != base or len(cost) != base
            or len(quality) != base or len(tou) != base):
        return None
    n = c_block.children
    while n != NULL:
        if n.type == tree.XML_ELEMENT_NODE:
            capacity += 1
        n = n.next
    if capacity > max_readings:  # reading number max_readings + 1 is refused unwritten
        capacity = max_readings
    try:
        if not (
            _grow(start, b"q", base + capacity) and _grow(duration, b"q", base + capacity)
            and _grow(value, b"q", base + capacity) and _grow(cost, b"q", base + capacity)
            and _grow(quality, b"i", base + capacity) and _grow(tou, b"i", base + capacity)
        ):
            return None
        c.start = <int64_t*>start.data.as_longlongs + base
        c.duration = <int64_t*>duration.data.as_longlongs + base
        c.value = <int64_t*>value.data.as_longlongs + base
        c.cost = <int64_t*>cost.data.as_longlongs + base
        c.quality = <int32_t*>quality.data.as_ints + base
        c.tou = <int32_t*>tou.data.as_ints + base
        rows = _walk(
            c_block, &c, capacity, max_readings,
            &istart, &has_istart, &iduration, &has_iduration,
        )
        if rows < 0:
            return None
        return (istart if has_istart else None, iduration if has_iduration else None)
    finally:
        size = base + (rows if rows > 0 else 0)
        for arr in (start, duration, value, cost, quality, tou):
            if len(arr) != size:
                array.resize(arr, size)


def count_lines_and_equals(bytes data not None):
    """``(data.count(b"\\n"), data.count(b"="))`` in one pass: ``_xml._Reader`` counts both in
    every chunk (lines for error messages, ``=`` against attribute floods), and two
    ``bytes.count`` scans cost a tenth of a whole parse. Byte-wide counters over runs of 255
    bytes let the compiler vectorise the loop."""
    cdef const unsigned char* p = <const unsigned char*>data
    cdef Py_ssize_t i = 0, j, size = len(data)
    cdef Py_ssize_t lines = 0, equals = 0
    cdef unsigned char run_lines, run_equals
    with nogil:
        while size - i >= 255:
            run_lines = run_equals = 0
            for j in range(i, i + 255):
                run_lines += p[j] == 10
                run_equals += p[j] == 61
            lines += run_lines
            equals += run_equals
            i += 255
        for j in range(i, size):
            lines += p[j] == 10
            equals += p[j] == 61
    return lines, equals


cdef const char* _XINCLUDE_2001 = b"http://www.w3.org/2001/XInclude"
cdef const char* _XINCLUDE_2003 = b"http://www.w3.org/2003/XInclude"


cdef inline bint _text_run_within(tree.xmlNode* n, size_t limit) noexcept nogil:
    """The run of text nodes starting at ``n`` (an element's text or tail) has at most
    ``limit`` bytes, so at most ``limit`` characters. False also for CDATA or XInclude
    markers in the run: lxml joins those into the text, Python measures it."""
    cdef size_t size = 0
    while n != NULL and n.type == tree.XML_TEXT_NODE:
        if n.content != NULL:
            size += strlen(<const char*>n.content)
            if size > limit:
                return False
        n = n.next
    return n == NULL or n.type == tree.XML_ELEMENT_NODE


cdef bint _node_within(
    tree.xmlNode* el, Py_ssize_t depth, Py_ssize_t max_depth, size_t max_text,
    Py_ssize_t max_attributes,
) noexcept nogil:
    cdef tree.xmlAttr* attr
    cdef tree.xmlNode* v
    cdef Py_ssize_t attributes = 0
    cdef size_t size
    cdef const char* href
    if el.type != tree.XML_ELEMENT_NODE or depth > max_depth:
        return False
    if el.ns != NULL and el.ns.href != NULL:
        href = <const char*>el.ns.href
        if (strncmp(href, _XINCLUDE_2001, strlen(_XINCLUDE_2001)) == 0
                or strncmp(href, _XINCLUDE_2003, strlen(_XINCLUDE_2003)) == 0):
            return False
    if not _text_run_within(el.children, max_text) or not _text_run_within(el.next, max_text):
        return False
    attr = el.properties
    while attr != NULL:
        attributes += 1
        if attr.type != tree.XML_ATTRIBUTE_NODE or attributes > max_attributes:
            return False
        size = 0
        v = attr.children
        while v != NULL:
            if v.type != tree.XML_TEXT_NODE:
                return False
            if v.content != NULL:
                size += strlen(<const char*>v.content)
            v = v.next
        if size > max_text:
            return False
        attr = attr.next
    return True


cdef inline tree.xmlNode* _next_child(tree.xmlNode* n, bint* bad) noexcept nogil:
    # Python's check walks element-like children; text belongs to text and tails (checked
    # with the element before it); anything but elements and text is left to Python.
    while n != NULL and n.type == tree.XML_TEXT_NODE:
        n = n.next
    if n != NULL and n.type != tree.XML_ELEMENT_NODE:
        bad[0] = True
        return NULL
    return n


cdef bint _subtree_within(
    tree.xmlNode* top, Py_ssize_t depth, Py_ssize_t max_depth, size_t max_text,
    Py_ssize_t max_attributes,
) noexcept nogil:
    """Depth-first over ``top`` and the elements below it, as ``check_subtree`` goes."""
    cdef tree.xmlNode* node = top
    cdef tree.xmlNode* nxt
    cdef bint bad = False
    while True:
        if not _node_within(node, depth, max_depth, max_text, max_attributes):
            return False
        nxt = _next_child(node.children, &bad)
        if bad:
            return False
        if nxt != NULL:
            node = nxt
            depth += 1
            continue
        while node != top:
            nxt = _next_child(node.next, &bad)
            if bad:
                return False
            if nxt != NULL:
                node = nxt
                break
            node = node.parent
            depth -= 1
        if node == top:
            return True


def subtree_within(
    _Element el not None,
    Py_ssize_t depth,
    Py_ssize_t max_depth,
    Py_ssize_t max_text,
    Py_ssize_t max_attributes,
):
    """True when ``_xml.check_subtree(el, depth, limits)`` certainly passes: every element
    at most ``max_depth`` deep, no text, tail or attribute value over ``max_text``
    characters, at most ``max_attributes`` attributes, no XInclude element. False means
    "ask the Python check", which knows the exact rules and raises with the line."""
    if el._c_node == NULL or max_text < 0 or max_depth < 0 or max_attributes < 0:
        return False
    return _subtree_within(el._c_node, depth, max_depth, <size_t>max_text, max_attributes)
