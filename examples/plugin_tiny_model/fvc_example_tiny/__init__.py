"""An example fvc plugin: a tiny per-frame CNN, installable with pip."""
