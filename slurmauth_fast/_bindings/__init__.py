"""Private cffi bindings of the C core (thin, typed, no policy)."""
