// An empty Python module: importing stylebank_fast._C loads this library, whose static
// initialisers register the operators with torch (TORCH_LIBRARY).
#include <Python.h>

extern "C" PyObject* PyInit__C(void) {
  static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_C", nullptr, -1, nullptr};
  return PyModule_Create(&module);
}
