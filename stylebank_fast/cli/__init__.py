"""The command-line tools, a thin layer over the Python API: `stylize`, `train`, `add_style`,
and the `stylebank-fast` console script (`command`). `common` holds what they share (parsing
with exit codes, progress lines), `training_options` the options of train and add_style.

`python -m stylebank_fast.stylize` (and .train, .add_style) run them: those modules at the
package's top level only start the tool.
"""
