/* pyitems.h - the one place the C core reads Python objects: the buffers of
 * the bytes objects in a tuple, so a batch of tokens reaches sc_verify_list
 * without being copied into one buffer first.
 *
 * Header-only: it needs Python.h and is compiled into the extension alone,
 * through the cffi preamble (slurmauth_fast/_build.py). Only the limited API
 * of CPython 3.9 is used (the extension is abi3).
 *
 * Python calls it with the tuple's address, id(tuple): in CPython that is
 * the object's address. The tuple must stay referenced for as long as the
 * pointers are used: it holds the bytes objects, and neither is mutable. */
#ifndef SA_PYITEMS_H
#define SA_PYITEMS_H

#include <Python.h>
#include <stddef.h>
#include <stdint.h>

/* cffi:begin */
/* The first n items of tuple `tuple_addr` (an id()), when it is a tuple of
 * exactly n items: item i's bytes at toks[i], lens[i] bytes long, and their
 * sum in *total. Returns n when every item is a bytes object, else the index
 * of the first that is not (toks/lens filled up to it); 0 for anything but
 * a tuple of n items. Takes the GIL for the reading (cffi calls release it). */
size_t sa_py_bytes_items(uintptr_t tuple_addr, const char **toks, size_t *lens, size_t n,
                         size_t *total);
/* cffi:end */

size_t sa_py_bytes_items(uintptr_t tuple_addr, const char **toks, size_t *lens, size_t n,
                         size_t *total)
{
    PyObject *tuple = (PyObject *)tuple_addr;
    PyGILState_STATE gil = PyGILState_Ensure();
    size_t i = 0, sum = 0;
    ptrdiff_t data = -1;   /* where a bytes object's bytes start in it: one layout per type */

    if (Py_TYPE(tuple) == &PyTuple_Type && PyTuple_Size(tuple) == (Py_ssize_t)n) {
        for (; i < n; i++) {
            PyObject *item = PyTuple_GetItem(tuple, (Py_ssize_t)i);

            if (Py_TYPE(item) != &PyBytes_Type)
                break;
            if (data < 0)
                data = PyBytes_AsString(item) - (char *)item;
            toks[i] = (const char *)item + data;
            lens[i] = (size_t)Py_SIZE(item);
            sum += lens[i];
        }
    }
    PyGILState_Release(gil);
    *total = sum;
    return i;
}

#endif
