"""The bindings layer: Python functions over the compiled C core."""
