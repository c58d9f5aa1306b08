"""fvc-video-models: spatio-temporal networks for fvc (``model.name: r2plus1d``, ``r3d``, ``mc3``)."""
